"""Resumable training of one classifier or an ensemble of them, prediction,
the metrics and the learning curves."""

import csv
import os
import shutil

import keras
import numpy as np

from kerasrnn._utils.validation import check_positive_int

__all__ = [
    "MEMBER_RECORD",
    "MONITOR",
    "average_ensemble",
    "binary_metrics",
    "ensemble_in_progress",
    "evaluate_classifier",
    "member_dir",
    "plot_learning_curves",
    "predict_dataset",
    "predict_ensemble",
    "start_afresh",
    "train_classifier",
    "train_ensemble",
    "training_record",
]

MONITOR = "val_accuracy"


def _read_log(path):
    """Rows of a `CSVLogger` file, the last row of each epoch, by epoch."""
    if not os.path.exists(path):
        return []
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = {
                k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()
            }
    return [rows[e] for e in sorted(rows)]


def train_classifier(
    model,
    train_ds,
    validation_ds,
    output_dir,
    epochs=3,
    patience=2,
    extra_callbacks=(),
    verbose="auto",
):
    """Fits `model`, resuming an interrupted run, and restores its best epoch.

    Writes under `output_dir`: `training_log.csv` (every epoch),
    `checkpoints/best.weights.h5` (the epoch with the best validation
    accuracy) and, while training, `backup/imdb/` (deleted by Keras when
    training ends). When that backup exists, the run resumes from it and the
    best validation accuracy of the logged epochs carries over; otherwise the
    log and checkpoint of an earlier run are removed first.

    Args:
        model: A compiled classifier.
        train_ds, validation_ds: `(ids, label)` pipelines from
            `encode_dataset`.
        output_dir: Folder of the run.
        epochs: Most epochs to train. Default: 3.
        patience: Epochs without a better validation accuracy before
            `EarlyStopping` ends training. Default: 2.
        extra_callbacks: More callbacks, called before the log is written
            (so it records what they add to the epoch's logs).
            Default: `()`.
        verbose: As for `fit`. Default: `"auto"`.

    Returns:
        A dict with `history` (one dict per epoch, resumed epochs included),
        `best_epoch` (1-based), `best_val_accuracy`, `epochs_run` (by this
        process) and `resumed` (bool).
    """
    from kerasrnn.teaching.experiment import training_callbacks

    log_path = os.path.join(output_dir, "training_log.csv")
    best_path = os.path.join(output_dir, "checkpoints", "best.weights.h5")
    backup_dir = os.path.join(output_dir, "backup", "imdb")
    resumed = os.path.isdir(backup_dir) and bool(os.listdir(backup_dir))
    if not resumed:
        for stale in (log_path, best_path):
            if os.path.exists(stale):
                os.remove(stale)
    os.makedirs(os.path.dirname(best_path), exist_ok=True)
    logged = _read_log(log_path)
    best_so_far = max((row[MONITOR] for row in logged), default=None)

    # At the end of an epoch the log and the best checkpoint are written
    # before the backup is: an interruption between the two repeats the epoch
    # (its log row is then replaced) rather than losing its row.
    callbacks = [
        *extra_callbacks,  # first, so that the log sees what they add
        keras.callbacks.ModelCheckpoint(
            best_path,
            monitor=MONITOR,
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=patience),
        keras.callbacks.CSVLogger(log_path, append=True),
        *training_callbacks(output_dir, name="imdb"),
    ]
    history = model.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
    )
    if os.path.exists(best_path):
        model.load_weights(best_path)
    rows = _read_log(log_path)
    best = max(rows, key=lambda row: row[MONITOR]) if rows else None
    return {
        "history": rows,
        "best_epoch": None if best is None else best["epoch"] + 1,
        "best_val_accuracy": None if best is None else best[MONITOR],
        "epochs_run": len(history.epoch),
        "resumed": resumed,
    }


MEMBER_RECORD = "member.json"


def member_dir(output_dir, index, num_members):
    """Folder of member `index`: `output_dir` itself for a single model,
    else `output_dir/members/<index>`."""
    if num_members == 1:
        return os.fspath(output_dir)
    return os.path.join(output_dir, "members", str(index))


def _check_members(num_members, seed):
    check_positive_int("num_members", num_members)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")


def ensemble_in_progress(output_dir, num_members):
    """Whether `output_dir` holds an interrupted run of `num_members` members.

    A single model is interrupted while its `backup/imdb` folder is not
    empty (`train_classifier`). An ensemble is also interrupted when some
    member has finished (its `member.json` exists) but the run has no
    `results.json` yet: a run deletes that file when it starts afresh and
    writes it last.
    """
    _check_members(num_members, 0)
    dirs = [member_dir(output_dir, i, num_members) for i in range(num_members)]
    for folder in dirs:
        backup = os.path.join(folder, "backup", "imdb")
        if os.path.isdir(backup) and os.listdir(backup):
            return True
    if num_members == 1 or os.path.exists(os.path.join(output_dir, "results.json")):
        return False
    return any(os.path.exists(os.path.join(d, MEMBER_RECORD)) for d in dirs)


