"""A small Greff-style study of LSTM variants under a fixed compute budget.

Greff et al. (2015, "LSTM: A Search Space Odyssey") trained eight LSTM
variants with random hyperparameters on three data sets (5,400 runs) and
compared each variant with the vanilla LSTM. This module reruns that
comparison in miniature on synthetic and text tasks:

1. `sample_hyperparameters` draws learning rates (log-uniform) and layer
   sizes; every architecture is trained with the same draws, so the
   comparison is paired.
2. `run_study` trains each (task, draw, architecture) for the same number of
   updates and records the best validation score of the run (early
   stopping). Finished trials are stored as JSON and skipped when the study
   is run again; an interrupted trial resumes from its last epoch through
   `keras.callbacks.BackupAndRestore`.
3. `summarize` gives per task and architecture the best and median score
   over the draws, the ratio of medians to the vanilla LSTM, how many paired
   draws were worse or better than vanilla and a two-sided sign-test p-value;
   `verdict` turns that into "worse", "similar" or "better", and
   `comparison_markdown` sets it beside Greff et al.'s findings
   (`GREFF_FINDINGS`).

Scores are validation losses, lower is better: the mean squared error on the
adding problem, bits per character on the language model. A run stopped by
`TerminateOnNaN` scores NaN and counts as worse than any finite score.
"""

import csv
import dataclasses
import math
import os

import keras
import numpy as np

from kerasrnn.cells.lstm import VARIANTS
from kerasrnn.layers.clockwork import ClockworkRNN
from kerasrnn.layers.depth_gated_lstm import DepthGatedLSTM
from kerasrnn.layers.gru import GRU
from kerasrnn.layers.lstm import LSTM
from kerasrnn.teaching.char_lm import bits_per_character, char_windows
from kerasrnn.teaching.experiment import training_callbacks, write_json

__all__ = [
    "ARCHITECTURES",
    "EXTRA_ARCHITECTURES",
    "GREFF_FINDINGS",
    "TASK_NAMES",
    "VERDICTS",
    "TaskData",
    "adding_task",
    "box_plot",
    "build_model",
    "char_lm_task",
    "comparison_markdown",
    "recurrent_layer",
    "run_study",
    "run_trial",
    "sample_hyperparameters",
    "summarize",
    "verdict",
]

# Greff et al.'s vanilla LSTM, their eight variants, and the GRU.
ARCHITECTURES = (*VARIANTS, "gru")
# Other structures that `recurrent_layer` can build for the study.
EXTRA_ARCHITECTURES = ("clockwork", "depth_gated")
TASK_NAMES = ("adding", "char_lm")
VERDICTS = ("better", "similar", "worse")

# What Greff et al. (2015, section 5.1 and fig. 3) found for each variant
# against the vanilla LSTM on TIMIT (speech), IAM Online (handwriting) and
# JSB Chorales (music), and the verdicts of ours that agree with it.
GREFF_FINDINGS = {
    "vanilla": ("the reference: peephole LSTM with forget gate", {"similar"}),
    "nig": (
        "worse on speech and handwriting, no significant change on music",
        {"worse", "similar"},
    ),
    "nfg": ("significantly worse on all three data sets", {"worse"}),
    "nog": (
        "worse on speech and handwriting, no significant change on music",
        {"worse", "similar"},
    ),
    "niaf": (
        "worse on speech and handwriting, no significant change on music",
        {"worse", "similar"},
    ),
    "noaf": ("significantly worse on all three data sets", {"worse"}),
    "np": ("no significant change", {"similar"}),
    "cifg": ("no significant change", {"similar"}),
    "fgr": (
        "no significant change on speech and handwriting, worse on music",
        {"similar", "worse"},
    ),
    "gru": (
        "not in Greff et al.; Chung et al. 2014 and Jozefowicz et al. 2015 "
        "found it comparable to the LSTM",
        {"similar"},
    ),
}


def recurrent_layer(architecture, units, return_sequences=False):
    """The recurrent layer of `architecture`: an LSTM variant name (see
    `kerasrnn.LSTMCell`), `"gru"`, `"clockwork"` (periods 1, 2, 4, 8; units
    rounded up to a multiple of 4) or `"depth_gated"` (two layers)."""
    if architecture == "gru":
        return GRU(units, return_sequences=return_sequences)
    if architecture == "clockwork":
        units = 4 * math.ceil(units / 4)
        return ClockworkRNN(units, return_sequences=return_sequences)
    if architecture == "depth_gated":
        return DepthGatedLSTM(units, depth=2, return_sequences=return_sequences)
    try:
        return LSTM(units, variant=architecture, return_sequences=return_sequences)
    except ValueError as error:
        raise ValueError(
            f"architecture must be an LSTM variant, 'gru', 'clockwork' or "
            f"'depth_gated'. Received: architecture={architecture!r}"
        ) from error


