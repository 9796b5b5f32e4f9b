"""A callback that records dL/dh_t at every time step while a model trains."""

import io
import os

import numpy as np

from kerasrnn.callbacks._history import ProfileHistory, heatmap, new_figure
from kerasrnn.inspection.gradients import (
    HiddenStateGradients,
    _check_backend,
    _check_probe_batch,
)

__all__ = [
    "GradientNormHistory",
]


class GradientNormHistory(ProfileHistory):
    """Records how large the gradient is at every time step (Bengio et al.
    1994), before training and after every `every_n_epochs` epochs.

    On a fixed probe batch `(x, y)` it measures, with
    `kerasrnn.inspection.gradients.hidden_state_gradient_norms`, the norm of the total
    derivative dL/dh_t of the model's loss with respect to the recurrent
    layer's hidden state at each step t (and dL/dc_t for an LSTM). In a
    vanilla RNN this norm decays geometrically from the last step back to
    the first: backpropagation multiplies by `U^T` and `tanh' <= 1` once per
    step, which is why such a network cannot learn dependencies that span
    many steps. An LSTM's norm stays much flatter.

    The measurement runs in inference mode on copies of the variables:
    training is unchanged (same weights with or without the callback, for
    the same seed), and the gradient function is compiled once and reused.

    At every record the callback adds to the epoch `logs`, for each key
    (`h`, `c`, or `h_forward`, ... for `Bidirectional`):
    `grad_norm_<key>_first` (step 0), `grad_norm_<key>_last` (the last step)
    and `grad_norm_<key>_ratio` (first / last; tiny when the gradient
    vanishes). On epochs that are not recorded these are NaN. `History` sees
    them; list this callback before `CSVLogger` or `TensorBoard` so that
    they do too.

    Args:
        x: The probe batch of model inputs, e.g. 64 validation sequences.
        y: Its targets.
        layer: The recurrent layer: name, layer instance, or `None` for the
            only or first kerasrnn recurrent layer. Default: `None`.
        every_n_epochs: Record after every this many epochs (>= 1).
            Default: 1.
        log_dir: If given, a folder where TensorBoard summaries are written
            to `log_dir/gradient_norms`: the scalars above, the per-step
            profile of each record (tag `gradient_norm_profile/<key>/epoch_N`,
            with the time step on TensorBoard's step axis), and the heatmap
            of `plot()` as an image. Default: `None`.

    Attributes:
        history: `{"epoch": [...], key: array (records, timesteps)}`, the
            number of completed epochs at each record (0 = before training)
            and the norms.

    Example:

    >>> x, y = kerasrnn.teaching.tasks.adding_problem(256, 50, seed=0)
    >>> model = keras.Sequential([keras.Input((50, 2)), kerasrnn.SimpleRNN(16),
    ...                           keras.layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> norms = GradientNormHistory(x[:32], y[:32])
    >>> _ = model.fit(x, y, epochs=2, callbacks=[norms], verbose=0)
    >>> norms.history["h"].shape  # before training and after epochs 1, 2
    (3, 50)

    Reference:
        Bengio, Simard & Frasconi, "Learning Long-Term Dependencies with
        Gradient Descent is Difficult", IEEE TNN 5(2), 1994.
    """

    value_name = "gradient_norm"

    def __init__(self, x, y, layer=None, every_n_epochs=1, log_dir=None):
        _check_backend()
        super().__init__(every_n_epochs)
        self.x = x
        self.y = y
        self.layer = layer
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise ValueError(
                f"log_dir must be a path or None. Received: log_dir={log_dir!r}"
            )
        self.log_dir = log_dir
        self._gradients = None
        self._writer = None

    def set_model(self, model):
        super().set_model(model)
        # Resolve the layer and check the probe batch now, so that bad
        # arguments fail before training; keep the compiled function.
        if self._gradients is None or self._gradients.model is not model:
            self._gradients = HiddenStateGradients(model, self.layer)
        _check_probe_batch(model, self.x, self.y)

    def measure(self):
        return self._gradients(self.x, self.y)

    def open(self):
        if self.log_dir is not None and self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(
                os.path.join(os.fspath(self.log_dir), "gradient_norms")
            )

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_record(self, epoch, profiles, logs):
        keys = self._gradients.output_keys
        scalars = {}
        for key in keys:
            first = last = np.nan
            if profiles is not None:
                first, last = float(profiles[key][0]), float(profiles[key][-1])
            scalars[f"grad_norm_{key}_first"] = first
            scalars[f"grad_norm_{key}_last"] = last
            scalars[f"grad_norm_{key}_ratio"] = first / last if last else np.nan
        if logs is not None:
            logs.update(scalars)
        if self._writer is not None and profiles is not None:
            self._write_summaries(epoch, profiles, scalars)

    def _write_summaries(self, epoch, profiles, scalars):
        import tensorflow as tf

        # tf.summary.write with TensorBoard's plugin metadata needs only
        # TensorFlow, not the tensorboard package.
        with self._writer.as_default():
            for name, value in scalars.items():
                _write_scalar(name, value, epoch)
            for key, values in profiles.items():
                tag = f"gradient_norm_profile/{key}/epoch_{epoch:04d}"
                for t, value in enumerate(values):
                    _write_scalar(tag, value, t)
            buffer = io.BytesIO()
            figure = self.plot()
            figure.savefig(buffer, format="png", dpi=72)
            width, height = (int(v * 72) for v in figure.get_size_inches())
            image = tf.constant([str(width), str(height), buffer.getvalue()])
            tf.summary.write(
                "gradient_norm_heatmap", image, step=epoch, metadata=_metadata("images")
            )
        self._writer.flush()

    def plot(self):
        """A matplotlib Figure: per key, a heatmap of the norm over epoch x
        time step on a log colour scale, and the latest record's profile on
        a log axis."""
        from matplotlib.colors import LogNorm

        self._check_recorded()
        keys = self.keys
        epochs = self.history["epoch"]
        figure, axes = new_figure(len(keys), 2)
        for row, key in enumerate(keys):
            values = self.history[key]
            positive = values[values > 0]
            norm = None
            if positive.size:
                norm = LogNorm(vmin=positive.min(), vmax=positive.max())
            name = _symbol(key)
            heatmap(
                figure,
                axes[row, 0],
                epochs,
                np.where(values > 0, values, np.nan),
                norm=norm,
            )
            axes[row, 0].set_title(f"||{name}|| over training")
            latest = values[-1]
            steps = np.arange(latest.size)
            shown = latest > 0
            axes[row, 1].semilogy(steps[shown], latest[shown], color="C0")
            axes[row, 1].set_xlabel("time step t")
            axes[row, 1].set_ylabel(f"||{name}||")
            axes[row, 1].set_title(f"after epoch {epochs[-1]}")
            axes[row, 1].grid(True, which="both", alpha=0.3)
        return figure


def _symbol(key):
    state, _, direction = key.partition("_")
    suffix = f" ({direction})" if direction else ""
    return f"dL/d{state}_t{suffix}"


def _metadata(plugin_name):
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name)
    ).SerializeToString()


def _write_scalar(tag, value, step):
    import tensorflow as tf

    tf.summary.write(
        tag,
        tf.constant(float(value), tf.float32),
        step=step,
        metadata=_metadata("scalars"),
    )
