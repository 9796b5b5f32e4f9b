"""Tests of `kerasrnn.text_classification`.

References: NumPy re-implementations of the crop, the masked pooling and the
metrics written here; the same classifier rebuilt from `keras.layers`
built-ins with the same weights; the unpadded review for masking; the files
of a generated aclImdb fixture for the pipelines; a reloaded SavedModel and
`.keras` file for the export. Tolerances: 1e-5 absolute and relative in
float32.
"""

import math
import os
import re

import keras
import numpy as np
import pytest

from kerasrnn import text_classification as tc
from tests.utils import tensorflow_only, to_numpy

ATOL = RTOL = 1e-5


# --- the crop ------------------------------------------------------------------


def crop_reference(ids, max_length, head_length):
    """Row by row: the real ids, the first `head` and last `max - head` kept."""
    rows = []
    for row in np.asarray(ids):
        real = row[row != 0]
        if len(real) > max_length:
            tail = max_length - head_length
            real = np.concatenate([real[:head_length], real[len(real) - tail :]])
        rows.append(real)
    width = max(1, max(len(r) for r in rows))
    out = np.zeros((len(rows), width), np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def padded(rows, width):
    out = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@pytest.mark.parametrize(
    "head_length", [0, 2, 5], ids=["tail_only", "head2", "head_only"]
)
@pytest.mark.parametrize("width", [11, 13], ids=["tight", "padded"])
def test_head_tail_crop_matches_numpy(head_length, width):
    rng = np.random.default_rng(0)
    lengths = [0, 3, 5, 6, 11]
    ids = padded([rng.integers(2, 50, n) for n in lengths], width)
    got = to_numpy(tc.HeadTailCrop(5, head_length)(ids))
    np.testing.assert_array_equal(got, crop_reference(ids, 5, head_length))


def test_head_tail_crop_short_and_empty_batches():
    short = padded([[4, 5], [6]], 9)
    np.testing.assert_array_equal(
        to_numpy(tc.HeadTailCrop(5)(short)), np.array([[4, 5], [6, 0]])
    )
    # An all-padding batch still gives one (masked) step for the RNN.
    np.testing.assert_array_equal(
        to_numpy(tc.HeadTailCrop(5)(np.zeros((2, 3), np.int32))), np.zeros((2, 1))
    )
    np.testing.assert_array_equal(
        to_numpy(tc.HeadTailCrop(5)(np.zeros((2, 0), np.int32))), np.zeros((2, 1))
    )


def test_head_tail_crop_config_and_validation():
    layer = tc.HeadTailCrop(7, head_length=3, name="crop")
    clone = tc.HeadTailCrop.from_config(layer.get_config())
    assert (clone.max_length, clone.head_length, clone.name) == (7, 3, "crop")
    assert tc.HeadTailCrop(8).head_length == 2
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        tc.HeadTailCrop(0)
    with pytest.raises(ValueError, match="head_length must be an integer in"):
        tc.HeadTailCrop(4, head_length=5)


# --- masked pooling ----------------------------------------------------------------


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


# --- word dropout ------------------------------------------------------------------


def test_token_dropout_replaces_real_tokens_at_its_rate_in_training_only():
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 1000, (200, 60)).astype("int32")
    ids[:, 45:] = 0  # right padding
    layer = tc.TokenDropout(0.3, seed=1)
    out = to_numpy(layer(ids, training=True))
    real = ids != 0
    replaced = out != ids
    # Only real tokens change, and only into the unknown word's id.
    assert not np.any(replaced & ~real)
    assert np.all(out[replaced] == 1)
    # 9,000 real tokens: the observed rate is within 4 standard errors of 0.3.
    rate = replaced[real].mean()
    assert abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / real.sum())
    # A second call draws afresh; inference leaves the ids alone.
    assert np.any(to_numpy(layer(ids, training=True)) != out)
    np.testing.assert_array_equal(to_numpy(layer(ids, training=False)), ids)
    np.testing.assert_array_equal(to_numpy(layer(ids)), ids)
    other = tc.TokenDropout(0.3, oov_id=7, seed=1)
    assert set(np.unique(to_numpy(other(ids, training=True))[replaced])) <= {7}


