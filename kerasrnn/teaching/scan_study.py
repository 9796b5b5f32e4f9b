"""What "RNNs are very deep" costs, and what a parallel scan buys: the
machinery of `tutorials/parallel_scan.py`.

- The combine rule of a linear recurrence, in plain NumPy (`combine`,
  `scan_by_pairs`), with the rounds it takes recorded for a worked example,
  and the depth and work of the loop and of the scan (`depth_and_work`).
- Training-step timings, measured side by side in one process
  (`time_training_steps`): kerasrnn's LSTM and GRU, MinGRU and MinLSTM
  (each on the path its `fast_path="auto"` takes, and MinGRU forced to the
  scan and to the loop), and `feedforward`, MinGRU's input projection and
  gates with the recurrence left out and compiled by the backend (XLA on
  TensorFlow and JAX): the floor that a minimal cell's recurrence adds to.
  The kinds are timed in alternating rounds, so that a change in the
  machine's load hits all of them alike; only ratios between them mean
  anything on a shared machine.
- `growth_exponents`: how each kind's time grows with T (the slope of
  log time against log T).

Nothing here is needed by a model; the library never imports it.
"""

import statistics
import time

import keras
import numpy as np
from keras import ops

import kerasrnn

__all__ = [
    "TIMING_KINDS",
    "LABELS",
    "TASK_CELLS",
    "CELL_LAYERS",
    "combine",
    "loop",
    "scan_by_pairs",
    "depth_and_work",
    "FeedForwardPart",
    "make_layer",
    "TrainingStep",
    "time_training_steps",
    "growth_exponents",
    "time_versus_length",
    "timing_table",
    "plot_step_times",
    "plot_depth_and_work",
    "check_cells",
    "build_model",
    "train_cell",
    "task_table",
    "plot_gradient_profiles",
]

# The configuration of the speed target: a batch of 64 sequences of
# 32 features into 128 units.
BATCH, FEATURES, UNITS = 64, 32, 128
TIMING_KINDS = ("lstm", "gru", "min_gru", "min_lstm")
LABELS = {
    "lstm": "LSTM",
    "gru": "GRU",
    "rnn": "tanh RNN",
    "min_gru": "minGRU",
    "min_lstm": "minLSTM",
    "min_gru_scan": "minGRU, scan forced",
    "min_gru_sequential": "minGRU, loop forced",
    "feedforward": "minGRU without recurrence (compiled)",
}


# --- the combine rule ----------------------------------------------------------


def combine(earlier, later):
    """Two steps `h -> a * h + b` done one after the other, as one step:
    `(a_1, b_1) then (a_2, b_2) = (a_1 * a_2, a_2 * b_1 + b_2)`."""
    a_1, b_1 = earlier
    a_2, b_2 = later
    return a_1 * a_2, a_2 * b_1 + b_2


def loop(a, b, h0=0.0):
    """`h_t = a_t * h_tm1 + b_t`, one step after the other (NumPy)."""
    h, states = h0, []
    for a_t, b_t in zip(a, b):
        h = a_t * h + b_t
        states.append(h)
    return np.array(states)