@dataclasses.dataclass(frozen=True)
class TaskData:
    """One task of the study: arrays, loss, and how a score is read.

    Attributes:
        name: `"adding"` or `"char_lm"`.
        x_train, y_train, x_val, y_val: The data.
        baseline: The score of the best model without memory.
        score_name: What the score is (`"MSE"`, `"bits/char"`).
        vocab_size: Alphabet size for `"char_lm"`, else `None`.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    baseline: float
    score_name: str
    vocab_size: int = None

    def score(self, val_loss):
        """The task's score for a validation loss (nats for `char_lm`)."""
        if self.name == "char_lm":
            return bits_per_character(val_loss)
        return float(val_loss)


def adding_task(num_train, num_val, seq_len, seed=0):
    """The adding problem (`kerasrnn.teaching.tasks.adding_problem`) as a `TaskData`,
    scored by validation MSE against the memoryless baseline 1/6."""
    from kerasrnn.teaching.tasks import adding_problem, baseline_loss

    x_train, y_train = adding_problem(num_train, seq_len, seed=seed)
    x_val, y_val = adding_problem(num_val, seq_len, seed=seed + 1)
    return TaskData(
        "adding",
        x_train,
        y_train,
        x_val,
        y_val,
        baseline_loss("adding_problem"),
        "MSE",
    )


def char_lm_task(text, seq_len, validation_fraction=0.1, max_val_windows=None):
    """Next-character prediction on `text` as a `TaskData`, scored in
    validation bits per character against the unigram baseline."""
    data = char_windows(text, seq_len, validation_fraction=validation_fraction)
    x_val, y_val = data.x_val, data.y_val
    if max_val_windows is not None:
        x_val, y_val = x_val[:max_val_windows], y_val[:max_val_windows]
    return TaskData(
        "char_lm",
        data.x_train,
        data.y_train,
        x_val,
        y_val,
        data.unigram_bits,
        "bits/char",
        vocab_size=data.vocab_size,
    )


def build_model(
    architecture,
    task,
    units,
    learning_rate,
    clipnorm=None,
    embedding=16,
    run_eagerly=False,
):
    """A compiled model for `task`: the adding problem reads `(T, 2)` and
    regresses one number; the language model embeds characters, runs the
    recurrent layer over them and predicts the next character at every step.
    Adam with `learning_rate` and optional gradient clipping by `clipnorm`;
    `run_eagerly` skips graph compilation (faster for a handful of steps)."""
    seq_len = task.x_train.shape[1]
    if task.name == "adding":
        inputs = keras.Input((seq_len, task.x_train.shape[2]))
        hidden = recurrent_layer(architecture, units)(inputs)
        outputs = keras.layers.Dense(1)(hidden)
        loss = "mse"
    else:
        inputs = keras.Input((seq_len,), dtype="int32")
        embedded = keras.layers.Embedding(task.vocab_size, embedding)(inputs)
        hidden = recurrent_layer(architecture, units, return_sequences=True)(embedded)
        outputs = keras.layers.Dense(task.vocab_size)(hidden)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = keras.Model(inputs, outputs, name=f"{task.name}_{architecture}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
        loss=loss,
        run_eagerly=run_eagerly,
    )
    return model


