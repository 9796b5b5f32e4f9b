"""End-to-end smoke tests of `tutorials/imdb_sentiment.py` and
`tutorials/imdb_predict.py` on a generated aclImdb fixture (TensorFlow only:
tf.data, TextVectorization, SavedModel), and an opt-in run on the real data.

The exported SavedModel is checked in a separate Python process in which
`import kerasrnn` fails, against the probabilities of the Keras model, within
1e-5.
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasrnn.teaching.datasets import imdb
from kerasrnn.teaching.datasets.imdb import write_sample_aclimdb
from tests.utils import tensorflow_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUTORIAL = os.path.join(ROOT, "tutorials", "imdb_sentiment.py")
PREDICT = os.path.join(ROOT, "tutorials", "imdb_predict.py")
REAL_DATA = os.environ.get("KERASRNN_IMDB_DATA") or os.path.join(
    os.path.dirname(ROOT), "shared", "data", "aclImdb_v1_train_test.tar.gz"
)
COUNTS = {"train/pos": 30, "train/neg": 26, "test/pos": 9, "test/neg": 11}

pytestmark = tensorflow_only

# Runs a script with `kerasrnn` unimportable, and says so first.
WITHOUT_KERASRNN = """
import importlib.abc, runpy, sys

class NoKerasRNN(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "kerasrnn":
            raise ImportError("kerasrnn is blocked in this process")

sys.meta_path.insert(0, NoKerasRNN())
try:
    import kerasrnn  # noqa: F401
    print("KERASRNN_IMPORTED")
except ImportError:
    print("KERASRNN_UNAVAILABLE")
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def load_tutorial():
    spec = importlib.util.spec_from_file_location("imdb_sentiment", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Interrupt(keras.callbacks.Callback):
    """Stops the run like a Ctrl-C once the first epoch is done."""

    def on_epoch_begin(self, epoch, logs=None):
        logs = logs or {}
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")


def quick_args(data_dir, tmp_path, *extra):
    return [
        "--quick",
        "--data-dir", str(data_dir),
        "--cache-dir", str(tmp_path / "cache"),
        "--output-dir", str(tmp_path / "out"),
        *extra,
    ]  # fmt: skip


def test_interrupted_run_resumes_and_exports_a_model_that_serves_without_kerasrnn(
    tmp_path,
):
    tutorial = load_tutorial()
    archive = write_sample_aclimdb(tmp_path / "data", COUNTS, seed=2, archive=True)
    args = quick_args(
        archive, tmp_path, "--epochs", "2", "--seed", "1", "--eval-max-length", "150"
    )
    out = tmp_path / "out"

    with pytest.raises(KeyboardInterrupt):
        tutorial.main(args, extra_callbacks=[Interrupt()])
    assert not (out / "results.json").exists()
    assert os.listdir(out / "backup" / "imdb")

    # Resuming under other settings is refused, and changes nothing.
    with pytest.raises(ValueError, match="--units: 8 -> 9"):
        tutorial.main([*args, "--units", "9"])
    results = tutorial.main(args)
    assert results["resumed"] and results["epochs_run_by_this_process"] == 1
    assert [row["epoch"] for row in results["history"]] == [0, 1]
    assert not (out / "backup" / "imdb").exists()

    # What the run claims: counts, the confusion matrix, settings, timings.
    on_disk = json.loads((out / "results.json").read_text())
    # validation_split 0.1 of each class: round(3.0) + round(2.6) reviews.
    assert on_disk["num_examples"] == {"train": 50, "validation": 6, "test": 20}
    confusion = np.array(on_disk["test"]["confusion_matrix"])
    assert confusion.sum(axis=1).tolist() == [11, 9]  # true neg, true pos
    assert on_disk["test"]["accuracy"] == pytest.approx(np.trace(confusion) / 20)
    assert on_disk["settings"]["cell"] == "lstm" and on_disk["settings"]["epochs"] == 2
    assert set(on_disk["timings_seconds"]) >= {"load_data", "train", "test", "total"}
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "saved_model" / "saved_model.pb").exists()

    reviews = [
        "A wonderful, moving film. Loved it!",
        "Boring and awful<br /><br />a waste of time.",
        "",
        "the plot the scene the music " * 40 + "superb",
    ]
    model = keras.saving.load_model(str(out / "imdb_lstm.keras"))
    # Trained on the last 64 tokens of a review, served on the last 150.
    (crop,) = [layer for layer in model.layers if layer.name.startswith("head_tail")]
    assert (on_disk["settings"]["max_length"], crop.max_length) == (64, 150)
    import tensorflow as tf

    expected = np.asarray(model(tf.constant(reviews))).reshape(-1)

    review_file = tmp_path / "reviews.txt"
    review_file.write_text("\n".join([reviews[0], reviews[3]]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    served = subprocess.run(
        [sys.executable, "-c", WITHOUT_KERASRNN, PREDICT, "--json",
         "--model", str(out / "saved_model"), *reviews, "--file", str(review_file)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr[-3000:]
    lines = served.stdout.strip().splitlines()
    assert lines[0] == "KERASRNN_UNAVAILABLE"
    rows = [json.loads(line) for line in lines[1:]]
    # The reviews given as arguments, then those of the file.
    assert [r["review"] for r in rows] == reviews + [reviews[0], reviews[3].strip()]
    got = np.array([r["positive_probability"] for r in rows])
    np.testing.assert_allclose(got[:4], expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got[4:], expected[[0, 3]], atol=1e-5, rtol=1e-5)
    assert [r["label"] for r in rows[:4]] == [
        "positive" if p >= 0.5 else "negative" for p in expected
    ]


class InterruptSecondFit(keras.callbacks.Callback):
    """Stops the run like a Ctrl-C when the second member's training begins,
    and counts the `fit` calls that began."""

    def __init__(self, interrupt=True):
        super().__init__()
        self.interrupt = interrupt
        self.started = 0

    def on_train_begin(self, logs=None):
        logs = logs or {}
        if self.interrupt and self.started == 1:
            raise KeyboardInterrupt("simulated interruption")
        self.started += 1


def serve_without_kerasrnn(saved_model, reviews, cwd):
    """`imdb_predict.py --json` in a process where `import kerasrnn` fails."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    served = subprocess.run(
        [sys.executable, "-c", WITHOUT_KERASRNN, PREDICT, "--json",
         "--model", str(saved_model), *reviews],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr[-3000:]
    lines = served.stdout.strip().splitlines()
    assert lines[0] == "KERASRNN_UNAVAILABLE"
    return [json.loads(line) for line in lines[1:]]


def test_ensemble_resumes_after_its_first_member_and_serves_the_mean(tmp_path):
    tutorial = load_tutorial()
    archive = write_sample_aclimdb(tmp_path / "data", COUNTS, seed=3, archive=True)
    args = quick_args(archive, tmp_path, "--ensemble", "2", "--seed", "5")
    out = tmp_path / "out"
    first = out / "members" / "0"

    with pytest.raises(KeyboardInterrupt):
        tutorial.main(args, extra_callbacks=[InterruptSecondFit()])
    assert (first / "member.json").exists()
    assert not (out / "members" / "1" / "member.json").exists()
    assert not (out / "results.json").exists()
    weights_before = (first / "checkpoints" / "best.weights.h5").read_bytes()

    with pytest.raises(ValueError, match="--ensemble: 2 -> 3"):
        tutorial.main([*args, "--ensemble", "3"])
    counter = InterruptSecondFit(interrupt=False)
    results = tutorial.main(args, extra_callbacks=[counter])
    assert counter.started == 1  # member 1 only: member 0 was not retrained
    assert (first / "checkpoints" / "best.weights.h5").read_bytes() == weights_before
    assert results["resumed"] and results["epochs_run_by_this_process"] == 1
    assert [m["seed"] for m in results["members"]] == [5, 6]
    assert [m["epochs_run"] for m in results["members"]] == [0, 1]
    assert [m["seed"] for m in results["validation"]["members"]] == [5, 6]
    assert [m["seed"] for m in results["test_members"]] == [5, 6]
    assert results["validation"]["accuracy"] is None  # rotated folds, the default
    assert results["test"]["num_examples"] == 20
    assert not (out / "training_log.csv").exists()
    for i in range(2):
        assert (out / "members" / str(i) / "learning_curves.png").exists()

    # The exported ensemble: the mean of the members' best checkpoints.
    import tensorflow as tf

    reviews = [
        "A wonderful, moving film. Loved it!",
        "Boring and awful<br /><br />a waste of time.",
        "",
        "the plot the scene the music " * 40 + "superb",
    ]
    model = keras.saving.load_model(str(out / "imdb_lstm.keras"))
    ensemble = np.asarray(model(tf.constant(reviews))).reshape(-1)
    vectorizer = model.get_layer("text_vectorization")
    (crop,) = [
        layer for layer in model.layers if layer.__class__.__name__ == "HeadTailCrop"
    ]
    ids = crop(vectorizer(tf.constant(reviews)))
    each = []
    for i, seed in enumerate((5, 6)):
        member = tutorial.build_model(
            tutorial.parse_args(args), vectorizer.vocabulary_size(), 1, seed=seed
        )
        member.load_weights(
            str(out / "members" / str(i) / "checkpoints" / "best.weights.h5")
        )
        each.append(np.asarray(member(ids, training=False)).reshape(-1))
    assert np.abs(each[0] - each[1]).max() > 1e-4  # two different members
    np.testing.assert_allclose(ensemble, np.mean(each, axis=0), atol=1e-6, rtol=0)

    rows = serve_without_kerasrnn(out / "saved_model", reviews, tmp_path)
    got = np.array([r["positive_probability"] for r in rows])
    np.testing.assert_allclose(got, ensemble, atol=1e-5, rtol=1e-5)


def test_word_vectors_come_from_the_training_text_and_start_every_member(
    tmp_path, monkeypatch
):
    from kerasrnn.teaching import text_classification as tc

    tutorial = load_tutorial()
    archive = write_sample_aclimdb(tmp_path / "data", COUNTS, seed=6, archive=True)
    args = quick_args(
        archive, tmp_path, "--ensemble", "2", "--word-vectors-epochs", "2",
        "--validation-split", "0.25",
    )  # fmt: skip
    out = tmp_path / "out"
    streams = []
    learn = tc.train_word_vectors

    def spy(ids, reviews, *rest, **kwargs):
        streams.append(np.asarray(ids))
        return learn(ids, reviews, *rest, **kwargs)

    monkeypatch.setattr(tc, "train_word_vectors", spy)
    starts = []

    class RecordStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            starts.append(np.array(self.model.get_layer("embedding").embeddings))

    with pytest.raises(KeyboardInterrupt):  # as member 1 begins
        tutorial.main(args, extra_callbacks=[RecordStart(), InterruptSecondFit()])
    vectors = np.load(out / "word_vectors.npy")
    learnt = np.linalg.norm(vectors, axis=1) > 0
    np.testing.assert_allclose(np.linalg.norm(vectors[learnt], axis=1), 1, rtol=1e-5)
    assert not learnt[:2].any() and learnt.sum() > 10  # padding, unknown word
    np.testing.assert_array_equal(starts[0][learnt], vectors[learnt])

    # The stream is every training review's text (the members together train
    # on all of them), unlabelled; never a test review's.
    vectorizer = tc.make_vectorizer(
        2000, vocabulary=(out / "vocabulary.txt").read_text().split("\n")[2:],
        keep_marks=True,
    )  # fmt: skip
    (root,) = (tmp_path / "cache").glob("*/aclImdb")

    def tokens(split):
        texts = [p.read_text() for p in sorted((root / split).glob("*/*.txt"))]
        return np.sort(tc.encode_texts(vectorizer, texts)[0])

    assert len(streams) == 1
    np.testing.assert_array_equal(np.sort(streams[0]), tokens("train"))
    assert streams[0].size != tokens("test").size

    # Resumed: the saved vectors start member 1; they are not learnt again.
    with pytest.raises(ValueError, match="--word-vectors-epochs: 2 -> 1"):
        tutorial.main([*args, "--word-vectors-epochs", "1"])
    starts.clear()
    tutorial.main(args, extra_callbacks=[RecordStart()])
    assert len(streams) == 1 and len(starts) == 1
    np.testing.assert_array_equal(starts[0][learnt], vectors[learnt])


@pytest.mark.parametrize("member_validation", ["rotated", "shared"])
def test_members_validate_on_their_folds(tmp_path, member_validation):
    from kerasrnn.teaching import text_classification as tc

    tutorial = load_tutorial()
    archive = write_sample_aclimdb(tmp_path / "data", COUNTS, seed=4, archive=True)
    args = quick_args(
        archive, tmp_path, "--ensemble", "2", "--member-validation", member_validation,
        "--validation-split", "0.25", "--seed", "3",
    )  # fmt: skip
    rotated = member_validation == "rotated"
    if rotated:  # 30 positive training reviews, 8 per fold: three folds, not four
        with pytest.raises(
            ValueError, match="--ensemble 4 needs 4 folds: validation_fold=3"
        ):
            tutorial.main([*args, "--ensemble", "4"])
        assert not (tmp_path / "out").exists()
    results = tutorial.main(args)
    assert results["test"]["num_examples"] == 20

    # Member i's logged validation loss is its best checkpoint's log loss on
    # fold i (rotated) or fold 0 (shared) of the seed-3 draw, not the other.
    parsed = tutorial.parse_args(args)
    out = tmp_path / "out"
    vectorizer = tutorial.make_vectorizer(parsed, None, resuming=True)  # the saved one
    crop = tc.HeadTailCrop(parsed.eval_max_length, parsed.head_length)
    folds = [
        tc.encode_dataset(
            imdb.load_imdb(
                archive, validation_split=0.25, seed=3,
                cache_dir=tmp_path / "cache", validation_fold=fold,
            ).validation,
            vectorizer, crop, 256,
        )
        for fold in (0, 1)
    ]  # fmt: skip
    on_fold_0 = []
    for i, member in enumerate(results["members"]):
        model = tutorial.build_model(
            parsed, vectorizer.vocabulary_size(), 1, seed=member["seed"]
        )
        model.load_weights(
            str(out / "members" / str(i) / "checkpoints" / "best.weights.h5")
        )
        predictions = [tc.predict_dataset(model, fold) for fold in folds]
        losses = [tc.binary_metrics(*p)["loss"] for p in predictions]
        own = i if rotated else 0
        (logged,) = [row["val_loss"] for row in member["history"]]  # one epoch
        np.testing.assert_allclose(losses[own], logged, rtol=1e-5)
        assert abs(losses[1 - own] - logged) > 1e-4
        on_fold_0.append(predictions[0])
    if rotated:  # no validation review is unseen by both members
        assert results["validation"]["accuracy"] is None
    else:  # the average's accuracy on the shared fold
        mean = np.mean([p for p, _ in on_fold_0], axis=0)
        expected = tc.binary_metrics(mean, on_fold_0[0][1])["accuracy"]
        assert results["validation"]["accuracy"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ensemble", "0"], "--ensemble must be positive. Received: 0"),
        (["--ensemble", "-1"], "--ensemble must be positive. Received: -1"),
        (
            ["--ensemble", "2", "--gradient-norms"],
            "--gradient-norms records one model: it needs --ensemble 1. "
            "Received: --ensemble 2",
        ),
        (
            ["--eval-max-length", "8"],
            "--head-length must be in [0, --max-length=64] and at most "
            "--eval-max-length=8. Received: 16",
        ),
        (["--eval-max-length", "0"], "--eval-max-length must be positive. Received: 0"),
        (["--token-dropout", "1"], "--token-dropout must be in [0, 1). Received: 1.0"),
        (["--dropout", "-0.1"], "--dropout must be in [0, 1). Received: -0.1"),
        (
            ["--word-vectors-epochs", "-2"],
            "--word-vectors-epochs must be 0 (none) or positive. Received: -2",
        ),
    ],
    ids=[
        "zero",
        "negative",
        "with-gradient-norms",
        "head-over-eval-length",
        "eval-0",
        "token-dropout",
        "dropout",
        "word-vectors-epochs",
    ],
)
def test_bad_flags_are_refused_before_anything_is_written(
    tmp_path, capsys, flags, message
):
    folder = write_sample_aclimdb(tmp_path / "data", (2, 2))
    with pytest.raises(SystemExit) as error:
        load_tutorial().main(quick_args(folder, tmp_path, *flags))
    assert error.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_validation_split_by_id_blocks_reaches_the_loader(tmp_path, monkeypatch):
    tutorial = load_tutorial()
    folder = write_sample_aclimdb(tmp_path / "data", COUNTS, seed=4)
    monkeypatch.setattr(imdb, "ID_BLOCK_SIZE", 5)
    args = tutorial.parse_args(
        quick_args(folder, tmp_path, "--validation-split-by", "id_blocks")
    )
    data, _, _ = tutorial.load_data(args)
    # 30 and 26 reviews in blocks of 5 ids: one whole block of each class.
    assert data.num_examples["validation"] in (6, 10)
    assert data.num_examples["train"] == 56 - data.num_examples["validation"]
    assert tutorial.parse_args(quick_args(folder, tmp_path)).validation_split_by == (
        "random"
    )


@pytest.mark.slow
def test_gru_stacked_with_gradient_norms_on_a_folder(tmp_path, monkeypatch):
    cell = "gru"
    folder = write_sample_aclimdb(tmp_path / "data", COUNTS, seed=4)
    # Blocks of 5 ids: 6 positive and 6 negative blocks (the last one
    # short), of which round(0.1 * 6) = 1 each is held out, whole.
    monkeypatch.setattr(imdb, "ID_BLOCK_SIZE", 5)
    results = load_tutorial().main(
        quick_args(folder, tmp_path, "--cell", cell, "--no-bidirectional",
                   "--num-layers", "2", "--pooling", "max", "--gradient-norms",
                   "--validation-split-by", "id_blocks")
    )  # fmt: skip
    assert results["settings"]["cell"] == cell
    assert results["settings"]["validation_split_by"] == "id_blocks"
    held_out = results["num_examples"]["validation"]
    assert held_out in (6, 10), "one whole block per class (5 or 1 reviews)"
    assert results["num_examples"]["train"] == 56 - held_out
    assert results["test"]["num_examples"] == 20
    assert (tmp_path / "out" / f"imdb_{cell}.keras").exists()
    assert (tmp_path / "out" / "gradient_norms.png").exists()
    assert len(results["gradient_norms"]["epoch"]) == 2  # before and after epoch 1


def test_unknown_cell_is_refused_before_anything_is_written(tmp_path, capsys):
    folder = write_sample_aclimdb(tmp_path / "data", (2, 2))
    with pytest.raises(SystemExit) as error:
        load_tutorial().main(quick_args(folder, tmp_path, "--cell", "transformer"))
    assert error.value.code == 2
    assert "invalid choice: 'transformer'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_data_fails_early_and_writes_nothing(tmp_path):
    tutorial = load_tutorial()
    empty = tmp_path / "empty"
    empty.mkdir()
    no_train_pos = write_sample_aclimdb(tmp_path / "partial", (2, 2))
    for name in os.listdir(os.path.join(no_train_pos, "train", "pos")):
        os.remove(os.path.join(no_train_pos, "train", "pos", name))
    os.rmdir(os.path.join(no_train_pos, "train", "pos"))
    corrupt = tmp_path / "corrupt.tar.gz"
    good = write_sample_aclimdb(tmp_path / "good", (4, 4), archive=True)
    with open(good, "rb") as f:
        corrupt.write_bytes(f.read()[:300])

    for data_dir, message in (
        (empty, "missing train/pos, train/neg, test/pos, test/neg"),
        (no_train_pos, "missing train/pos"),
        (corrupt, "corrupt|readable tar"),
    ):
        with pytest.raises(ValueError, match=message):
            tutorial.main(quick_args(data_dir, tmp_path))
        assert not (tmp_path / "out").exists()
        cache = tmp_path / "cache"
        assert not cache.exists() or os.listdir(cache) == []
    # 4 reviews per class make one block of 250 ids: nothing to hold out.
    small = write_sample_aclimdb(tmp_path / "small", (4, 4))
    with pytest.raises(ValueError, match="blocks of 250 review ids"):
        tutorial.main(quick_args(small, tmp_path, "--validation-split-by", "id_blocks"))
    assert not (tmp_path / "out").exists()


@pytest.mark.real_data
@pytest.mark.skipif(
    not os.path.exists(REAL_DATA), reason=f"no IMDB archive at {REAL_DATA}"
)
def test_one_short_epoch_on_the_real_reviews_beats_chance(tmp_path):
    results = load_tutorial().main([
        "--data-dir", REAL_DATA, "--output-dir", str(tmp_path / "out"),
        "--limit", "10000", "--epochs", "1", "--no-bidirectional", "--units", "32",
        "--embedding-dim", "32", "--max-length", "150", "--vocabulary-size", "10000",
        "--batch-size", "32", "--ensemble", "1",
    ])  # fmt: skip
    test = results["test"]
    assert test["num_examples"] == 10000
    # Both classes are in the (seeded) test sample, and the model beats the
    # 50 % of chance by far more than sampling noise (0.5 % s.d.).
    assert min(np.sum(test["confusion_matrix"], axis=1)) > 4000
    assert test["accuracy"] > 0.6
