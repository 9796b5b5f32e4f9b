"""Tests of `kerasrnn.teaching.text_classification.model`.

References: a NumPy re-implementation of the masked pooling written here; the
same classifier rebuilt from `keras.layers` built-ins with the same weights;
the same classifier without word dropout; the unpadded review for masking; a
reloaded `.keras` file. Tolerances: 1e-5 absolute and relative in float32.
"""

import keras
import numpy as np
import pytest

from kerasrnn.teaching import text_classification as tc
from tests.teaching.text_classification.helpers import (
    ATOL,
    RTOL,
    VOCAB,
    padded,
    small_classifier,
)
from tests.utils import to_numpy

# --- masked pooling -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["max_mean", "max", "mean"])
def test_masked_pooling_matches_numpy(mode):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 3)).astype("float32") - 2.0  # mostly negative
    mask = np.array(
        [
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [0, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 0, 0],
        ],
        bool,
    )
    maxes, means = [], []
    for row, m in zip(x, mask):
        maxes.append(row[m].max(axis=0) if m.any() else np.zeros(3))
        means.append(row[m].mean(axis=0) if m.any() else np.zeros(3))
    expected = {
        "max": np.array(maxes),
        "mean": np.array(means),
        "max_mean": np.concatenate([maxes, means], axis=-1),
    }[mode]
    got = to_numpy(tc.MaskedPooling(mode)(x, mask=mask))
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=RTOL)
    # Without a mask every step counts.
    no_mask = to_numpy(tc.MaskedPooling("max")(x))
    np.testing.assert_allclose(no_mask, x.max(axis=1), atol=ATOL, rtol=RTOL)


def test_masked_pooling_validation_and_config():
    with pytest.raises(ValueError, match="mode must be one of"):
        tc.MaskedPooling("median")
    layer = tc.MaskedPooling("mean")
    assert tc.MaskedPooling.from_config(layer.get_config()).mode == "mean"


# --- the classifier -----------------------------------------------------------


def reference_classifier(cell, bidirectional, pooling, num_layers=1):
    """The same network from keras.layers built-ins (no kerasrnn layer)."""
    builtin = {
        "simple_rnn": keras.layers.SimpleRNN,
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
    }[cell]
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 6, mask_zero=True)(ids)
    x = keras.layers.SpatialDropout1D(0.2)(x)
    for i in range(num_layers):
        rnn = builtin(
            5, return_sequences=not (i == num_layers - 1 and pooling == "last")
        )
        x = keras.layers.Bidirectional(rnn)(x) if bidirectional else rnn(x)
    if pooling != "last":
        x = tc.MaskedPooling(pooling)(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(ids, keras.layers.Dense(1, activation="sigmoid")(x))


def review_batch():
    rng = np.random.default_rng(2)
    return padded([rng.integers(2, VOCAB, n) for n in (9, 4, 1, 7)], 9)


def assert_same_predictions(model, reference):
    """Both models' inference outputs on `review_batch()` agree to 1e-5."""
    x = review_batch()
    np.testing.assert_allclose(
        to_numpy(model(x, training=False)),
        to_numpy(reference(x, training=False)),
        atol=ATOL,
        rtol=RTOL,
    )


CASES = [
    ("lstm", True, "max_mean", 1),
    ("lstm", False, "last", 2),
    ("gru", True, "max", 1),
    ("simple_rnn", False, "mean", 1),
]
CASE_IDS = ["bilstm_max_mean", "lstm_last_stacked", "bigru_max", "simple_rnn_mean"]


@pytest.mark.parametrize(
    "cell, bidirectional, pooling, num_layers", CASES, ids=CASE_IDS
)
def test_classifier_matches_keras_builtins(cell, bidirectional, pooling, num_layers):
    ours = small_classifier(
        cell, bidirectional=bidirectional, pooling=pooling, num_layers=num_layers
    )
    theirs = reference_classifier(cell, bidirectional, pooling, num_layers)
    rng = np.random.default_rng(4)
    weights = [
        0.3 * rng.standard_normal(w.shape).astype("float32") for w in ours.get_weights()
    ]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    assert_same_predictions(ours, theirs)


@pytest.mark.parametrize(
    "cell, bidirectional, pooling, num_layers", CASES, ids=CASE_IDS
)
def test_padding_does_not_change_the_prediction(
    cell, bidirectional, pooling, num_layers
):
    model = small_classifier(
        cell, bidirectional=bidirectional, pooling=pooling, num_layers=num_layers
    )
    x = review_batch()
    batched = to_numpy(model(x, training=False)).reshape(-1)
    for i, row in enumerate(x):
        alone = row[row != 0][None, :]
        longer = np.pad(alone, [[0, 0], [0, 5]])
        for variant in (alone, longer):
            np.testing.assert_allclose(
                to_numpy(model(variant, training=False)).reshape(-1),
                batched[i : i + 1],
                atol=ATOL,
                rtol=RTOL,
            )


def test_classifier_with_token_dropout_keeps_the_other_weights():
    """Word dropout adds no weights and, seeded after the others, leaves the
    weights of the same classifier without it unchanged; it only acts in
    training."""
    plain = small_classifier("lstm")
    dropping = small_classifier("lstm", token_dropout=0.2)
    assert dropping.get_layer("token_dropout").rate == 0.2
    assert len(plain.get_weights()) == len(dropping.get_weights())
    for a, b in zip(plain.get_weights(), dropping.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert_same_predictions(dropping, plain)


def test_classifier_output_and_keras_round_trip(tmp_path):
    model = small_classifier("gru", dense_units=4)
    x = review_batch()
    expected = to_numpy(model(x, training=False))
    assert expected.shape == (4, 1) and np.all((expected > 0) & (expected < 1))
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(loaded(x, training=False)), expected, atol=ATOL, rtol=RTOL
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "transformer"}, "cell must be one of"),
        ({"pooling": "attention"}, "pooling must be one of"),
        ({"units": 0}, "units must be a positive integer"),
        ({"num_layers": 0}, "num_layers must be a positive integer"),
        ({"dropout": 1.0}, "dropout must be a float"),
        ({"token_dropout": 1.0}, "token_dropout must be a float"),
        ({"dense_units": -1}, "dense_units must be an integer >= 0"),
    ],
    ids=[
        "cell",
        "pooling",
        "units",
        "num_layers",
        "dropout",
        "token_dropout",
        "dense_units",
    ],
)
def test_classifier_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tc.build_classifier(VOCAB, **kwargs)
