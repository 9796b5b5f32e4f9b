"""Export for serving: a SavedModel whose signature takes raw review
strings, and an end-to-end `.keras` model of the same."""

import os
import shutil
import tempfile

import keras

__all__ = [
    "SERVING_INPUT",
    "SERVING_OUTPUT",
    "end_to_end_model",
    "export_saved_model",
    "save_keras_model",
    "serving_function",
]

SERVING_OUTPUT = "positive_probability"


SERVING_INPUT = "reviews"


def end_to_end_model(vectorizer, crop, classifier):
    """A Keras model from raw review strings `(batch,)` to `P(positive)`."""
    reviews = keras.Input(shape=(), dtype="string", name=SERVING_INPUT)
    probability = classifier(crop(vectorizer(reviews)))
    return keras.Model(reviews, probability, name=f"{classifier.name}_end_to_end")


def serving_function(vectorizer, crop, classifier):
    """A `tf.function` from a `(batch,)` string tensor to `{SERVING_OUTPUT}`."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SERVING_INPUT)])
    def serve(reviews):
        ids = crop(vectorizer(reviews))
        probability = classifier(ids, training=False)
        return {SERVING_OUTPUT: tf.reshape(probability, [-1])}

    return serve


def export_saved_model(vectorizer, crop, classifier, path):
    """Writes a SavedModel that classifies raw review strings.

    Its `serving_default` (alias of `serve`) signature takes `reviews`, a
    `(batch,)` string tensor, and returns `positive_probability`, a `(batch,)`
    float tensor. The vocabulary and weights are inside; the layers run as
    plain TensorFlow ops, so a model trained on a GPU serves on a CPU. It is
    written to a temporary folder beside `path` and renamed into place.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    archive = keras.export.ExportArchive()
    archive.track(vectorizer)
    archive.track(crop)
    archive.track(classifier)
    archive.add_endpoint("serve", serving_function(vectorizer, crop, classifier))
    tmp = tempfile.mkdtemp(prefix=".saved_model-partial-", dir=parent)
    try:
        archive.write_out(tmp, verbose=False)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def save_keras_model(model, path):
    """`model.save(path)` through a temporary file renamed into place."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.partial.keras"
    model.save(tmp)
    os.replace(tmp, path)
    return path
