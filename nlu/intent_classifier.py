"""SentenceIntentClassifier: logistic regression over the sentence features.

DIET, trained on a few thousand examples, fits its training data and then generalises
worse than a linear model on the same features (5-fold CV in bench/RESULTS.md). This
component classifies the intent from each message's *sentence* features: the sparse word
and character n-gram counts (weighted as tf-idf with a log term frequency, L2-normalised)
beside the MiniLM sentence embedding of ``DenseFeaturizer`` (scaled by ``dense_weight``).
DIET keeps the entities (``intent_classification: false``).

The fitted model is stored as plain arrays (``.npz``, no pickle); prediction is one
matrix product and a softmax.

    pipeline:
      - name: DIETClassifier
        intent_classification: false
      - name: nlu.intent_classifier.SentenceIntentClassifier
        C: 30
        dense_weight: 3
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.npz"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SentenceIntentClassifier(GraphComponent, IntentClassifier):
    """Intent = softmax(W · [tf-idf(sparse counts), dense_weight · embedding] + b)."""

    @staticmethod
    def required_packages() -> list[str]:
        return ["sklearn", "scipy"]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # inverse regularisation strength of the logistic regression
            "C": 30.0,
            # the embedding is unit length, the tf-idf part too: this sets their balance
            "dense_weight": 3.0,
            "max_iter": 3000,
            "ranking_length": 10,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        weights: dict[str, np.ndarray] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._weights = weights

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceIntentClassifier:
        return cls(config, model_storage, resource)

    # ------------------------------------------------------------------ features

    @staticmethod
    def _sentence_features(messages: list[Message]) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
        sparse_rows, dense_rows = [], []
        for message in messages:
            _, sparse = message.get_sparse_features(TEXT)
            _, dense = message.get_dense_features(TEXT)
            if sparse is None or dense is None:
                raise ValueError(
                    "SentenceIntentClassifier needs sparse and dense sentence features: put "
                    "CountVectorsFeaturizer and nlu.dense_featurizer.DenseFeaturizer before it."
                )
            sparse_rows.append(scipy.sparse.csr_matrix(sparse.features))
            dense_rows.append(np.asarray(dense.features, dtype=np.float32).reshape(-1))
        return scipy.sparse.vstack(sparse_rows).tocsr(), np.stack(dense_rows)

    def _design(
        self, counts: scipy.sparse.csr_matrix, dense: np.ndarray, idf: np.ndarray
    ) -> scipy.sparse.csr_matrix:
        tf = counts.astype(np.float64)
        tf.data = np.log1p(np.abs(tf.data))  # a word said twice is not twice the evidence
        weighted = tf.multiply(idf.reshape(1, -1)).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).reshape(-1)
        weighted = scipy.sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted
        scaled = scipy.sparse.csr_matrix(dense * float(self._config["dense_weight"]))
        return scipy.sparse.hstack([weighted, scaled]).tocsr()

    # ------------------------------------------------------------------ training

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.linear_model import LogisticRegression

        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        if len({e.get(INTENT) for e in examples}) < 2:
            logger.warning("SentenceIntentClassifier: fewer than two intents, not trained.")
            return self._resource
        counts, dense = self._sentence_features(examples)
        documents = len(examples)
        frequency = np.asarray((counts > 0).sum(axis=0)).reshape(-1)
        idf = np.log((1 + documents) / (1 + frequency)) + 1.0
        model = LogisticRegression(
            C=float(self._config["C"]), max_iter=int(self._config["max_iter"])
        )
        model.fit(self._design(counts, dense, idf), [e.get(INTENT) for e in examples])
        self._weights = {
            "classes": np.asarray(model.classes_, dtype=str),
            "coef": model.coef_.astype(np.float32),
            "intercept": model.intercept_.astype(np.float32),
            "idf": idf.astype(np.float32),
        }
        self.persist()
        return self._resource

    def persist(self) -> None:
        if self._weights is None:
            return
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / WEIGHTS_FILE, **self._weights)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentenceIntentClassifier:
        try:
            with (
                model_storage.read_from(resource) as directory,
                np.load(directory / WEIGHTS_FILE, allow_pickle=False) as stored,
            ):
                weights = {key: stored[key] for key in stored.files}
        except (ValueError, FileNotFoundError):
            logger.warning("SentenceIntentClassifier: no trained weights; intents not set.")
            weights = None
        return cls(config, model_storage, resource, weights)

    # ------------------------------------------------------------------ prediction

    def probabilities(self, messages: list[Message]) -> np.ndarray:
        assert self._weights is not None
        counts, dense = self._sentence_features(messages)
        logits = self._design(counts, dense, self._weights["idf"]) @ self._weights["coef"].T
        logits = np.asarray(logits) + self._weights["intercept"]
        if logits.shape[1] == 1:  # sklearn's binary case: one column for the second class
            logits = np.hstack([np.zeros_like(logits), logits])
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def process(self, messages: list[Message]) -> list[Message]:
        todo = [m for m in messages if isinstance(m.get(TEXT), str) and m.get(TEXT).strip()]
        if self._weights is None or not todo:
            return messages
        classes = self._weights["classes"]
        length = int(self._config["ranking_length"]) or len(classes)
        for message, row in zip(todo, self.probabilities(todo), strict=True):
            order = np.argsort(-row)
            ranking = [
                {"name": str(classes[i]), "confidence": float(row[i])} for i in order[:length]
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