def _finished_member(folder, seed):
    """The record of a member that finished training in `folder`, else `None`.

    A member counts as finished only when its record, written after its
    best weights, can be read and names the same seed.
    """
    import json

    record_path = os.path.join(folder, MEMBER_RECORD)
    weights = os.path.join(folder, "checkpoints", "best.weights.h5")
    if not (os.path.exists(record_path) and os.path.exists(weights)):
        return None
    try:
        with open(record_path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("seed") != seed:
        return None
    return record


def train_ensemble(
    build_member,
    make_train_dataset,
    validation_ds,
    output_dir,
    num_members=1,
    seed=0,
    epochs=3,
    patience=2,
    extra_callbacks=(),
    verbose="auto",
):
    """Trains `num_members` classifiers with seeds `seed, seed + 1, ...`.

    Member `i` is trained by `train_classifier` in `member_dir(output_dir,
    i, num_members)`; once it has finished, its record `member.json` is
    written there, and a later call (an interrupted run run again) loads its
    best weights instead of training it again. Before member `i > 0` is
    built, every random generator is reseeded with `seed + i`, so that it is
    the same model whether or not the run was interrupted; member 0 uses the
    state the caller seeded, as a single model does. With `num_members=1`
    this is `train_classifier` and writes no record.

    Args:
        build_member: Callable `(seed, name) -> compiled model`; called
            after `make_train_dataset(seed)` for the same member.
        make_train_dataset: Callable `seed -> (ids, label)` training
            pipeline, shuffled from that seed.
        validation_ds: `(ids, label)` validation pipeline shared by every
            member, or a callable `seed -> pipeline` that gives each member
            its own (such as a different fold of the training reviews).
        output_dir: Folder of the run.
        num_members: Positive integer, members trained. Default: 1.
        seed: Integer seed of member 0. Default: 0.
        epochs, patience, extra_callbacks, verbose: As for
            `train_classifier`; `extra_callbacks` serve every member.

    Returns:
        A list with, per member, a dict with `model` (its best weights
        loaded), `seed`, `name` and `train_classifier`'s `history`,
        `best_epoch`, `best_val_accuracy`, `epochs_run` (0 when it had
        finished before) and `resumed`.
    """
    _check_members(num_members, seed)
    members = []
    for i in range(num_members):
        member_seed = seed + i
        folder = member_dir(output_dir, i, num_members)
        name = None if num_members == 1 else f"member_{i}"
        record = None if num_members == 1 else _finished_member(folder, member_seed)
        if i > 0:
            keras.utils.set_random_seed(member_seed)
        if record is not None:
            model = build_member(member_seed, name)
            model.load_weights(os.path.join(folder, "checkpoints", "best.weights.h5"))
            training = {**record, "epochs_run": 0, "resumed": True}
        else:
            train_ds = make_train_dataset(member_seed)
            model = build_member(member_seed, name)
            training = train_classifier(
                model,
                train_ds,
                validation_ds(member_seed)
                if callable(validation_ds)
                else validation_ds,
                folder,
                epochs=epochs,
                patience=patience,
                extra_callbacks=extra_callbacks,
                verbose=verbose,
            )
            training = {"seed": member_seed, "name": model.name, **training}
            if num_members > 1:
                from kerasrnn.teaching.experiment import write_json

                write_json(os.path.join(folder, MEMBER_RECORD), training)
        members.append({**training, "model": model})
    return members


def start_afresh(output_dir, num_members, outputs=()):
    """Deletes what an earlier run left in `output_dir` that a new run of
    `num_members` members must not be taken for its own.

    That is the paths in `outputs` (files or folders the caller writes at
    the end, such as its results), the members' folders, and, for an
    ensemble, a single model's training files in `output_dir` itself (its
    log, best weights and backup). Call it only when
    `ensemble_in_progress` is false: it removes what a resumed run needs.
    """
    _check_members(num_members, 0)
    paths = [*outputs, "members"]
    if num_members > 1:
        paths += [
            "training_log.csv",
            os.path.join("checkpoints", "best.weights.h5"),
            "backup",
        ]
    for name in paths:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)


