"""What `GradientNormHistory` and `GateActivationHistory` share: recording
per-time-step profiles on a schedule, and saving and plotting them."""

import csv
import os

import keras
import numpy as np

from kerasrnn._utils.validation import check_int_at_least


class ProfileHistory(keras.callbacks.Callback):
    """Records a dict of `(timesteps,)` profiles before training and after
    every `every_n_epochs` epochs.

    Subclasses implement `measure()` (the profiles now) and may override
    `open()`, `close()` and `on_record(epoch, profiles, logs)`.

    `history["epoch"]` lists the number of completed epochs at each record
    (0 = before training) and `history[key]` is an array
    `(records, timesteps)`.
    """

    # Name of the quantity in files and plots, set by subclasses.
    value_name = "value"

    def __init__(self, every_n_epochs=1):
        super().__init__()
        self.every_n_epochs = check_int_at_least("every_n_epochs", every_n_epochs, 1)
        self.history = {"epoch": []}
        self._epochs_done = 0

    def measure(self):
        raise NotImplementedError

    def open(self):
        """Opens resources at the start of training."""

    def close(self):
        """Releases them at the end."""

    def on_record(self, epoch, profiles, logs):
        """Called after each record, with the epoch logs (`None` before
        training)."""

    def on_train_begin(self, logs=None):
        logs = logs or {}
        self.open()
        start = getattr(self.model, "_initial_epoch", None) or self._epochs_done
        if not self.history["epoch"] or self.history["epoch"][-1] != start:
            self._record(start, None)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        self._epochs_done = epoch + 1
        if self._epochs_done % self.every_n_epochs == 0:
            self._record(self._epochs_done, logs)
        else:
            self.on_record(None, None, logs)

    def on_train_end(self, logs=None):
        logs = logs or {}
        self.close()

    def _record(self, epoch, logs):
        profiles = self.measure()
        self.history["epoch"].append(epoch)
        for key, values in profiles.items():
            row = np.asarray(values, dtype=np.float64)[None]
            old = self.history.get(key)
            self.history[key] = row if old is None else np.concatenate([old, row])
        self.on_record(epoch, profiles, logs)

    @property
    def keys(self):
        return [k for k in self.history if k != "epoch"]

    def save(self, path):
        """Writes the history to `path.npz` (arrays) and `path.csv` (one row
        per epoch, key and time step). Returns the two paths."""
        base, extension = os.path.splitext(os.fspath(path))
        if extension not in (".npz", ".csv"):
            base = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(base))
        os.makedirs(folder, exist_ok=True)
        npz_path, csv_path = f"{base}.npz", f"{base}.csv"
        arrays = {k: self.history[k] for k in self.keys}
        np.savez(npz_path, epoch=np.asarray(self.history["epoch"]), **arrays)
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "key", "time_step", self.value_name])
            for key in self.keys:
                for epoch, row in zip(self.history["epoch"], self.history[key]):
                    for t, value in enumerate(row):
                        writer.writerow([epoch, key, t, repr(float(value))])
        return npz_path, csv_path

    def save_plot(self, path, **kwargs):
        """Writes `plot(**kwargs)` to `path` as a PNG. Returns `path`."""
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self.plot(**kwargs).savefig(path, format="png")
        return path

    def _check_recorded(self):
        if not self.history["epoch"]:
            raise ValueError(
                f"{type(self).__name__} has recorded nothing yet: pass it to "
                "model.fit(callbacks=[...]) first."
            )


def new_figure(rows, columns, width=10.0, row_height=2.6):
    """A matplotlib Figure without pyplot (no global state, no display)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, row_height * rows + 0.6), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def heatmap(figure, ax, epochs, values, norm=None, cmap="viridis", label=""):
    """Epochs down, time steps across."""
    values = np.asarray(values, dtype=float)
    image = ax.imshow(
        values,
        aspect="auto",
        interpolation="nearest",
        origin="upper",
        norm=norm,
        cmap=cmap,
        extent=(-0.5, values.shape[1] - 0.5, len(epochs) - 0.5, -0.5),
    )
    step = max(1, len(epochs) // 8)
    ax.set_yticks(range(0, len(epochs), step))
    ax.set_yticklabels([str(e) for e in epochs][::step])
    ax.set_ylabel("epoch")
    ax.set_xlabel("time step t")
    figure.colorbar(image, ax=ax, label=label)
    return image