def scan_by_pairs(a, b, rounds=None):
    """Every prefix of the steps `(a_t, b_t)`, by combining pairs: the
    algorithm of `kerasrnn.fast.linear_recurrence.parallel_scan`, in NumPy.

    1. combine neighbours (steps 0 and 1, 2 and 3, ...): half as many pairs;
    2. scan those pairs the same way: the prefixes at the odd steps;
    3. combine each even step with the odd prefix just before it.

    Returns `(A, B)`, `B_t` being `h_t` from `h_{-1} = 0`. If `rounds` is a
    list, each round of combinations done at once is appended to it as
    `(description, number of combinations)`.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    steps = len(a)
    if steps == 1:
        return a, b
    pairs = combine((a[0 : steps - 1 : 2], b[0 : steps - 1 : 2]), (a[1::2], b[1::2]))
    if rounds is not None:
        rounds.append(
            (f"combine {len(pairs[0])} neighbour pairs of {steps} steps", len(pairs[0]))
        )
    odd_a, odd_b = scan_by_pairs(*pairs, rounds=rounds)
    count = len(a[2::2])
    even_a, even_b = combine((odd_a[:count], odd_b[:count]), (a[2::2], b[2::2]))
    if rounds is not None and count:
        rounds.append((f"fill in {count} even steps of {steps}", count))
    prefix_a, prefix_b = np.empty_like(a), np.empty_like(b)
    prefix_a[0::2], prefix_b[0::2] = np.r_[a[:1], even_a], np.r_[b[:1], even_b]
    prefix_a[1::2], prefix_b[1::2] = odd_a, odd_b
    return prefix_a, prefix_b


def depth_and_work(steps):
    """`(loop depth, loop work, scan depth, scan work)` for `steps` steps:
    depth counts the rounds that must follow one another, work the
    multiply-adds done in all (a loop step is one; a combination is one
    multiplication for `a` and one multiply-add for `b`, counted as two)."""
    depth, combinations, n = 0, 0, steps
    while n > 1:
        pairs, evens = n // 2, (n - 1) // 2
        depth += 2 if evens else 1
        combinations += pairs + evens
        n = pairs
    return steps, steps, depth, 2 * combinations


# --- timings -------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kerasrnn_teaching")
class FeedForwardPart(keras.layers.Layer):
    """MinGRU's work without its recurrence: `k = x @ W + b`, the gates
    `(a_t, b_t) = MinGRUCell.coefficients(k)` at every step, and their mean
    over time (so that every step's gates reach the loss), compiled by the
    backend's XLA (`tf.function(jit_compile=True)` on TensorFlow; JAX
    compiles the whole training step). What a minimal cell costs apart from
    `h_t = a_t * h_tm1 + b_t`.

    Args:
        units: Positive integer, the width of the gates. Default: required.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self._compiled = None

    def build(self, input_shape):
        self.kernel = self.add_weight((input_shape[-1], 2 * self.units), name="kernel")
        self.bias = self.add_weight((2 * self.units,), initializer="zeros", name="bias")

    @staticmethod
    def _gates(x, kernel, bias):
        a, b = kerasrnn.MinGRUCell.coefficients(ops.matmul(x, kernel) + bias)
        return ops.mean(a + b, axis=1)

    def call(self, x):
        if keras.backend.backend() != "tensorflow":
            return self._gates(x, self.kernel, self.bias)
        import tensorflow as tf

        if self._compiled is None:
            self._compiled = tf.function(self._gates, jit_compile=True)
        # the layer's input never needs a gradient here, as for MinGRU
        return self._compiled(tf.stop_gradient(x), self.kernel.value, self.bias.value)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def make_layer(kind, units):
    """The recurrent layer (or the feed-forward part) timed as `kind`."""
    if kind == "feedforward":
        return FeedForwardPart(units)
    builders = {
        "lstm": lambda: kerasrnn.LSTM(units),
        "gru": lambda: kerasrnn.GRU(units),
        "rnn": lambda: kerasrnn.SimpleRNN(units),
        "min_gru": lambda: kerasrnn.MinGRU(units),
        "min_lstm": lambda: kerasrnn.MinLSTM(units),
        "min_gru_scan": lambda: kerasrnn.MinGRU(units, fast_path="scan"),
        "min_gru_sequential": lambda: kerasrnn.MinGRU(units, fast_path="sequential"),
    }
    if kind not in builders:
        raise ValueError(
            f"kind must be one of {tuple(builders) + ('feedforward',)}. "
            f"Received: kind={kind!r}"
        )
    return builders[kind]()