def training_record(members, labels=None, test_each=None, validation_accuracy=None):
    """What `train_ensemble` did, for a results file.

    One member: its best epoch and validation accuracy, per-epoch history,
    whether it resumed and how many epochs this process ran. Several: each
    member's seed, best epoch and validation accuracy, history, resumption
    and epochs, the ensemble's `validation_accuracy`, and each member's test
    accuracy from its test probabilities `test_each` against `labels`.
    """
    if len(members) == 1:
        (member,) = members
        return {
            "validation": {
                "best_epoch": member["best_epoch"],
                "best_accuracy": member["best_val_accuracy"],
            },
            "history": member["history"],
            "resumed": member["resumed"],
            "epochs_run_by_this_process": member["epochs_run"],
        }
    return {
        "test_members": [
            {"seed": m["seed"], "accuracy": binary_metrics(p, labels)["accuracy"]}
            for m, p in zip(members, test_each)
        ],
        "validation": {
            "accuracy": validation_accuracy,
            "members": [
                {
                    "seed": m["seed"],
                    "best_epoch": m["best_epoch"],
                    "best_accuracy": m["best_val_accuracy"],
                }
                for m in members
            ],
        },
        "members": [
            {key: m[key] for key in ("seed", "history", "resumed", "epochs_run")}
            for m in members
        ],
        "resumed": any(m["resumed"] for m in members),
        "epochs_run_by_this_process": sum(m["epochs_run"] for m in members),
    }


def _average(outputs):
    if len(outputs) == 1:
        return outputs[0]
    return keras.layers.Average(name="mean_probability")(outputs)


def average_ensemble(members, name="imdb_ensemble"):
    """One model from token ids to the mean of the members' `P(positive)`.

    `p(x) = (1 / N) sum_i p_i(x)` for members `p_1 .. p_N` (classifiers with
    distinct names). A single member is returned as it is.

    Args:
        members: Non-empty list of classifiers from `build_classifier`.
        name: Name of the ensemble. Default: `"imdb_ensemble"`.

    Returns:
        A `keras.Model` from `token_ids (batch, T)` to `(batch, 1)`.
    """
    if not members:
        raise ValueError(f"members must not be empty. Received: members={members!r}")
    if len(members) == 1:
        return members[0]
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    return keras.Model(token_ids, _average([m(token_ids) for m in members]), name=name)


def predict_ensemble(members, dataset):
    """`(ensemble probabilities, [member probabilities], labels)` of a
    fixed-order `(ids, label)` pipeline, in one pass through one model whose
    outputs are `average_ensemble`'s mean and each member's probability."""
    if len(members) == 1:
        probabilities, labels = predict_dataset(members[0], dataset)
        return probabilities, [probabilities], labels
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    outputs = [m(token_ids) for m in members]
    scorer = keras.Model(token_ids, [_average(outputs), *outputs])
    predictions = scorer.predict(dataset.map(lambda ids, label: ids), verbose=0)
    labels = np.concatenate([label.numpy() for _, label in dataset])
    ensemble, *each = (np.asarray(p).reshape(-1) for p in predictions)
    return ensemble, each, labels.astype(np.int64)


def predict_dataset(model, dataset):
    """`(probabilities, labels)` of a fixed-order `(ids, label)` pipeline."""
    probabilities = model.predict(dataset.map(lambda ids, label: ids), verbose=0)
    labels = np.concatenate([label.numpy() for _, label in dataset])
    return np.asarray(probabilities).reshape(-1), labels.astype(np.int64)


def binary_metrics(probabilities, labels, threshold=0.5):
    """Accuracy, log loss, precision, recall, F1 and the confusion matrix.

    The confusion matrix is `[[TN, FP], [FN, TP]]`: rows are the true class
    (0 = negative, 1 = positive), columns the predicted one.
    """
    probabilities = np.asarray(probabilities, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    predicted = (probabilities >= threshold).astype(np.int64)
    confusion = np.zeros((2, 2), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    (tn, fp), (fn, tp) = confusion
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    return {
        "accuracy": float((tp + tn) / max(len(labels), 1)),
        "loss": float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * precision * recall / max(precision + recall, 1e-12)),
        "confusion_matrix": confusion.tolist(),
        "confusion_matrix_layout": "[[true neg, false pos], [false neg, true pos]]",
        "num_examples": int(len(labels)),
    }


def evaluate_classifier(model, dataset):
    """`binary_metrics` of `model` on an `(ids, label)` pipeline, one pass."""
    return binary_metrics(*predict_dataset(model, dataset))


def plot_learning_curves(history, path, title=None):
    """Training and validation loss and accuracy per epoch, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] + 1 for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [row[metric] for row in history], "o-", label="train")
        ax.plot(
            epochs, [row[f"val_{metric}"] for row in history], "s-", label="validation"
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
