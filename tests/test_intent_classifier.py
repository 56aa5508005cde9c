"""The Rasa SentenceIntentClassifier: trains on sentence features, stores plain arrays,
and predicts the same after a reload.

It runs in the Rasa virtualenv, as in training and in the server. The features here are
made by hand (two small vocabularies, two directions in the embedding space) so that the
test shows what the classifier does with each kind of feature.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tandem.rasa_model import rasa_env, rasa_venv

TRAIN_AND_RELOAD = """
import json, sys, tempfile
from pathlib import Path
import numpy as np, scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from nlu.intent_classifier import SentenceIntentClassifier

rng = np.random.default_rng(0)
def message(words, direction, intent=None):
    counts = np.zeros((1, 6)); counts[0, words] = 1
    dense = direction + rng.normal(0, 0.05, 4); dense /= np.linalg.norm(dense)
    m = Message(data={"text": "x", **({"intent": intent} if intent else {})})
    m.add_features(Features(scipy.sparse.coo_matrix(counts), "sentence", "text", "cv"))
    m.add_features(Features(dense.reshape(1, -1), "sentence", "text", "dense"))
    return m
A, B = np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])
train = [message([0, 1], A, "order_status") for _ in range(10)]
train += [message([3, 4], B, "ask_hours") for _ in range(10)]
storage = LocalModelStorage(Path(tempfile.mkdtemp()))
resource = Resource("intent")
context = ExecutionContext(GraphSchema({}), "test")
config = json.loads(sys.argv[1])
classifier = SentenceIntentClassifier.create(config, storage, resource, context)
classifier.train(TrainingData(train))
# known words with their embedding; then words never seen in training: the embedding decides
rng = np.random.default_rng(1)
tests = [message([0], A), message([4], B), message([5], B), message([2, 5], A)]
classifier.process(tests)
reloaded = SentenceIntentClassifier.load(config, storage, resource, context)
rng = np.random.default_rng(1)  # the same four messages again
again = [message([0], A), message([4], B), message([5], B), message([2, 5], A)]
reloaded.process(again)
empty = Message(data={"text": "   "})
reloaded.process([empty])
try:
    reloaded.process([Message(data={"text": "no features"})])
    error = None
except ValueError as e:
    error = str(e)
print(json.dumps({
    "first": [m.get("intent") for m in tests],
    "ranking": [m.get("intent_ranking") for m in tests],
    "reloaded": [m.get("intent") for m in again],
    "empty": empty.get("intent"),
    "files": sorted(p.name for p in storage._directory_for_resource(resource).iterdir()),
    "arrays": sorted(np.load(storage._directory_for_resource(resource) / "weights.npz").files),
    "error": error,
}))
"""


@pytest.mark.parametrize(
    "config", [{}, {"neighbour_weight": 2.0}], ids=["linear", "with-neighbours"]
)
def test_classifier_learns_from_both_kinds_of_features_and_survives_a_reload(
    config: dict,
) -> None:
    python = rasa_venv() / "bin" / "python"
    if not python.exists():
        pytest.skip("the Rasa virtualenv is not installed (make setup)")
    result = subprocess.run(
        [str(python), "-c", TRAIN_AND_RELOAD, json.dumps(config)],
        capture_output=True,
        text=True,
        env=rasa_env(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    names = [intent["name"] for intent in out["first"]]
    # the last two share no word with the training data: the embedding alone decides
    assert names == ["order_status", "ask_hours", "ask_hours", "order_status"]
    for ranking in out["ranking"]:
        confidences = [r["confidence"] for r in ranking]
        assert confidences == sorted(confidences, reverse=True)
        assert abs(sum(confidences) - 1.0) < 1e-5  # two intents: the whole distribution
    assert out["first"][0]["confidence"] > 0.9
    # stored as plain arrays and reloaded: the same answers, the same confidences
    assert out["files"] == ["weights.npz"]
    # the neighbour feature keeps the training embeddings, sorted by intent
    with_neighbours = {"examples", "starts"} <= set(out["arrays"])
    assert with_neighbours == bool(config.get("neighbour_weight"))
    for first, again in zip(out["first"], out["reloaded"], strict=True):
        assert first["name"] == again["name"]
        assert abs(first["confidence"] - again["confidence"]) < 1e-5
    assert out["empty"] is None  # an empty message is left alone, not guessed
    assert "DenseFeaturizer" in out["error"]
