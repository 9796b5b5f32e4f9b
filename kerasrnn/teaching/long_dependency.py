"""Training recurrent cells on long-dependency tasks while watching their
gradient: the machinery of `tutorials/vanishing_gradients.py`.

The tasks (`kerasrnn.teaching.tasks`) are built so that the answer depends on inputs
far back in the sequence and a model without memory can only reach a known
baseline loss. `run_cell` trains one cell on one task with
`kerasrnn.callbacks.GradientNormHistory` attached and returns what the
tutorial reports: the test loss against the baseline, whether the task was
solved, the gradient norm at the first and last time step, and the wall
time. `results_table` prints the comparison; `plot_loss_curves`,
`plot_gradient_profiles` and `plot_tanh` draw the figures.
"""

import contextlib
import dataclasses
import math
import os

import keras
import numpy as np

import kerasrnn
from kerasrnn.callbacks import GradientNormHistory
from kerasrnn.teaching import experiment, tasks

__all__ = [
    "ADDING_SOLVED_MSE",
    "CELL_LABELS",
    "CELLS",
    "COPY_LENGTH",
    "COPY_SYMBOLS",
    "SOLVED_ACCURACY",
    "TASK_NAMES",
    "Settings",
    "Task",
    "build_model",
    "check_cells",
    "make_data",
    "make_task",
    "plot_gradient_profiles",
    "plot_loss_curves",
    "plot_tanh",
    "results_table",
    "run_cell",
    "write_outputs",
]

CELLS = {"rnn": kerasrnn.SimpleRNN, "lstm": kerasrnn.LSTM, "gru": kerasrnn.GRU}
CELL_LABELS = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}
TASK_NAMES = {
    "adding": "adding_problem",
    "copy": "copy_memory",
    "temporal_order": "temporal_order",
}
# The adding problem counts as solved below this test MSE (the baseline is
# 1/6); the classification tasks when this fraction of what must be
# remembered is recalled correctly.
ADDING_SOLVED_MSE = 0.01
SOLVED_ACCURACY = 0.99
COPY_SYMBOLS = 8  # symbols of the copy task
COPY_LENGTH = 10  # symbols to copy


@dataclasses.dataclass(frozen=True)
class Task:
    """What a task needs: its data, the head and loss of the model, its
    memoryless baseline and what counts as solved."""

    name: str
    seq_len: int

    @property
    def full_name(self):
        return TASK_NAMES[self.name]

    @property
    def timesteps(self):
        if self.name == "copy":  # seq_len is the delay
            return self.seq_len + 2 * COPY_LENGTH
        return self.seq_len

    @property
    def features(self):
        return {"adding": 2, "copy": COPY_SYMBOLS + 2, "temporal_order": 8}[self.name]

    @property
    def baseline(self):
        if self.name == "copy":
            return tasks.baseline_loss(
                "copy_memory",
                delay=self.seq_len,
                num_symbols=COPY_SYMBOLS,
                copy_length=COPY_LENGTH,
            )
        return tasks.baseline_loss(self.full_name)

    @property
    def loss_name(self):
        return "MSE" if self.name == "adding" else "cross-entropy"

    def data(self, num_samples, seed):
        if self.name == "adding":
            return tasks.adding_problem(num_samples, self.seq_len, seed=seed)
        if self.name == "copy":
            return tasks.copy_memory(
                num_samples,
                self.seq_len,
                num_symbols=COPY_SYMBOLS,
                copy_length=COPY_LENGTH,
                seed=seed,
            )
        return tasks.temporal_order(num_samples, self.seq_len, seed=seed)

    def head(self, hidden):
        if self.name == "adding":
            return keras.layers.Dense(1, name="sum")(hidden)
        if self.name == "copy":
            return keras.layers.Dense(COPY_SYMBOLS + 2, name="symbol_logits")(hidden)
        return keras.layers.Dense(4, name="class_logits")(hidden)

    def loss(self):
        if self.name == "adding":
            return "mse"
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def recall_accuracy(self, model, x, y, batch_size=256):
        """Fraction of what must be remembered that the model gets right:
        the copied symbols, or the class; `None` for the adding problem."""
        if self.name == "adding":
            return None
        predicted = model.predict(x, batch_size=batch_size, verbose=0).argmax(-1)
        if self.name == "copy":
            predicted, y = predicted[:, -COPY_LENGTH:], y[:, -COPY_LENGTH:]
        return float(np.mean(predicted == y))

    def solved(self, loss, accuracy):
        if self.name == "adding":
            return bool(loss < ADDING_SOLVED_MSE)
        return bool(accuracy is not None and accuracy >= SOLVED_ACCURACY)

    @property
    def solved_rule(self):
        if self.name == "adding":
            return f"test MSE < {ADDING_SOLVED_MSE}"
        return f"recall accuracy >= {SOLVED_ACCURACY:.0%}"