def test_token_dropout_validation_and_config():
    for rate in (-0.1, 1.0, True, "0.1"):
        with pytest.raises(ValueError, match="rate must be a float in"):
            tc.TokenDropout(rate)
    for oov_id in (0, -1, 1.5):
        with pytest.raises(ValueError, match="oov_id must be a positive integer"):
            tc.TokenDropout(0.1, oov_id=oov_id)
    layer = tc.TokenDropout(0.25, oov_id=3, seed=5)
    copy = tc.TokenDropout.from_config(layer.get_config())
    assert (copy.rate, copy.oov_id, copy.seed) == (0.25, 3, 5)


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


# --- the classifier ------------------------------------------------------------------

VOCAB = 40


def small_classifier(cell, **kwargs):
    settings = dict(
        units=5, embedding_dim=6, embedding_dropout=0.2, dropout=0.2, seed=3
    )
    settings.update(kwargs)
    return tc.build_classifier(VOCAB, cell=cell, **settings)


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
        ({"dense_units": -1}, "dense_units must be a non-negative"),
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


# --- metrics ---------------------------------------------------------------------------


def test_binary_metrics_by_hand():
    probabilities = [0.9, 0.2, 0.6, 0.4, 0.5]
    labels = [1, 0, 0, 1, 1]  # predicted 1, 0, 1, 0, 1: TP 2, TN 1, FP 1, FN 1
    got = tc.binary_metrics(probabilities, labels)
    assert got["confusion_matrix"] == [[1, 1], [1, 2]]
    assert got["accuracy"] == pytest.approx(3 / 5)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)
    loss = (
        -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.4) + math.log(0.5))
        / 5
    )
    assert got["loss"] == pytest.approx(loss, rel=1e-9)
    assert got["num_examples"] == 5


# --- pipelines, training, export (TensorFlow) ------------------------------------------------


def test_standardize_review():
    tf = pytest.importorskip("tensorflow")
    text = tf.constant(["Great<br /><br />MOVIE!It's <br/>fine."])
    words = tf.strings.split(tc.standardize_review(text)).numpy()[0]
    assert [w.decode() for w in words] == ["great", "movie", "it", "s", "fine"]


def test_standardize_review_keeping_marks_splits_them_into_words():
    tf = pytest.importorskip("tensorflow")
    text = tf.constant(["Awful!!<br />Why?It's <br/>fine."])
    words = tf.strings.split(tc.standardize_review_keeping_marks(text)).numpy()[0]
    expected = ["awful", "!", "!", "why", "?", "it", "s", "fine"]
    assert [w.decode() for w in words] == expected
    vectorizer = tc.make_vectorizer(10, keep_marks=True)
    vectorizer.adapt(tf.constant(["What?! No!", "no"]))
    assert {"!", "?", "no"} <= set(vectorizer.get_vocabulary())


@pytest.fixture
def fixture_data(tmp_path):
    from kerasrnn.datasets.imdb import load_imdb, write_sample_aclimdb

    folder = write_sample_aclimdb(tmp_path / "data", (40, 12), seed=1)
    data = load_imdb(folder, validation_split=0.25, seed=0)
    vectorizer = tc.make_vectorizer(200)
    vectorizer.adapt(data.train_texts)
    return data, vectorizer


@tensorflow_only
def test_encode_dataset_batches_by_length(fixture_data):
    data, vectorizer = fixture_data
    crop = tc.HeadTailCrop(12, head_length=3)
    expected = []
    for text, label in data.test:
        ids = to_numpy(crop(vectorizer(text[None])))[0]
        expected.append((tuple(ids[ids != 0]), int(label)))

    ds = tc.encode_dataset(data.test, vectorizer, crop, batch_size=5, bucket_width=4)
    got, batches = [], 0
    for ids, labels in ds:
        ids = ids.numpy()
        batches += 1
        assert ids.shape[0] <= 5
        assert np.any(ids[:, -1] != 0)  # padded to its longest row, no further
        for row, label in zip(ids, labels.numpy()):
            got.append((tuple(row[row != 0]), int(label)))
    assert sorted(got) == sorted(expected)
    assert len(ds) == batches  # the cardinality that progress bars show
    first, second = [[x.numpy().tolist() for x, _ in ds] for _ in range(2)]
    assert first == second  # no shuffle seed: a fixed order

    shuffled = tc.encode_dataset(data.train, vectorizer, crop, 5, shuffle_seed=0)
    epochs = [
        sorted(tuple(r) for x, _ in shuffled for r in x.numpy().tolist())
        for _ in range(2)
    ]
    assert epochs[0] == epochs[1]
    assert sum(1 for _ in shuffled) == len(shuffled)