class TrainingStep:
    """One SGD training step of `Input -> layer -> Dense(1)` with a mean
    squared error, compiled as the backend compiles a training step:
    `tf.function` on TensorFlow (where kerasrnn's layers compile their own
    whole-sequence kernels with XLA), `jax.jit` on JAX, eager on PyTorch.
    Calling the object runs one step and waits for its result.

    Args:
        kind: A key of `LABELS`. Default: required.
        timesteps, batch, features, units: The shapes. Default: required.
        seed: Seed of the data and weights. Default: 0.
    """

    def __init__(self, kind, timesteps, batch, features, units, seed=0):
        keras.utils.set_random_seed(seed)
        self.layer = make_layer(kind, units)
        inputs = keras.Input((timesteps, features), batch_size=batch)
        self.model = keras.Model(inputs, keras.layers.Dense(1)(self.layer(inputs)))
        self.optimizer = keras.optimizers.SGD(learning_rate=1e-3)
        self.optimizer.build(self.model.trainable_variables)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, timesteps, features)).astype("float32")
        y = rng.standard_normal((batch, 1)).astype("float32")
        self._step = getattr(self, f"_{keras.backend.backend()}_step")(x, y)

    def __call__(self):
        self._step()

    @property
    def path(self):
        """The loop the layer took (`last_path`), if it reports one."""
        return getattr(self.layer, "last_path", None) or "compiled"

    def _tensorflow_step(self, x, y):
        import tensorflow as tf

        model, optimizer = self.model, self.optimizer
        x, y = tf.constant(x), tf.constant(y)

        @tf.function
        def train(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        return lambda: train(x, y).numpy()

    def _jax_step(self, x, y):
        import jax
        import jax.numpy as jnp

        model, optimizer = self.model, self.optimizer

        def loss_fn(trainable, non_trainable, x, y):
            out, non_trainable = model.stateless_call(
                trainable, non_trainable, x, training=True
            )
            return jnp.mean(jnp.square(out - y)), non_trainable

        @jax.jit
        def train(trainable, non_trainable, opt_vars, x, y):
            (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                trainable, non_trainable, x, y
            )
            trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
            return loss, trainable, non_trainable, opt_vars

        state = {
            "t": [v.value for v in model.trainable_variables],
            "n": [v.value for v in model.non_trainable_variables],
            "o": [v.value for v in optimizer.variables],
        }
        x, y = jnp.asarray(x), jnp.asarray(y)

        def run():
            loss, state["t"], state["n"], state["o"] = train(
                state["t"], state["n"], state["o"], x, y
            )
            loss.block_until_ready()

        return run

    def _torch_step(self, x, y):
        import torch

        model, optimizer = self.model, self.optimizer
        device = "cuda" if torch.cuda.is_available() else "cpu"
        x, y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)

        def run():
            model.zero_grad()
            loss = torch.mean(torch.square(model(x, training=True) - y))
            loss.backward()
            variables = model.trainable_variables
            with torch.no_grad():
                optimizer.apply([v.value.grad for v in variables], variables)
            if device == "cuda":
                torch.cuda.synchronize()

        return run


def time_training_steps(
    kinds=TIMING_KINDS,
    timesteps=1024,
    batch=BATCH,
    features=FEATURES,
    units=UNITS,
    rounds=5,
    warmup=2,
    seed=0,
):
    """Median seconds of one training step of each kind, timed side by side.

    Every kind's step is built, run `warmup` times (compilation), then timed
    once per round, the kinds taking turns within each round.

    Returns:
        A dict `{kind: {"seconds": median, "path": the loop taken,
        "times": every timed step}}`.
    """
    steps = {
        kind: TrainingStep(kind, timesteps, batch, features, units, seed)
        for kind in kinds
    }
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {kind: [] for kind in kinds}
    for _ in range(rounds):
        for kind, step in steps.items():
            start = time.perf_counter()
            step()
            times[kind].append(time.perf_counter() - start)
    return {
        kind: {
            "seconds": statistics.median(times[kind]),
            "path": steps[kind].path,
            "times": times[kind],
        }
        for kind in kinds
    }


def growth_exponents(timings):
    """How each kind's time grows with T: the least-squares slope of log
    time against log T (1 is linear growth), from
    `{timesteps: {kind: result or None}}` (`time_versus_length`); kinds
    timed at fewer than two lengths are left out."""
    slopes = {}
    kinds = {kind for result in timings.values() for kind in result}
    for kind in sorted(kinds):
        points = [
            (t, r[kind]["seconds"]) for t, r in sorted(timings.items()) if r.get(kind)
        ]
        if len(points) > 1:
            lengths, seconds = zip(*points)
            slopes[kind] = float(np.polyfit(np.log(lengths), np.log(seconds), 1)[0])
    return slopes