def make_task(name, seq_len):
    """Checks the task name and length and returns a `Task`."""
    if name not in TASK_NAMES:
        raise ValueError(
            f"task must be one of {tuple(TASK_NAMES)}. Received: task={name!r}"
        )
    minimum = {"adding": 2, "copy": 1, "temporal_order": 10}[name]
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < minimum:
        raise ValueError(
            f"seq_len must be an integer >= {minimum} for task {name!r}. "
            f"Received: seq_len={seq_len!r}"
        )
    return Task(name, seq_len)


def check_cells(cells):
    cells = list(cells)
    unknown = [c for c in cells if c not in CELLS]
    if not cells or unknown:
        raise ValueError(
            f"cells must be a non-empty list drawn from {tuple(CELLS)}. "
            f"Received: cells={cells!r}"
        )
    return cells


def build_model(cell, task, units, learning_rate, clipnorm=None):
    """Input -> one kerasrnn recurrent layer named "recurrent" -> the task's
    head, compiled with Adam and the task's loss."""
    inputs = keras.Input((task.timesteps, task.features), name="sequence")
    hidden = CELLS[cell](units, return_sequences=task.name == "copy", name="recurrent")(
        inputs
    )
    model = keras.Model(inputs, task.head(hidden), name=cell)
    optimizer = keras.optimizers.Adam(learning_rate, clipnorm=clipnorm)
    model.compile(optimizer=optimizer, loss=task.loss())
    return model


@dataclasses.dataclass
class Settings:
    """The settings of one run of the comparison (every one has a flag)."""

    task: str = "adding"
    seq_len: int = 100
    cells: tuple = ("rnn", "lstm", "gru")
    units: int = 32
    epochs: int = 12
    train_samples: int = 6400
    validation_samples: int = 512
    test_samples: int = 1000
    batch_size: int = 64
    learning_rate: float = 1e-2
    clipnorm: float = None
    probe_samples: int = 64
    seed: int = 0
    output_dir: str = "runs/vanishing_gradients"

    @property
    def steps(self):
        return self.epochs * math.ceil(self.train_samples / self.batch_size)


def make_data(task, settings):
    """Training, validation, test and probe sets, each from its own seed."""
    seed = settings.seed
    train = task.data(settings.train_samples, seed)
    validation = task.data(settings.validation_samples, seed + 1)
    test = task.data(settings.test_samples, seed + 2)
    probe = tuple(v[: settings.probe_samples] for v in validation)
    return {"train": train, "validation": validation, "test": test, "probe": probe}


