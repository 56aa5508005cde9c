"""Rasa NLU extensions: the dense sentence featurizer and the export of its encoder.

``nlu.dense_featurizer`` runs inside the Rasa virtualenv (Python 3.10, onnxruntime,
tokenizers); ``nlu.encoder`` runs in the app virtualenv (torch) and writes the ONNX
file the featurizer reads. Neither imports anything from the app.
"""
