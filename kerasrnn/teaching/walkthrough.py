"""Walking one sequence through a trained LSTM or GRU, step by step.

The pieces of `tutorials/lstm_step_by_step.py`, reusable on any kerasrnn
LSTM or GRU: a small sequence-to-sequence model, the choice of the "memory
units" (those whose state tracks the target), the contrast of each gate
between marked and unmarked steps, a per-step table, and the plots. The gate
values themselves come from `kerasrnn.inspection.gates.gate_activations`, which runs
the layer's own cell one step at a time.
"""

import keras
import numpy as np

from kerasrnn.layers.gru import GRU
from kerasrnn.layers.lstm import LSTM

__all__ = [
    "CELLS",
    "build_model",
    "choose_example",
    "format_step_table",
    "gate_contrast",
    "gate_switching",
    "memory_units",
    "plot_gates",
    "plot_memory_units",
    "state_key",
    "step_table",
]

CELLS = {"lstm": LSTM, "gru": GRU}
_LSTM_KEYS = (
    "input_gate",
    "forget_gate",
    "candidate",
    "output_gate",
    "cell_state",
    "hidden_state",
)
_GRU_KEYS = ("update_gate", "reset_gate", "candidate", "hidden_state")
# Short column names for the step table.
_SHORT_NAMES = {
    "input_gate": "i",
    "forget_gate": "f",
    "candidate": "g",
    "output_gate": "o",
    "cell_state": "c",
    "hidden_state": "h",
    "update_gate": "z",
    "reset_gate": "r",
}


