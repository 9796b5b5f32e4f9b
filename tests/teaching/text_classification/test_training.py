"""Tests of `kerasrnn.teaching.text_classification.training`.

References: metrics worked out by hand; each member's own predictions and
their NumPy mean for the ensembles; the files of a generated aclImdb fixture,
and the logs and checkpoints written on disk, for training that resumes after
an interruption. Tolerances: 1e-6 absolute for ensemble predictions in
float32, 1e-9 relative for the hand-computed loss; the rest is exact.
"""

import math
import os
import re

import keras
import numpy as np
import pytest

from kerasrnn.teaching import text_classification as tc
from tests.teaching.text_classification.helpers import small_classifier
from tests.utils import tensorflow_only, to_numpy

# --- metrics ------------------------------------------------------------------


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


# --- training a classifier (TensorFlow) ---------------------------------------


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


# --- ensembles ----------------------------------------------------------------


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
