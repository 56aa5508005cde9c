"""SentenceIntentClassifier: logistic regression over the sentence features.

DIET, trained on a few thousand examples, fits its training data and then generalises
worse than a linear model on the same features (5-fold CV in bench/RESULTS.md). This
component classifies the intent from each message's *sentence* features: the sparse word
and character n-gram counts (weighted as tf-idf with a log term frequency, L2-normalised)
beside the MiniLM sentence embedding of ``DenseFeaturizer`` (scaled by ``dense_weight``),
and, for each intent, how close the message's embedding is to that intent's nearest
training example (``exp(neighbour_sharpness · (cosine − 1))``, scaled by
``neighbour_weight``): a new wording close to one example of an intent counts even where
the linear part of the embedding does not separate the intents. While training, an
example's own similarity is left out (leave-one-out), so the weights learn how much a
near neighbour is worth on text not seen before. DIET keeps the entities
(``intent_classification: false``).

The fitted model is stored as plain arrays (``.npz``, no pickle: the weights, and the
training embeddings for the neighbour feature); prediction is two matrix products and a
softmax.

    pipeline:
      - name: DIETClassifier
        intent_classification: false
      - name: nlu.intent_classifier.SentenceIntentClassifier
        C: 100
        dense_weight: 2
        neighbour_weight: 2
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
            # weight of the nearest-example similarity per intent (0 turns it off)
            "neighbour_weight": 0.0,
            # how fast that feature falls off with the cosine distance to the example
            "neighbour_sharpness": 5.0,
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

    def _neighbours(
        self, dense: np.ndarray, examples: np.ndarray, starts: np.ndarray, *, own: bool = False
    ) -> np.ndarray:
        """Per intent, the similarity of each row to that intent's nearest example.

        ``examples`` are sorted by intent, ``starts`` is where each intent begins; with
        ``own`` the rows are the examples themselves and each one's own similarity is
        left out.
        """
        similarity = _unit(dense) @ examples.T
        if own:
            np.fill_diagonal(similarity, -1.0)
        nearest = np.maximum.reduceat(similarity, starts, axis=1)
        sharpness = float(self._config["neighbour_sharpness"])
        return np.exp(sharpness * (nearest - 1.0)) * float(self._config["neighbour_weight"])

    def _design(
        self,
        counts: scipy.sparse.csr_matrix,
        dense: np.ndarray,
        idf: np.ndarray,
        neighbours: np.ndarray | None = None,
    ) -> scipy.sparse.csr_matrix:
        tf = counts.astype(np.float64)
        tf.data = np.log1p(np.abs(tf.data))  # a word said twice is not twice the evidence
        weighted = tf.multiply(idf.reshape(1, -1)).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).reshape(-1)
        weighted = scipy.sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted
        scaled = scipy.sparse.csr_matrix(dense * float(self._config["dense_weight"]))
        blocks = [weighted, scaled]
        if neighbours is not None:
            blocks.append(scipy.sparse.csr_matrix(neighbours))
        return scipy.sparse.hstack(blocks).tocsr()

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
        labels = np.asarray([e.get(INTENT) for e in examples], dtype=str)
        stored: dict[str, np.ndarray] = {"idf": idf.astype(np.float32)}
        neighbours = None
        if float(self._config["neighbour_weight"]) > 0:
            # sorted by intent (np.unique's order, the same as sklearn's classes_)
            order = np.argsort(labels, kind="stable")
            _, starts = np.unique(labels[order], return_index=True)
            stored["examples"] = _unit(dense[order]).astype(np.float32)
            stored["starts"] = starts.astype(np.int64)
            neighbours = np.empty((len(labels), len(starts)))
            neighbours[order] = self._neighbours(
                dense[order], stored["examples"], starts, own=True
            )
        model = LogisticRegression(
            C=float(self._config["C"]), max_iter=int(self._config["max_iter"])
        )
        model.fit(self._design(counts, dense, idf, neighbours), labels)
        self._weights = {
            "classes": np.asarray(model.classes_, dtype=str),
            "coef": model.coef_.astype(np.float32),
            "intercept": model.intercept_.astype(np.float32),
            **stored,
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
        neighbours = None
        if "examples" in self._weights:
            neighbours = self._neighbours(
                dense, self._weights["examples"], self._weights["starts"]
            )
        design = self._design(counts, dense, self._weights["idf"], neighbours)
        logits = design @ self._weights["coef"].T
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


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
