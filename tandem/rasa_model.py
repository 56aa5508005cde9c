"""The Rasa model: trained from domain, config and data, cached by their hash."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from nlu.encoder import EncoderExportError, ensure_encoder
from tandem.config import PROJECT_ROOT

RASA_FILES = (
    "domain.yml",
    "config.yml",
    "data/nlu.yml",
    "data/rules.yml",
    "data/stories.yml",
    # the custom components named in config.yml: their code changes the model
    "nlu/dense_featurizer.py",
    "nlu/intent_classifier.py",
)
MODELS_DIR = PROJECT_ROOT / "models"


class RasaSetupError(RuntimeError):
    """Something the Rasa server needs is missing; the message says what to do."""


def rasa_venv() -> Path:
    return Path(os.environ.get("RASA_VENV", PROJECT_ROOT / ".venv-rasa"))


def rasa_executable() -> Path:
    executable = rasa_venv() / "bin" / "rasa"
    if not executable.exists():
        raise RasaSetupError(
            f"Rasa is not installed at {executable}. Run 'make setup' (it creates the "
            "Rasa virtualenv with Python 3.10), or set RASA_VENV."
        )
    return executable


def training_hash(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    for name in RASA_FILES:
        path = root / name
        if not path.exists():
            raise RasaSetupError(f"{path} is missing; the Rasa model cannot be trained.")
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def model_path(root: Path = PROJECT_ROOT) -> Path:
    return root / "models" / f"tandem-{training_hash(root)}.tar.gz"


def ensure_model(root: Path = PROJECT_ROOT, *, quiet: bool = False) -> Path:
    """Train only when domain, config or data changed since the cached model."""
    # The featurizer reads the exported encoder both in training and when Rasa loads the
    # model, so it is made (or checked, a millisecond when current) every time.
    try:
        ensure_encoder()
    except EncoderExportError as exc:
        raise RasaSetupError(str(exc)) from exc
    target = model_path(root)
    if target.exists():
        return target
    print(f"Training the Rasa model ({target.name}); Rasa shows its progress.", flush=True)
    command = [
        str(rasa_executable()),
        "train",
        "--domain",
        "domain.yml",
        "--config",
        "config.yml",
        "--data",
        "data/nlu.yml",
        "data/rules.yml",
        "data/stories.yml",
        "--out",
        "models",
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
    ]
    result = subprocess.run(
        command,
        cwd=root,
        env=rasa_env(),
        stdout=subprocess.DEVNULL if quiet else None,
        check=False,
    )
    if result.returncode != 0 or not target.exists():
        raise RasaSetupError(
            f"Training the Rasa model failed (exit {result.returncode}). "
            f"Run '{' '.join(command)}' to see why."
        )
    for old in (root / "models").glob("tandem-*.tar.gz"):
        if old != target:
            old.unlink()
    return target


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(PROJECT_ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env