def time_versus_length(
    kinds=TIMING_KINDS,
    lengths=(128, 512, 1024),
    batch=BATCH,
    features=FEATURES,
    units=UNITS,
    rounds=3,
    warmup=2,
    budget_seconds=30.0,
    seed=0,
    progress=None,
):
    """`time_training_steps` at every length in `lengths` (shortest first).

    A kind whose step took more than `budget_seconds` at one length is not
    timed at the longer ones (PyTorch's step-by-step LSTM takes about a
    minute and a half per step at T = 1024): its entries there are `None`.
    `progress(timesteps, result)` is called after each length.

    Returns:
        `{timesteps: {kind: result or None}}`.
    """
    timings, active = {}, list(kinds)
    for timesteps in sorted(lengths):
        measured = time_training_steps(
            active, timesteps, batch, features, units, rounds, warmup, seed
        )
        timings[timesteps] = {kind: measured.get(kind) for kind in kinds}
        active = [k for k in active if measured[k]["seconds"] <= budget_seconds]
        if progress is not None:
            progress(timesteps, timings[timesteps])
    return timings


def timing_table(timings, reference="gru"):
    """A Markdown table: milliseconds per training step at each length, and
    the ratio to `reference` timed in the same rounds."""
    lengths = sorted(timings)
    kinds = list(timings[lengths[0]])
    header = ["layer", "path"] + [f"T = {t}" for t in lengths]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for kind in kinds:
        path = next(
            (timings[t][kind]["path"] for t in lengths if timings[t][kind]), "n/a"
        )
        cells = [LABELS.get(kind, kind), path]
        for t in lengths:
            entry, ref = timings[t][kind], timings[t].get(reference)
            if entry is None:
                cells.append("not timed (over budget)")
                continue
            text = f"{entry['seconds'] * 1e3:.0f} ms"
            if ref is not None and kind != reference:
                text += f" ({entry['seconds'] / ref['seconds']:.2f}x)"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_step_times(timings, path):
    """Training-step time against T for every kind, log-log."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = figure.subplots()
    lengths = sorted(timings)
    for kind in timings[lengths[0]]:
        points = [(t, timings[t][kind]["seconds"]) for t in lengths if timings[t][kind]]
        if points:
            ts, secs = zip(*points)
            style = "--" if kind == "feedforward" else "-"
            ax.loglog(
                ts,
                [s * 1e3 for s in secs],
                style,
                marker="o",
                label=LABELS.get(kind, kind),
            )
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("training step (ms)")
    ax.set_title(
        f"One training step, batch {BATCH}, {UNITS} units ({keras.backend.backend()})"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    figure.savefig(path)
    return path


def plot_depth_and_work(lengths, path):
    """Depth (rounds one after another) and work (multiply-adds) of the loop
    and of the scan against T."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.0, 3.4), layout="constrained")
    depth_ax, work_ax = figure.subplots(1, 2)
    costs = np.array([depth_and_work(t) for t in lengths], float)
    depth_ax.loglog(lengths, costs[:, 0], marker="o", label="loop: T")
    depth_ax.loglog(lengths, costs[:, 2], marker="o", label="scan: about 2 log2 T")
    work_ax.loglog(lengths, costs[:, 1], marker="o", label="loop: T")
    work_ax.loglog(lengths, costs[:, 3], marker="o", label="scan: about 4 T")
    for ax, title in (
        (depth_ax, "depth (rounds in sequence)"),
        (work_ax, "work (multiply-adds)"),
    ):
        ax.set_xlabel("sequence length T")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    figure.savefig(path)
    return path


# --- training on the long-dependency tasks -------------------------------------

TASK_CELLS = ("rnn", "gru", "lstm", "min_gru", "min_lstm")
CELL_LAYERS = {
    "rnn": kerasrnn.SimpleRNN,
    "gru": kerasrnn.GRU,
    "lstm": kerasrnn.LSTM,
    "min_gru": kerasrnn.MinGRU,
    "min_lstm": kerasrnn.MinLSTM,
}


def check_cells(cells):
    """`cells` as a list, after checking each names a layer of the study
    (`CELL_LAYERS`); a `ValueError` naming the argument otherwise."""
    cells = list(cells)
    unknown = [c for c in cells if c not in CELL_LAYERS]
    if not cells or unknown:
        raise ValueError(
            f"cells must be a non-empty list drawn from {tuple(CELL_LAYERS)}. "
            f"Received: cells={cells!r}"
        )
    return cells


