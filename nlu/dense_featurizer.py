"""DenseFeaturizer: all-MiniLM-L6-v2 sentence embeddings as dense sentence features.

Runs inside the Rasa virtualenv (Python 3.10) with onnxruntime and tokenizers, on the
ONNX export made by ``python -m nlu.encoder`` (``tandem.rasa_model.ensure_model`` makes
it before every training). Only sentence features are added: the encoder was trained to
produce one vector per sentence, and DIET keeps its sparse token features for entities.

    pipeline:
      - name: nlu.dense_featurizer.DenseFeaturizer
        encoder_dir: var/models/minilm-l6-onnx
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import (
    DenseFeaturizer as RasaDenseFeaturizer,
)
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

ENCODER_DIR = "encoder_dir"
MAX_TOKENS = "max_tokens"
BATCH_SIZE = "batch_size"
THREADS = "threads"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class DenseFeaturizer(RasaDenseFeaturizer, GraphComponent):
    """Adds the MiniLM sentence embedding (384 numbers) to each user message."""

    @staticmethod
    def required_packages() -> list[str]:
        return ["onnxruntime", "tokenizers"]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **RasaDenseFeaturizer.get_default_config(),
            ENCODER_DIR: "var/models/minilm-l6-onnx",
            # all-MiniLM-L6-v2 was trained on 128-token inputs and truncates at 256.
            MAX_TOKENS: 256,
            BATCH_SIZE: 32,
            # 0 lets onnxruntime use every core; the server embeds one message at a time.
            THREADS: 0,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        folder = Path(str(config[ENCODER_DIR]))
        for name in ("model.onnx", "tokenizer.json"):
            if not (folder / name).is_file():
                raise InvalidConfigException(
                    f"DenseFeaturizer: {folder / name} is missing. Export the encoder with "
                    "'.venv/bin/python -m nlu.encoder' (make train does it)."
                )

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, config)
        import onnxruntime
        from tokenizers import Tokenizer

        folder = Path(str(self._config[ENCODER_DIR]))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(self._config[MAX_TOKENS]))
        self._tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        threads = int(self._config[THREADS]) or (os.cpu_count() or 1)
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> DenseFeaturizer:
        cls.validate_config(config)
        return cls(config, execution_context.node_name)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Sentence embeddings, one row per text (batched by length for speed)."""
        rows: list[np.ndarray] = [np.empty(0)] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        size = int(self._config[BATCH_SIZE])
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chunk])
            inputs = {
                name: np.array([getattr(e, field) for e in encodings], dtype=np.int64)
                for name, field in (
                    ("input_ids", "ids"),
                    ("attention_mask", "attention_mask"),
                    ("token_type_ids", "type_ids"),
                )
            }
            (vectors,) = self._session.run(None, inputs)
            for i, vector in zip(chunk, vectors, strict=True):
                rows[i] = vector
        # the width comes from the encoder itself (384 for all-MiniLM-L6-v2)
        return np.stack(rows).astype(np.float32, copy=False)

    def _featurize(self, messages: list[Message]) -> None:
        todo = [m for m in messages if isinstance(m.get(TEXT), str) and m.get(TEXT).strip()]
        if not todo:
            return
        vectors = self.embed([m.get(TEXT) for m in todo])
        for message, vector in zip(todo, vectors, strict=True):
            message.add_features(
                Features(
                    vector.reshape(1, -1),
                    FEATURE_TYPE_SENTENCE,
                    TEXT,
                    self._config[FEATURIZER_CLASS_ALIAS],
                )
            )

    def process(self, messages: list[Message]) -> list[Message]:
        self._featurize(messages)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data