def run_cell(cell, task, data, settings, verbose=2, strategy=None):
    """Trains `cell` on `task` with `GradientNormHistory` attached.

    With a `tf.distribute` strategy (`kerasrnn.teaching.experiment.make_strategy`)
    the model is built and compiled under `strategy.scope()`; the gradient
    norms are computed between epochs on the whole probe batch with the
    (replicated, identical) weights.

    Returns a dict: `test_loss`, `baseline`, `recall_accuracy` (classification
    tasks), `solved`, `grad_norm_first` and `grad_norm_last` (||dL/dh_t|| at
    the first and last step, after training) and their values before
    training, `seconds` of training wall time, the per-epoch `history`, and
    the callback (`gradient_norms`) for plotting.
    """
    keras.utils.set_random_seed(settings.seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(
            cell, task, settings.units, settings.learning_rate, settings.clipnorm
        )
    norms = GradientNormHistory(*data["probe"], layer="recurrent")
    callbacks = experiment.training_callbacks(
        settings.output_dir, name=f"{task.name}_{cell}", extra=[norms]
    )
    with experiment.Stopwatch() as clock:
        history = model.fit(
            *data["train"],
            validation_data=data["validation"],
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            callbacks=callbacks,
            verbose=verbose,
        )
    test_loss = float(model.evaluate(*data["test"], batch_size=256, verbose=0))
    accuracy = task.recall_accuracy(model, *data["test"])
    profile = norms.history["h"]
    return {
        "cell": cell,
        "test_loss": test_loss,
        "baseline": task.baseline,
        "recall_accuracy": accuracy,
        "solved": task.solved(test_loss, accuracy),
        "grad_norm_first": float(profile[-1][0]),
        "grad_norm_last": float(profile[-1][-1]),
        "grad_norm_first_before": float(profile[0][0]),
        "grad_norm_last_before": float(profile[0][-1]),
        "seconds": clock.seconds,
        "epochs_run": len(history.history.get("loss", [])),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "gradient_norms": norms,
    }


def results_table(task, results):
    """A Markdown table: one row per cell."""
    accuracy_column = task.name != "adding"
    header = [
        "cell",
        f"test {task.loss_name}",
        "baseline",
        *(["recall acc."] if accuracy_column else []),
        "solved",
        "||dL/dh_1||",
        f"||dL/dh_{task.timesteps}||",
        "first / last",
        "time (s)",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for r in results:
        first, last = r["grad_norm_first"], r["grad_norm_last"]
        row = [
            CELL_LABELS[r["cell"]],
            f"{r['test_loss']:.4f}",
            f"{r['baseline']:.4f}",
            *([f"{r['recall_accuracy']:.1%}"] if accuracy_column else []),
            "yes" if r["solved"] else "no",
            f"{first:.2e}",
            f"{last:.2e}",
            f"{first / last:.1e}" if last else "n/a",
            f"{r['seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_loss_curves(task, results, path):
    """Validation loss per epoch for every cell, with the baseline."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = figure.subplots()
    for r in results:
        losses = r["history"].get("val_loss", [])
        ax.plot(
            range(1, len(losses) + 1), losses, marker=".", label=CELL_LABELS[r["cell"]]
        )
    ax.axhline(task.baseline, color="gray", linestyle="--", label="memoryless baseline")
    if task.name == "adding":
        ax.axhline(ADDING_SOLVED_MSE, color="gray", linestyle=":", label="solved")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {task.loss_name}")
    ax.set_title(f"{task.full_name}, T = {task.timesteps}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    figure.savefig(path)
    return path


def plot_gradient_profiles(task, results, path):
    """||dL/dh_t|| against t for every cell, before and after training, on
    one log axis: the comparison the lecture draws."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = figure.subplots()
    for k, r in enumerate(results):
        profiles = r["gradient_norms"].history["h"]
        steps = np.arange(1, profiles.shape[1] + 1)
        label = CELL_LABELS[r["cell"]]
        for row, style, when in ((0, ":", "before"), (-1, "-", "after")):
            shown = profiles[row] > 0
            ax.semilogy(
                steps[shown],
                profiles[row][shown],
                linestyle=style,
                color=f"C{k}",
                label=f"{label}, {when} training",
            )
    ax.set_xlabel("time step t")
    ax.set_ylabel("||dL/dh_t||")
    ax.set_title("How much gradient reaches each time step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    figure.savefig(path)
    return path


def plot_tanh(path):
    """tanh and its derivative 1 - tanh**2, which is at most 1."""
    from matplotlib.figure import Figure

    z = np.linspace(-4, 4, 401)
    figure = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = figure.subplots()
    ax.plot(z, np.tanh(z), label="tanh(z)")
    ax.plot(z, 1 - np.tanh(z) ** 2, label="tanh'(z) = 1 - tanh(z)^2")
    ax.axhline(1, color="gray", linewidth=0.5)
    ax.axhline(0, color="gray", linewidth=0.5)
    ax.set_xlabel("z")
    ax.set_title("The derivative of tanh is at most 1, and near 0 when saturated")
    ax.grid(True, alpha=0.3)
    ax.legend()
    figure.savefig(path)
    return path


def write_outputs(
    task, settings, results, device, output_dir, flags=None, total_seconds=None
):
    """Writes the plots, the per-cell gradient-norm heatmaps and histories,
    and `results.json` (with `flags`, the command line's other settings, and
    the run's `total_seconds`); returns the list of files written."""
    os.makedirs(output_dir, exist_ok=True)
    files = [
        plot_loss_curves(task, results, os.path.join(output_dir, "loss_curves.png")),
        plot_gradient_profiles(
            task, results, os.path.join(output_dir, "gradient_profiles.png")
        ),
        plot_tanh(os.path.join(output_dir, "tanh.png")),
    ]
    for r in results:
        norms = r["gradient_norms"]
        files.append(
            norms.save_plot(os.path.join(output_dir, f"gradient_norms_{r['cell']}.png"))
        )
        files.extend(
            norms.save(os.path.join(output_dir, f"gradient_norms_{r['cell']}"))
        )
    results_path = os.path.join(output_dir, "results.json")
    experiment.write_json(
        results_path,
        {
            "settings": {
                **dataclasses.asdict(settings),
                "timesteps": task.timesteps,
                "steps": settings.steps,
                "backend": keras.backend.backend(),
                **(flags or {}),
            },
            "task": task.full_name,
            "solved_rule": task.solved_rule,
            "results": [
                {k: v for k, v in r.items() if k != "gradient_norms"} for r in results
            ],
            "table": results_table(task, results),
            "total_seconds": total_seconds,
            "device": device,
            "machine": experiment.machine_description(),
        },
    )
    files.append(results_path)
    return files