def build_model(cell, task, units, learning_rate, clipnorm=None):
    """`Input -> one recurrent layer named "recurrent" -> the task's head`,
    compiled with Adam and the task's loss (`task` from
    `kerasrnn.teaching.long_dependency.make_task`)."""
    inputs = keras.Input((task.timesteps, task.features), name="sequence")
    layer = CELL_LAYERS[cell](
        units, return_sequences=task.name == "copy", name="recurrent"
    )
    model = keras.Model(inputs, task.head(layer(inputs)), name=cell)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
        loss=task.loss(),
    )
    return model


def train_cell(cell, task, data, settings, verbose=0, record_gradients=True):
    """Trains `cell` on `task` (data from `long_dependency.make_data`) with
    the budget of `settings` (a `long_dependency.Settings`), resumable from
    its last epoch, with `kerasrnn.callbacks.GradientNormHistory` attached
    if `record_gradients`.

    Returns a dict: `test_loss`, `baseline`, `recall_accuracy`, `solved`,
    `seconds`, `history`, and, when recorded, the callback (`gradient_norms`)
    and ||dL/dh_t|| at the first and last step after training.
    """
    from kerasrnn.callbacks import GradientNormHistory
    from kerasrnn.teaching import experiment

    keras.utils.set_random_seed(settings.seed)
    model = build_model(
        cell, task, settings.units, settings.learning_rate, settings.clipnorm
    )
    extra = []
    norms = None
    if record_gradients:
        norms = GradientNormHistory(*data["probe"], layer="recurrent")
        extra.append(norms)
    callbacks = experiment.training_callbacks(
        settings.output_dir, name=f"{task.name}_{cell}", extra=extra
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
    result = {
        "cell": cell,
        "test_loss": test_loss,
        "baseline": task.baseline,
        "recall_accuracy": accuracy,
        "solved": task.solved(test_loss, accuracy),
        "seconds": clock.seconds,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    if norms is not None:
        profile = norms.history["h"]
        result.update(
            gradient_norms=norms,
            grad_norm_first=float(profile[-1][0]),
            grad_norm_last=float(profile[-1][-1]),
            grad_norm_first_before=float(profile[0][0]),
            grad_norm_last_before=float(profile[0][-1]),
        )
    return result


def task_table(task, results):
    """A Markdown table of one task's results, one row per cell."""
    accuracy = task.name != "adding"
    header = [
        "cell",
        f"test {task.loss_name}",
        "baseline",
        *(["recall acc."] if accuracy else []),
        "solved",
        "||dL/dh_1|| / ||dL/dh_T||",
        "time (s)",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for r in results:
        ratio = "n/a"
        if r.get("grad_norm_last"):
            ratio = f"{r['grad_norm_first'] / r['grad_norm_last']:.1e}"
        row = [
            LABELS.get(r["cell"], r["cell"]),
            f"{r['test_loss']:.4f}",
            f"{r['baseline']:.4f}",
            *([f"{r['recall_accuracy']:.1%}"] if accuracy else []),
            "yes" if r["solved"] else "no",
            ratio,
            f"{r['seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_gradient_profiles(task, results, path):
    """||dL/dh_t|| against t after training (solid) and before (dotted)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = figure.subplots()
    for k, r in enumerate(x for x in results if "gradient_norms" in x):
        profiles = r["gradient_norms"].history["h"]
        steps = np.arange(1, profiles.shape[1] + 1)
        for row, style, when in ((0, ":", "before"), (-1, "-", "after")):
            shown = profiles[row] > 0
            ax.semilogy(
                steps[shown],
                profiles[row][shown],
                linestyle=style,
                color=f"C{k}",
                label=f"{LABELS.get(r['cell'], r['cell'])}, {when} training",
            )
    ax.set_xlabel("time step t")
    ax.set_ylabel("||dL/dh_t||")
    ax.set_title(f"Gradient reaching each step, {task.full_name}, T = {task.timesteps}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small")
    figure.savefig(path)
    return path