def build_model(
    cell,
    units,
    seq_len,
    input_dim=2,
    output_dim=1,
    learning_rate=1e-2,
    clipnorm=None,
):
    """A one-layer kerasrnn LSTM or GRU that predicts at every step.

    `inputs -> kerasrnn.LSTM/GRU(units, return_sequences=True) ->
    Dense(output_dim)`, compiled with Adam and the mean squared error. The
    recurrent layer is named `"recurrent"`.

    Args:
        cell: `"lstm"` or `"gru"`.
        units: Positive integer, the hidden size.
        seq_len: Sequence length (`None` for any).
        input_dim: Features per step. Default: 2.
        output_dim: Outputs per step. Default: 1.
        learning_rate: Adam's step size. Default: 1e-2.
        clipnorm: Optional gradient-norm clipping. Default: `None`.

    Returns:
        A compiled `keras.Model`.
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {tuple(CELLS)}. Received: cell={cell!r}")
    inputs = keras.Input((seq_len, input_dim), name="sequence")
    hidden = CELLS[cell](units, return_sequences=True, name="recurrent")(inputs)
    outputs = keras.layers.Dense(output_dim, name="readout")(hidden)
    model = keras.Model(inputs, outputs, name=f"{cell}_walkthrough")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm), loss="mse"
    )
    return model


def state_key(activations):
    """The state that holds the memory: `cell_state` for an LSTM, else
    `hidden_state`."""
    return "cell_state" if "cell_state" in activations else "hidden_state"


def memory_units(activations, target):
    """Units ranked by how closely their state tracks the target.

    Args:
        activations: A dict from `gate_activations`, arrays
            `(batch, timesteps, units)`.
        target: The per-step target, `(batch, timesteps)` or
            `(batch, timesteps, 1)`.

    Returns:
        `(order, correlations)`: unit indices, best first, and the absolute
        Pearson correlation of each unit's state with the target over all
        steps of all sequences.
    """
    states = np.asarray(activations[state_key(activations)], dtype=np.float64)
    target = np.asarray(target, dtype=np.float64).reshape(states.shape[:2])
    flat_target = target.ravel()
    correlations = np.zeros(states.shape[-1])
    for unit in range(states.shape[-1]):
        flat_state = states[..., unit].ravel()
        if flat_state.std() > 0 and flat_target.std() > 0:
            correlations[unit] = abs(np.corrcoef(flat_state, flat_target)[0, 1])
    return np.argsort(-correlations), correlations


def gate_contrast(activations, marked):
    """Mean of every gate, per unit, on marked and on unmarked steps.

    Args:
        activations: A dict from `gate_activations`.
        marked: Boolean `(batch, timesteps)`, the steps that carry a marker.

    Returns:
        `{key: {"marked": (units,), "unmarked": (units,)}}` for every key
        ending in `_gate`.
    """
    marked = np.asarray(marked, dtype=bool)
    contrast = {}
    for key, values in activations.items():
        if key.endswith("_gate"):
            values = np.asarray(values, dtype=np.float64)
            contrast[key] = {
                "marked": values[marked].mean(axis=0),
                "unmarked": values[~marked].mean(axis=0),
            }
    return contrast


def gate_switching(activations, marked, key, unit, threshold=0.5):
    """How sharply one unit's gate switches between marked and unmarked steps.

    Returns:
        A dict: `below_at_marked`, the fraction of marked steps where the gate
        is below `threshold`, and `above_at_unmarked`, the fraction of
        unmarked steps where it is above it.
    """
    values = np.asarray(activations[key])[..., unit]
    marked = np.asarray(marked, dtype=bool)
    return {
        "below_at_marked": float(np.mean(values[marked] < threshold)),
        "above_at_unmarked": float(np.mean(values[~marked] > threshold)),
    }


def choose_example(markers, min_markers=3, max_markers=None):
    """Index of the first sequence with between `min_markers` and
    `max_markers` marked steps (the one with the most markers otherwise)."""
    counts = np.asarray(markers).reshape(len(markers), -1).sum(axis=1)
    upper = np.inf if max_markers is None else max_markers
    fits = np.flatnonzero((counts >= min_markers) & (counts <= upper))
    return int(fits[0]) if len(fits) else int(np.argmax(counts))


def step_table(activations, x, target, prediction, unit, sample=0):
    """One row per time step for one unit of one sequence.

    Returns:
        A list of dicts with `t`, `value`, `marker`, `target`, `prediction`
        and every activation of `unit` (keys as in `activations`).
    """
    rows = []
    for t in range(x.shape[1]):
        row = {
            "t": t,
            "value": float(x[sample, t, 0]),
            "marker": int(x[sample, t, 1]),
            "target": float(np.ravel(target[sample, t])[0]),
            "prediction": float(np.ravel(prediction[sample, t])[0]),
        }
        for key, values in activations.items():
            row[key] = float(values[sample, t, unit])
        rows.append(row)
    return rows


def _ordered_keys(mapping):
    """The activation keys of `mapping` in equation order (LSTM or GRU)."""
    order = _GRU_KEYS if "update_gate" in mapping else _LSTM_KEYS
    return [key for key in order if key in mapping]


def format_step_table(rows):
    """The rows of `step_table` as aligned text, with markers flagged."""
    keys = _ordered_keys(rows[0])
    names = dict(_SHORT_NAMES)
    if "update_gate" in rows[0]:
        names["candidate"] = "hh"  # the GRU's candidate state
    header = f"{'t':>3} {'x':>6} {'m':>1} {'target':>7} {'pred':>7} " + " ".join(
        f"{names[k]:>6}" for k in keys
    )
    lines = [header]
    for row in rows:
        flag = "<- marker" if row["marker"] else ""
        lines.append(
            f"{row['t']:>3} {row['value']:>6.2f} {row['marker']:>1} "
            f"{row['target']:>7.3f} {row['prediction']:>7.3f} "
            + " ".join(f"{row[k]:>6.2f}" for k in keys)
            + f"  {flag}"
        )
    return "\n".join(lines)


def _marker_lines(ax, marker_steps):
    for t in marker_steps:
        ax.axvline(t, color="black", lw=0.6, ls=":", alpha=0.7)


def plot_gates(activations, x, target, prediction, path, title, sample=0):
    """Heatmaps (units x time) of every activation for one sequence, under
    the input, target and prediction, with the marked steps as dotted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = _ordered_keys(activations)
    steps = np.arange(x.shape[1])
    extent = (-0.5, x.shape[1] - 0.5)
    marker_steps = np.flatnonzero(x[sample, :, 1])
    fig, axes = plt.subplots(
        len(keys) + 1,
        2,
        figsize=(8, 1.2 * (len(keys) + 1) + 0.6),
        gridspec_kw={
            "hspace": 0.3,
            "wspace": 0.02,
            "width_ratios": [40, 1],
            "top": 0.95,
        },
    )
    top = axes[0, 0]
    axes[0, 1].axis("off")
    top.plot(steps, x[sample, :, 0], color="0.6", lw=0.8, label="value x_t")
    top.step(
        steps, np.ravel(target[sample]), where="mid", color="black", label="target"
    )
    top.plot(
        steps, np.ravel(prediction[sample]), color="tab:red", lw=1, label="prediction"
    )
    top.set_ylim(-1.15, 1.15)
    top.legend(fontsize=7, ncol=3, loc="lower left")
    names = dict(_SHORT_NAMES)
    if "update_gate" in activations:
        names["candidate"] = "hh"
    for (ax, cax), key in zip(axes[1:], keys):
        values = np.asarray(activations[key][sample], dtype=np.float64).T
        if key.endswith("_gate"):
            limits, cmap = (0.0, 1.0), "viridis"
        else:
            limit = max(1.0, float(np.nanmax(np.abs(values))))
            limits, cmap = (-limit, limit), "coolwarm"
        image = ax.imshow(
            values,
            aspect="auto",
            cmap=cmap,
            vmin=limits[0],
            vmax=limits[1],
            extent=(*extent, values.shape[0] - 0.5, -0.5),
            interpolation="nearest",
        )
        ax.set_ylabel(f"{names[key]}: {key.replace('_', ' ')}", fontsize=7)
        ax.set_yticks([])
        fig.colorbar(image, cax=cax)
        cax.tick_params(labelsize=7)
    for ax in axes[:, 0]:
        ax.set_xlim(*extent)
        _marker_lines(ax, marker_steps)
        if ax is not axes[-1, 0]:
            ax.set_xticklabels([])
    axes[-1, 0].set_xlabel("time step (dotted: marked steps); rows: units")
    fig.suptitle(title, fontsize=10, y=0.995)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def plot_memory_units(traces, x, target, path, sample=0):
    """Line plots of chosen gates of one unit per model along one sequence.

    Args:
        traces: A list of `(title, activations, unit, keys)` tuples, one
            panel each.
        x: The inputs `(batch, timesteps, 2)` (value, marker).
        target: The per-step target.
        path: Where to write the PNG.
        sample: Which sequence. Default: 0.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(x.shape[1])
    marker_steps = np.flatnonzero(x[sample, :, 1])
    fig, axes = plt.subplots(
        len(traces) + 1, 1, figsize=(8, 1.9 * (len(traces) + 1)), sharex=True
    )
    axes[0].plot(steps, x[sample, :, 0], color="0.6", lw=0.8, label="value x_t")
    axes[0].step(
        steps,
        np.ravel(target[sample]),
        where="post",
        color="black",
        label="target: last marked value",
    )
    axes[0].set_ylim(-1.15, 1.15)
    axes[0].legend(fontsize=7, loc="lower left", ncol=2)
    for ax, (title, activations, unit, keys) in zip(axes[1:], traces):
        for key in keys:
            ax.plot(
                steps,
                activations[key][sample, :, unit],
                lw=1.2,
                label=key.replace("_", " "),
            )
        ax.set_title(f"{title}, unit {unit}", fontsize=9)
        ax.legend(fontsize=7, loc="lower left", ncol=len(keys))
    for ax in axes:
        _marker_lines(ax, marker_steps)
        ax.grid(True, alpha=0.25)
    axes[-1].set_xlabel("time step (dotted: marked steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