class StopAfterEpoch(keras.callbacks.Callback):
    """Raises like a Ctrl-C once epoch `epoch` (0-based) is done."""

    def __init__(self, epoch):
        super().__init__()
        self.stop_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        logs = logs or {}
        if epoch == self.stop_epoch + 1:
            raise KeyboardInterrupt("simulated interruption")


@tensorflow_only
def test_train_classifier_resumes_after_an_interruption(fixture_data, tmp_path):
    data, vectorizer = fixture_data
    crop = tc.HeadTailCrop(16)
    train = tc.encode_dataset(data.train, vectorizer, crop, 8, shuffle_seed=0)
    validation = tc.encode_dataset(data.validation, vectorizer, crop, 32)

    def model():
        classifier = tc.build_classifier(
            vectorizer.vocabulary_size(), units=5, embedding_dim=8, seed=3
        )
        return tc.compile_classifier(classifier, 5e-3, decay_steps=3 * len(train))

    out = str(tmp_path / "run")
    # Leftovers of an earlier, finished run: no backup, so they must go.
    os.makedirs(os.path.join(out, "checkpoints"))
    with open(os.path.join(out, "training_log.csv"), "w") as f:
        f.write("epoch,accuracy,loss,val_accuracy,val_loss\n")
        f.write("".join(f"{e},0.99,0.01,0.999,0.01\n" for e in range(5)))
    with open(os.path.join(out, "checkpoints", "best.weights.h5"), "w") as f:
        f.write("stale")

    with pytest.raises(KeyboardInterrupt):
        tc.train_classifier(
            model(),
            train,
            validation,
            out,
            epochs=3,
            patience=5,
            extra_callbacks=[StopAfterEpoch(1)],
            verbose=0,
        )
    assert os.listdir(os.path.join(out, "backup", "imdb"))
    resumed = tc.train_classifier(
        model(), train, validation, out, epochs=3, patience=5, verbose=0
    )
    assert resumed["resumed"] and resumed["epochs_run"] == 1
    assert [row["epoch"] for row in resumed["history"]] == [0, 1, 2]
    assert all(row["val_accuracy"] != 0.999 for row in resumed["history"])
    best = max(resumed["history"], key=lambda row: row["val_accuracy"])
    assert resumed["best_epoch"] == best["epoch"] + 1
    assert resumed["best_val_accuracy"] == best["val_accuracy"]
    assert not os.path.exists(os.path.join(out, "backup", "imdb"))


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
def test_plot_learning_curves(tmp_path):
    history = [
        {
            "epoch": e,
            "loss": 0.5 - 0.1 * e,
            "accuracy": 0.7 + 0.1 * e,
            "val_loss": 0.55 - 0.1 * e,
            "val_accuracy": 0.7 + 0.05 * e,
        }
        for e in range(3)
    ]
    path = tc.plot_learning_curves(history, tmp_path / "curves.png", title="t")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_make_vectorizer_rejects_tiny_vocabulary():
    pytest.importorskip("tensorflow")
    with pytest.raises(ValueError, match="vocabulary_size must be an integer >= 3"):
        tc.make_vectorizer(2)


# --- ensembles ----------------------------------------------------------------------


class InterruptTraining(keras.callbacks.Callback):
    """Raises like a Ctrl-C when the `at`-th (0-based) `fit` begins, and
    counts the `fit` calls that began."""

    def __init__(self, at=None):
        super().__init__()
        self.at = at
        self.started = 0

    def on_train_begin(self, logs=None):
        logs = logs or {}
        if self.started == self.at:
            raise KeyboardInterrupt("simulated interruption")
        self.started += 1