def sample_hyperparameters(num_draws, seed, learning_rate_range, units_range):
    """`num_draws` random settings, the same for every architecture:
    learning rate log-uniform in `learning_rate_range`, units log-uniform
    (rounded) in `units_range`, each with its own weight-initialisation
    seed."""
    if isinstance(num_draws, bool) or not isinstance(num_draws, int) or num_draws < 1:
        raise ValueError(
            f"num_draws must be a positive integer. Received: num_draws={num_draws!r}"
        )
    lr_lo, lr_hi = learning_rate_range
    if not 0 < lr_lo <= lr_hi:
        raise ValueError(
            "learning_rate_range must be (low, high) with 0 < low <= high. "
            f"Received: learning_rate_range={learning_rate_range!r}"
        )
    u_lo, u_hi = units_range
    if not 1 <= u_lo <= u_hi:
        raise ValueError(
            "units_range must be (low, high) with 1 <= low <= high. "
            f"Received: units_range={units_range!r}"
        )
    rng = np.random.default_rng(seed)
    draws = []
    for k in range(num_draws):
        lr = 10 ** rng.uniform(math.log10(lr_lo), math.log10(lr_hi))
        units = int(round(math.exp(rng.uniform(math.log(u_lo), math.log(u_hi)))))
        draws.append(
            {
                "draw": k,
                "learning_rate": float(lr),
                "units": units,
                "seed": seed * 1000 + k,
            }
        )
    return draws


def _read_history(path):
    """Per-epoch `val_loss` from a CSVLogger file; a repeated epoch (after a
    resume) keeps its last row."""
    if not os.path.exists(path):
        return []
    by_epoch = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("val_loss") not in (None, ""):
                by_epoch[int(row["epoch"])] = float(row["val_loss"])
    return [by_epoch[e] for e in sorted(by_epoch)]


