"""Tests of `kerasrnn.teaching.text_classification.export` (TensorFlow only).

References: the Keras classifier's own inference predictions on the same raw
reviews, against a reloaded SavedModel and a reloaded end-to-end `.keras`
file; the saved graph's ops and devices for the placement; the predictions
recorded when an earlier version saved its `.keras` file. Tolerances: 1e-5
absolute and relative in float32; 1e-6 absolute against the recorded
predictions.
"""

import os

import keras
import numpy as np

from kerasrnn.teaching import text_classification as tc
from tests.teaching.text_classification.helpers import ATOL, RTOL
from tests.utils import tensorflow_only, to_numpy


def graph_nodes(saved_model_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        yield from meta_graph.graph_def.node
        for function in meta_graph.graph_def.library.function:
            yield from function.node_def


@tensorflow_only
def test_export_serves_raw_strings_like_the_keras_model(fixture_data, tmp_path):
    import tensorflow as tf

    data, vectorizer = fixture_data
    crop = tc.HeadTailCrop(10, head_length=2)
    # With word dropout, which must be inactive in the served model.
    model = tc.build_classifier(
        vectorizer.vocabulary_size(), units=5, embedding_dim=6, token_dropout=0.5
    )
    reviews = [t.decode() for batch in data.train_texts for t in batch.numpy()][:6]
    reviews += ["", "great " * 30, "Awful!<br />"]
    expected = to_numpy(model(crop(vectorizer(tf.constant(reviews))), training=False))[
        :, 0
    ]

    path = tc.export_saved_model(vectorizer, crop, model, tmp_path / "exported")
    assert [p for p in os.listdir(tmp_path) if "partial" in p] == []
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]
    got = serve(reviews=tf.constant(reviews))[tc.SERVING_OUTPUT].numpy()
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=RTOL)
    # Plain ops placed nowhere in particular: no CuDNN kernel, no device pin.
    nodes = list(graph_nodes(path))
    assert nodes and not [n.op for n in nodes if "cudnn" in n.op.lower()]
    assert not [n.device for n in nodes if "GPU" in n.device.upper()]

    end_to_end = tc.end_to_end_model(vectorizer, crop, model)
    keras_path = tc.save_keras_model(end_to_end, tmp_path / "model.keras")
    reloaded = keras.saving.load_model(keras_path)
    np.testing.assert_allclose(
        to_numpy(reloaded(tf.constant(reviews))).reshape(-1),
        expected,
        atol=ATOL,
        rtol=RTOL,
    )


@tensorflow_only
def test_a_keras_file_saved_by_an_earlier_version_still_loads():
    """`tests/data/imdb_end_to_end_saved_by_241cea4.keras` is an end-to-end
    model (vectoriser keeping marks, `HeadTailCrop(20, 4)`, a classifier with
    `TokenDropout`) saved by commit 241cea4, before `text_classification`
    became a package; it must load and predict what it predicted then."""
    import tensorflow as tf

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        "data",
        "imdb_end_to_end_saved_by_241cea4.keras",
    )
    model = keras.saving.load_model(path)
    reviews = ["A great film!", "Awful, boring.<br />Really?", "ok", ""]
    saved_then = [0.49772727489471436, 0.5001318454742432, 0.49929681420326233, 0.5]
    np.testing.assert_allclose(
        to_numpy(model(tf.constant(reviews))).reshape(-1), saved_then, atol=1e-6
    )
