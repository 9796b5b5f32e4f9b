"""A callback that records what the gates do at every time step while a
model trains."""

import numpy as np

from kerasrnn.callbacks._history import ProfileHistory, heatmap, new_figure
from kerasrnn.inspection.finder import capture_layer_inputs, find_recurrent_layer
from kerasrnn.inspection.gates import GateRecorder, _is_sigmoid_gate, summarize_gates
from kerasrnn.inspection.gradients import _check_backend, _check_probe_batch

__all__ = [
    "GateActivationHistory",
]


class GateActivationHistory(ProfileHistory):
    """Records, per time step, the mean of every gate of a kerasrnn layer and
    how much of it is saturated, before training and after every
    `every_n_epochs` epochs (the "gates between 0 and 1" of Hochreiter &
    Schmidhuber 1997, on a real model).

    On a fixed probe batch `x`, the layer's inputs are taken from the
    model's forward pass and the layer's cell is run over them with
    `kerasrnn.inspection.gates.GateRecorder` (`gate_activations`, compiled once). For each activation the cell reports
    (LSTM `input_gate`, `forget_gate`, `output_gate`, `candidate`,
    `hidden_state`; GRU `update_gate`, `reset_gate`, `candidate`,
    `hidden_state`; SimpleRNN `hidden_state`) it keeps, per time step:

    - `<key>_mean`: the mean over batch and units;
    - `<key>_saturated`: the fraction saturated, where the slope that the
      gradient passes through is small: sigmoid gates below 0.05 or above
      0.95, tanh-range values (candidate, hidden state) with |a| > 0.95.

    Masked steps are left out of both. A forget gate whose mean stays near 1
    over the whole sequence is the LSTM carrying its cell state (and its
    gradient) across time; a saturated tanh hidden state is a vanilla RNN
    whose gradient is being cut.

    The measurement runs in inference mode on copies of the variables and
    does not change training.

    Args:
        x: The probe batch of model inputs.
        y: Unused (the gates do not depend on the targets); accepted so that
            both kerasrnn callbacks take the same arguments. Default: `None`.
        layer: The recurrent layer: name, layer instance, or `None` for the
            only or first kerasrnn recurrent layer. Default: `None`.
        every_n_epochs: Record after every this many epochs (>= 1).
            Default: 1.

    Attributes:
        history: `{"epoch": [...], "<key>_mean": array (records, timesteps),
            "<key>_saturated": ..., ...}`; keys of a `Bidirectional` layer
            start with `forward_` or `backward_`.

    Example:

    >>> x, y = kerasrnn.teaching.tasks.adding_problem(128, 20, seed=0)
    >>> model = keras.Sequential([keras.Input((20, 2)), kerasrnn.LSTM(8),
    ...                           keras.layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> gates = GateActivationHistory(x[:16])
    >>> _ = model.fit(x, y, epochs=1, callbacks=[gates], verbose=0)
    >>> gates.history["forget_gate_mean"].shape
    (2, 20)

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
        Computation 9(8), 1997.
    """

    value_name = "activation"

    def __init__(self, x, y=None, layer=None, every_n_epochs=1):
        _check_backend()
        super().__init__(every_n_epochs)
        self.x = x
        self.y = y
        self.layer = layer
        self._recorder = None

    def set_model(self, model):
        super().set_model(model)
        layer = find_recurrent_layer(model, self.layer)
        if self._recorder is None or self._recorder.layer is not layer:
            self._recorder = GateRecorder(layer)
        _check_probe_batch(model, self.x, None)

    def measure(self):
        layer = self._recorder.layer
        sequences, initial_state, mask = capture_layer_inputs(self.model, layer, self.x)
        activations = self._recorder(sequences, mask=mask, initial_state=initial_state)
        return summarize_gates(activations)

    def plot(self):
        """A matplotlib Figure: per activation, a heatmap of its mean over
        epoch x time step, and the latest record's mean and saturated
        fraction along the sequence."""
        self._check_recorded()
        names = [k[: -len("_mean")] for k in self.keys if k.endswith("_mean")]
        epochs = self.history["epoch"]
        figure, axes = new_figure(len(names), 2)
        for row, name in enumerate(names):
            mean = self.history[f"{name}_mean"]
            limits = (0.0, 1.0) if _is_sigmoid_gate(name) else (-1.0, 1.0)
            cmap = "viridis" if _is_sigmoid_gate(name) else "coolwarm"
            image = heatmap(figure, axes[row, 0], epochs, mean, cmap=cmap, label="mean")
            image.set_clim(*limits)
            axes[row, 0].set_title(f"{name}: mean over training")
            ax = axes[row, 1]
            steps = np.arange(mean.shape[1])
            ax.plot(steps, mean[-1], color="C0", label="mean")
            ax.plot(
                steps,
                self.history[f"{name}_saturated"][-1],
                color="C3",
                linestyle="--",
                label="saturated fraction",
            )
            ax.set_ylim(limits[0] - 0.05, 1.05)
            ax.set_xlabel("time step t")
            ax.set_title(f"{name} after epoch {epochs[-1]}")
            ax.grid(True, alpha=0.3)
            ax.legend(loc="best", fontsize="small")
        return figure