def run_trial(
    architecture,
    task,
    draw,
    train_steps,
    evaluations,
    batch_size,
    trial_dir,
    clipnorm=None,
    run_eagerly=False,
):
    """Trains one model for `train_steps` updates, validating `evaluations`
    times, and returns its record (best validation score, the history, the
    parameter count, the wall time)."""
    import time

    import tensorflow as tf

    os.makedirs(trial_dir, exist_ok=True)
    keras.utils.set_random_seed(draw["seed"])
    model = build_model(
        architecture,
        task,
        draw["units"],
        draw["learning_rate"],
        clipnorm=clipnorm,
        run_eagerly=run_eagerly,
    )
    log_path = os.path.join(trial_dir, "history.csv")
    callbacks = [
        keras.callbacks.CSVLogger(log_path, append=True),
        *training_callbacks(trial_dir, name="backup"),
    ]
    # An endless, reshuffled stream: every trial makes exactly
    # train_steps // evaluations updates per evaluation, however small the
    # training set.
    train = (
        tf.data.Dataset.from_tensor_slices((task.x_train, task.y_train))
        .shuffle(len(task.x_train), seed=draw["seed"], reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .prefetch(2)
    )
    start = time.perf_counter()
    model.fit(
        train,
        shuffle=False,  # the stream above is shuffled already
        epochs=evaluations,
        steps_per_epoch=max(1, train_steps // evaluations),
        validation_data=(task.x_val, task.y_val),
        validation_batch_size=max(batch_size, 256),
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    val_losses = _read_history(log_path)
    finite = [v for v in val_losses if math.isfinite(v)]
    diverged = len(finite) < evaluations
    score = task.score(min(finite)) if finite and not diverged else float("nan")
    return {
        "task": task.name,
        "architecture": architecture,
        **draw,
        "score": score,
        "val_losses": val_losses,
        "diverged": diverged,
        "parameters": int(model.count_params()),
        "seconds": seconds,
    }


def run_study(
    tasks,
    architectures,
    draws,
    train_steps,
    evaluations,
    batch_size,
    output_dir,
    clipnorm=None,
    run_eagerly=False,
    log=print,
):
    """Runs every (task, draw, architecture) trial not already stored in
    `output_dir/trials`, and returns all records.

    Args:
        tasks: A list of `TaskData`.
        architectures: Names accepted by `recurrent_layer`.
        draws: The list from `sample_hyperparameters`.
        train_steps: Updates per trial (the fixed compute budget).
        evaluations: Validation passes per trial (epochs).
        batch_size: Sequences per update.
        output_dir: Folder for trial records and backups.
        clipnorm: Gradient clipping norm for Adam, or `None`. Default: `None`.
        run_eagerly: Train without compiling a graph. Default: `False`.
        log: Function called with one line per finished trial.
            Default: `print`.

    Returns:
        A list of trial records (dicts), in the order run.
    """
    for architecture in architectures:
        recurrent_layer(architecture, 4)  # fail early on a bad name
    records = []
    total = len(tasks) * len(draws) * len(architectures)
    for task in tasks:
        for draw in draws:
            for architecture in architectures:
                name = f"{task.name}-{architecture}-draw{draw['draw']}"
                trial_dir = os.path.join(output_dir, "trials", name)
                record_path = os.path.join(trial_dir, "record.json")
                settings = {
                    "train_steps": train_steps,
                    "evaluations": evaluations,
                    "batch_size": batch_size,
                    "clipnorm": clipnorm,
                    **draw,
                }
                record = _load_record(record_path, settings)
                if record is None:
                    record = run_trial(
                        architecture,
                        task,
                        draw,
                        train_steps,
                        evaluations,
                        batch_size,
                        trial_dir,
                        clipnorm=clipnorm,
                        run_eagerly=run_eagerly,
                    )
                    record["settings"] = settings
                    write_json(record_path, record)
                records.append(record)
                log(
                    f"[{len(records)}/{total}] {name}: lr={draw['learning_rate']:.2e} "
                    f"units={draw['units']} {task.score_name}={record['score']:.4f} "
                    f"({record['seconds']:.1f} s)"
                )
    return records


def _load_record(path, settings):
    import json

    if not os.path.exists(path):
        return None
    with open(path) as f:
        record = json.load(f)
    if record.get("settings") != settings:
        return None
    record["score"] = float("nan") if record["score"] is None else record["score"]
    return record


def _sign_test_p(worse, better):
    """Two-sided sign-test p-value for `worse` vs `better` paired outcomes."""
    n = worse + better
    if n == 0:
        return 1.0
    k = min(worse, better)
    tail = sum(math.comb(n, j) for j in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def _as_worst(scores):
    scores = np.asarray(scores, dtype=float)
    return np.where(np.isnan(scores), np.inf, scores)


def summarize(records, reference="vanilla"):
    """Per task and architecture: best and median score over the draws,
    median relative to `reference`, paired draws worse/better than it, and
    the sign-test p-value.

    Returns:
        `{task: {architecture: {...}}}`, plain Python numbers (NaN/inf for
        runs that diverged).
    """
    summary = {}
    tasks = sorted(
        {r["task"] for r in records},
        key=lambda t: TASK_NAMES.index(t) if t in TASK_NAMES else 99,
    )
    for task in tasks:
        rows = [r for r in records if r["task"] == task]
        by_arch = {}
        for r in rows:
            by_arch.setdefault(r["architecture"], {})[r["draw"]] = r
        ref = by_arch.get(reference)
        table = {}
        for arch, trials in by_arch.items():
            draws = sorted(trials)
            scores = _as_worst([trials[d]["score"] for d in draws])
            entry = {
                "draws": len(draws),
                "diverged": int(sum(trials[d]["diverged"] for d in draws)),
                "best": float(np.min(scores)),
                "median": float(np.median(scores)),
                "scores": [float(s) for s in scores],
                "parameters": int(np.median([trials[d]["parameters"] for d in draws])),
                "seconds": float(sum(trials[d]["seconds"] for d in draws)),
            }
            if ref is not None:
                shared = [d for d in draws if d in ref]
                ours = _as_worst([trials[d]["score"] for d in shared])
                theirs = _as_worst([ref[d]["score"] for d in shared])
                worse = int(np.sum(ours > theirs))
                better = int(np.sum(ours < theirs))
                ref_median = float(
                    np.median(_as_worst([ref[d]["score"] for d in sorted(ref)]))
                )
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = entry["median"] / ref_median
                entry.update(
                    {
                        "median_ratio": float(ratio),
                        "worse_draws": worse,
                        "better_draws": better,
                        "sign_test_p": _sign_test_p(worse, better),
                    }
                )
            table[arch] = entry
        order = sorted(table, key=lambda a: (table[a]["median"], table[a]["best"]))
        for rank, arch in enumerate(order, start=1):
            table[arch]["rank"] = rank
        summary[task] = {arch: table[arch] for arch in order}
    return summary


def verdict(entry, tolerance=0.05):
    """ "worse", "better" or "similar" than the reference: worse when the
    median is more than `tolerance` (relative) above the reference's and most
    paired draws are worse; better likewise; similar otherwise."""
    ratio = entry.get("median_ratio")
    if ratio is None or math.isnan(ratio):
        return "similar"
    draws = entry["worse_draws"] + entry["better_draws"]
    if ratio > 1 + tolerance and entry["worse_draws"] * 2 > draws:
        return "worse"
    if ratio < 1 - tolerance and entry["better_draws"] * 2 > draws:
        return "better"
    return "similar"


def _fmt(value, digits=4):
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "diverged"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.{digits}g}"


def comparison_markdown(summary, baselines=None, tolerance=0.05, reference="vanilla"):
    """Markdown: one ranking table per task, then our verdicts beside Greff
    et al.'s findings, saying where they agree."""
    baselines = baselines or {}
    lines = []
    for task, table in summary.items():
        lines.append(f"### {task}")
        lines.append("")
        if task in baselines:
            lines.append(
                f"Memoryless baseline: {baselines[task]:.4g}. Lower is better."
            )
            lines.append("")
        lines.append(
            "| rank | architecture | params | best | median | median / "
            f"{reference} | worse / better draws | sign-test p | verdict |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for arch, e in table.items():
            lines.append(
                f"| {e['rank']} | {arch} | {e['parameters']} | {_fmt(e['best'])} | "
                f"{_fmt(e['median'])} | {_fmt(e.get('median_ratio'), 3)} | "
                f"{e.get('worse_draws', '-')} / {e.get('better_draws', '-')} | "
                f"{_fmt(e.get('sign_test_p'), 2)} | "
                f"{'reference' if arch == reference else verdict(e, tolerance)} |"
            )
        lines.append("")
    tasks = list(summary)
    lines.append("### Beside Greff et al. (2015)")
    lines.append("")
    lines.append(
        "| architecture | Greff et al. found | "
        + " | ".join(f"ours: {t}" for t in tasks)
        + " | agreement |"
    )
    lines.append("|---|---|" + "---|" * len(tasks) + "---|")
    archs = [a for a in ARCHITECTURES if any(a in summary[t] for t in tasks)]
    archs += [a for t in tasks for a in summary[t] if a not in archs]
    for arch in archs:
        finding, expected = GREFF_FINDINGS.get(arch, ("not studied", set()))
        ours = []
        for t in tasks:
            e = summary[t].get(arch)
            if e is None:
                ours.append(None)
            elif arch == reference:
                ours.append("reference")
            else:
                ours.append(verdict(e, tolerance))
        cells = [o or "-" for o in ours]
        judged = [o for o in ours if o not in (None, "reference")]
        if arch == reference or not expected:
            agreement = "-"
        elif all(o in expected for o in judged):
            agreement = "agrees"
        elif any(o in expected for o in judged):
            agreement = "partly"
        else:
            agreement = "disagrees"
        lines.append(
            f"| {arch} | {finding} | " + " | ".join(cells) + f" | {agreement} |"
        )
    lines.append("")
    return "\n".join(lines)


def box_plot(records, path, baselines=None, reference="vanilla"):
    """Saves a box plot of the scores per architecture, one panel per task,
    with the memoryless baseline (dashed) and the reference median (dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baselines = baselines or {}
    tasks = [t for t in TASK_NAMES if any(r["task"] == t for r in records)]
    tasks += sorted({r["task"] for r in records} - set(tasks))
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(6.5 * len(tasks), 4.5), squeeze=False
    )
    for ax, task in zip(axes[0], tasks):
        rows = [r for r in records if r["task"] == task]
        archs = [
            a
            for a in (*ARCHITECTURES, *EXTRA_ARCHITECTURES)
            if any(r["architecture"] == a for r in rows)
        ]
        data, diverged = [], []
        for a in archs:
            scores = [r["score"] for r in rows if r["architecture"] == a]
            finite = [s for s in scores if s is not None and math.isfinite(s)]
            data.append(finite or [float("nan")])
            diverged.append(len(scores) - len(finite))
        ax.boxplot(data, showmeans=False)
        ax.set_xticks(range(1, len(archs) + 1), archs, rotation=45)
        for k, n in enumerate(diverged, start=1):
            if n:
                ax.annotate(
                    f"{n} NaN",
                    (k, 1.0),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    va="top",
                    fontsize=8,
                    color="red",
                )
        if task in baselines:
            ax.axhline(
                baselines[task],
                color="gray",
                linestyle="--",
                label="no-memory baseline",
            )
        if reference in archs:
            ref = [s for s in data[archs.index(reference)] if math.isfinite(s)]
            if ref:
                ax.axhline(
                    float(np.median(ref)),
                    color="tab:blue",
                    linestyle=":",
                    label=f"{reference} median",
                )
        ax.set_title(task)
        ax.set_ylabel("validation score (lower is better)")
        if task == "adding":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