def test_average_ensemble_is_the_mean_of_its_members():
    members = [
        small_classifier("gru", seed=seed, name=f"member_{seed}") for seed in range(3)
    ]
    ids = np.array([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12], [13, 0, 0, 0, 0, 0]])
    each = np.stack([to_numpy(m(ids, training=False))[:, 0] for m in members])
    assert np.ptp(each, axis=0).max() > 1e-4  # the seeds give different members
    ensemble = tc.average_ensemble(members)
    got = to_numpy(ensemble(ids, training=False))
    assert got.shape == (3, 1)
    np.testing.assert_allclose(got[:, 0], each.mean(axis=0), atol=1e-6, rtol=0)
    assert ensemble.count_params() == sum(m.count_params() for m in members)
    assert tc.average_ensemble(members[:1]) is members[0]
    with pytest.raises(
        ValueError, match=r"members must not be empty. Received: members=\[\]"
    ):
        tc.average_ensemble([])


@tensorflow_only
def test_train_ensemble_resumes_without_retraining_finished_members(
    fixture_data, tmp_path
):
    data, vectorizer = fixture_data
    crop = tc.HeadTailCrop(16)
    validation = tc.encode_dataset(data.validation, vectorizer, crop, 32)
    seeds_built = []

    def make_train(seed):
        return tc.encode_dataset(data.train, vectorizer, crop, 8, shuffle_seed=seed)

    def build(seed, name):
        seeds_built.append((seed, name))
        classifier = tc.build_classifier(
            vectorizer.vocabulary_size(), units=5, embedding_dim=8, seed=seed, name=name
        )
        return tc.compile_classifier(classifier, 5e-3)

    out = str(tmp_path / "run")
    kwargs = dict(num_members=3, seed=7, epochs=1, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        tc.train_ensemble(
            build, make_train, validation, out,
            extra_callbacks=[InterruptTraining(at=1)], **kwargs,
        )  # fmt: skip
    assert seeds_built == [(7, "member_0"), (8, "member_1")]
    first = os.path.join(out, "members", "0")
    assert os.path.exists(os.path.join(first, tc.MEMBER_RECORD))
    assert not os.path.exists(os.path.join(out, "members", "1", tc.MEMBER_RECORD))
    assert tc.ensemble_in_progress(out, 3)
    with open(os.path.join(first, "checkpoints", "best.weights.h5"), "rb") as f:
        weights_before = f.read()

    counter = InterruptTraining()
    members = tc.train_ensemble(
        build, make_train, validation, out, extra_callbacks=[counter], **kwargs
    )
    assert counter.started == 2  # members 1 and 2 only
    assert [m["seed"] for m in members] == [7, 8, 9]
    assert [m["epochs_run"] for m in members] == [0, 1, 1]
    with open(os.path.join(first, "checkpoints", "best.weights.h5"), "rb") as f:
        assert f.read() == weights_before
    reference = build(7, "reference")
    reference.load_weights(os.path.join(first, "checkpoints", "best.weights.h5"))
    for got, expected in zip(
        members[0]["model"].get_weights(), reference.get_weights()
    ):
        np.testing.assert_array_equal(got, expected)

    # One pass gives the ensemble's mean and each member's own prediction.
    models = [m["model"] for m in members]
    ensemble, each, labels = tc.predict_ensemble(models, validation)
    for model, p in zip(models, each):
        alone, alone_labels = tc.predict_dataset(model, validation)
        np.testing.assert_allclose(p, alone, atol=1e-6, rtol=0)
        np.testing.assert_array_equal(labels, alone_labels)
    np.testing.assert_allclose(ensemble, np.mean(each, axis=0), atol=1e-6, rtol=0)
    whole = tc.predict_dataset(tc.average_ensemble(models), validation)[0]
    np.testing.assert_allclose(whole, ensemble, atol=1e-6, rtol=0)

    # A record that cannot be read does not count as a finished member.
    with open(os.path.join(out, "members", "2", tc.MEMBER_RECORD), "w") as f:
        f.write('{"seed": 9, "hist')
    counter = InterruptTraining()
    tc.train_ensemble(
        build, make_train, validation, out, extra_callbacks=[counter], **kwargs
    )
    assert counter.started == 1


@pytest.mark.parametrize("num_members", [0, -2, 1.5, True])
def test_ensembles_reject_bad_member_counts(tmp_path, num_members):
    message = (
        f"num_members must be a positive integer. Received: num_members={num_members}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        tc.train_ensemble(None, None, None, str(tmp_path), num_members=num_members)
    with pytest.raises(ValueError, match=re.escape(message)):
        tc.ensemble_in_progress(str(tmp_path), num_members)


@tensorflow_only
def test_a_keras_file_saved_by_an_earlier_version_still_loads():
    """`tests/data/imdb_end_to_end_saved_by_241cea4.keras` is an end-to-end
    model (vectoriser keeping marks, `HeadTailCrop(20, 4)`, a classifier with
    `TokenDropout`) saved by commit 241cea4, before `text_classification`
    became a package; it must load and predict what it predicted then."""
    import tensorflow as tf

    path = os.path.join(
        os.path.dirname(__file__), "data", "imdb_end_to_end_saved_by_241cea4.keras"
    )
    model = keras.saving.load_model(path)
    reviews = ["A great film!", "Awful, boring.<br />Really?", "ok", ""]
    saved_then = [0.49772727489471436, 0.5001318454742432, 0.49929681420326233, 0.5]
    np.testing.assert_allclose(
        to_numpy(model(tf.constant(reviews))).reshape(-1), saved_then, atol=1e-6
    )


@pytest.mark.parametrize("num_members", [1, 3])
def test_start_afresh_removes_what_an_earlier_run_left(tmp_path, num_members):
    def touch(relative):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("old")

    single = ["training_log.csv", "checkpoints/best.weights.h5", "backup/imdb/x"]
    for relative in [
        "results.json",
        "saved_model/saved_model.pb",
        "members/0/member.json",
        "keep.txt",
        *single,
    ]:
        touch(relative)
    tc.start_afresh(tmp_path, num_members, outputs=["results.json", "saved_model"])
    left = sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()
    )
    # A single model's own files stay for a single model (they are its
    # resumable state); an ensemble keeps its files under members/ only.
    assert left == (sorted(["keep.txt", *single]) if num_members == 1 else ["keep.txt"])
    with pytest.raises(ValueError, match="num_members"):
        tc.start_afresh(tmp_path, 0)


def test_training_record_of_one_member_and_of_an_ensemble():
    def member(seed, best, epochs):
        history = [{"epoch": e, "val_accuracy": 0.5 + 0.1 * e} for e in range(epochs)]
        return {
            "seed": seed,
            "best_epoch": best,
            "best_val_accuracy": 0.5 + 0.1 * (best - 1),
            "history": history,
            "resumed": seed == 1,
            "epochs_run": epochs,
            "model": object(),
        }

    one = tc.training_record([member(0, 2, 3)])
    assert one == {
        "validation": {"best_epoch": 2, "best_accuracy": 0.6},
        "history": member(0, 2, 3)["history"],
        "resumed": False,
        "epochs_run_by_this_process": 3,
    }
    labels = np.array([1, 0, 1, 0])
    each = [np.array([0.9, 0.2, 0.4, 0.1]), np.array([0.8, 0.7, 0.6, 0.3])]
    many = tc.training_record([member(0, 1, 2), member(1, 2, 2)], labels, each, 0.7)
    assert many["test_members"] == [
        {"seed": 0, "accuracy": 0.75},
        {"seed": 1, "accuracy": 0.75},
    ]
    assert many["validation"]["accuracy"] == 0.7
    assert [m["best_epoch"] for m in many["validation"]["members"]] == [1, 2]
    assert [set(m) for m in many["members"]] == [
        {"seed", "history", "resumed", "epochs_run"}
    ] * 2
    assert many["resumed"] is True and many["epochs_run_by_this_process"] == 4
