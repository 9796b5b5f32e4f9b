"""The sequence-layer base class: a `keras.layers.RNN` built around one
kerasrnn cell, with the constructor and call arguments of Keras's own
`SimpleRNN`, `LSTM` and `GRU` and early, named errors for bad input."""

import logging

import keras
from keras import ops, regularizers

from kerasrnn.export import (
    check_exportable,
    choose_export_path,
    export_target,
    run_export_path,
)
from kerasrnn.fast import check_fast_path, choose_path, run_fast_path, static_support
from kerasrnn.fast.dispatch import backend_kernels
from kerasrnn.fast.kinds import standard_cell_reason

__all__ = ["RecurrentLayer"]

# Arguments that belong to the sequence layer; every other keyword argument
# of the constructor is passed on to the cell, which validates it.
_LAYER_ARGUMENTS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "activity_regularizer",
    "name",
    "dtype",
    "trainable",
    "autocast",
    "input_dim",
    "input_shape",
    "zero_output_for_mask",
)
_USE_CUDNN_VALUES = ("auto", True, False)
_logger = logging.getLogger("kerasrnn.fast")
# Keys of a cell's config that describe the cell object, not the layer's
# hyperparameters.
_CELL_OBJECT_KEYS = ("name", "trainable", "dtype")


def _check_use_cudnn(value):
    """Returns `value` if it is `"auto"`, `True` or `False`, else raises."""
    if not any(
        value is v or (isinstance(v, str) and value == v) for v in _USE_CUDNN_VALUES
    ):
        raise ValueError(
            f'use_cudnn must be "auto", True or False. Received: use_cudnn={value!r}'
        )
    return value


def _cudnn_cell_reason(layer):
    """Why no cuDNN kernel can ever compute `layer` (a string), or `None`:
    what its constructor fixes, on any backend and device."""
    cell = layer.cell
    reason = standard_cell_reason(cell)
    if reason is None and getattr(cell, "reset_after", True) is False:
        reason = (
            "cuDNN's GRU applies the reset gate after the matmul: reset_after=False"
        )
    if reason is None and cell.recurrent_dropout > 0:
        reason = (
            "cuDNN has no recurrent dropout: recurrent_dropout="
            f"{cell.recurrent_dropout}"
        )
    if reason is None and layer.unroll:
        reason = "unroll=True asks for the unrolled step-by-step loop"
    return reason


def _cell_property(name):
    """A read-only layer attribute that forwards to the cell's `name`."""
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's `{name}`.")


class RecurrentLayer(keras.layers.RNN):
    """Runs `cell_class` over a sequence, like `keras.layers.RNN(cell)`.

    Subclasses set `cell_class` and `cell_name`, and may also derive from
    the Keras layer they replace (`kerasrnn.LSTM` is a `keras.layers.LSTM`),
    whose own constructor and loop this class skips. The layer's weights are
    the cell's (`kernel`, `recurrent_kernel`, `bias`, in that order), so
    `get_weights()` matches the Keras built-in of the same kind.

    `fast_path` (`"auto"`, `True` or `False`; default `"auto"`) chooses how
    the sequence is run: the readable cell step by step, or `kerasrnn.fast`,
    the same function as the current backend's fused whole-sequence kernels.
    `"auto"` takes the fast path when the cell, activations and dtype are
    covered and the backend's kernels pay off for the call (on TensorFlow:
    compiled code with a static number of timesteps; on PyTorch: every call
    its kernels can compute); `True` forces it (a
    `ValueError` if it cannot apply); `False` always reads. After a call,
    `last_path` is `"fast"` or `"readable"` and `last_path_reason` says why
    (also logged at DEBUG on `"kerasrnn.fast"`). While `model.export` traces
    the layer for ONNX or LiteRT, the format's graph replaces the fast path
    (`last_path` `"export"`, see `kerasrnn.export`), whatever `fast_path`
    says.

    Subclasses with `takes_use_cudnn = True` (`LSTM`, `GRU`, as in Keras)
    also take `use_cudnn` (`"auto"`, `True` or `False`; default `"auto"`),
    kept as `layer.use_cudnn` and in `get_config()`; it narrows the fast
    path to its cuDNN kernels or away from them:

    - `"auto"`: the backend's kernels may use cuDNN where they have it. It
      is stored as `False` where cuDNN is ruled out for good, with
      `fast_path=False` or an LSTM variant or peepholes, so that
      `keras.layers.Bidirectional`, which reads `use_cudnn` to pick Keras's
      fused cuDNN kernel, never hands such a layer to it.
    - `False`: no cuDNN kernel runs the layer.
    - `True`: the layer runs on a cuDNN kernel or raises `ValueError`. The
      constructor refuses what no cuDNN kernel computes (`fast_path=False`,
      an LSTM variant or peepholes, activations other than tanh/sigmoid,
      `reset_after=False`, `recurrent_dropout`, `unroll=True`); each call
      refuses what this backend, device and input cannot run on cuDNN (any
      call on a CPU, and on TensorFlow, whose kerasrnn kernels are XLA), as
      Keras does, so that a model configured for a GPU still builds and
      loads elsewhere. The inspection tools
      (`kerasrnn.inspection.gradients`, `gates`) still take the readable
      loop.

    A backend package of `kerasrnn.fast` that has cuDNN kernels says so with
    `cudnn_unsupported_call(layer, sequences, mask)`: `None` when the call
    would run on cuDNN, else why not; a package without it has none.
    """

    cell_class = None
    cell_name = None
    # Whether the constructor takes Keras's `use_cudnn` (LSTM and GRU).
    takes_use_cudnn = False

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        activity_regularizer=None,
        fast_path="auto",
        **kwargs,
    ):
        fast_path = check_fast_path(fast_path)
        if self.takes_use_cudnn:
            use_cudnn = _check_use_cudnn(kwargs.pop("use_cudnn", "auto"))
        layer_kwargs = {k: kwargs.pop(k) for k in _LAYER_ARGUMENTS if k in kwargs}
        for flag, value in (
            ("return_sequences", return_sequences),
            ("return_state", return_state),
            ("go_backwards", go_backwards),
            ("stateful", stateful),
            ("unroll", unroll),
        ):
            if not isinstance(value, bool):
                raise ValueError(
                    f"{flag} must be True or False. Received: {flag}={value!r}"
                )
        cell = self.cell_class(
            units,
            name=self.cell_name,
            dtype=layer_kwargs.get("dtype"),
            trainable=layer_kwargs.get("trainable", True),
            **kwargs,
        )
        # keras.layers.RNN's constructor, not that of the Keras layer a
        # subclass may also derive from, which would build a Keras cell.
        keras.layers.RNN.__init__(
            self,
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **layer_kwargs,
        )
        self.fast_path = fast_path
        # Which loop the last call took ("fast" or "readable"), and why.
        self.last_path = None
        self.last_path_reason = None
        if fast_path is True:
            reason = static_support(self)
            if reason is not None:
                raise ValueError(
                    f"fast_path=True is not possible for this {type(self).__name__}: "
                    f"{reason}. Received: fast_path=True"
                )
        if self.takes_use_cudnn:
            self.use_cudnn = self._settle_use_cudnn(use_cudnn)

    def _settle_use_cudnn(self, use_cudnn):
        """`use_cudnn` as the layer keeps it: `"auto"` becomes `False` where
        cuDNN is ruled out for good, and `True` there raises."""
        if use_cudnn is False:
            return False
        cell = self.cell
        if self.fast_path is False:
            reason = "fast_path=False always runs the readable cell loop"
        elif getattr(cell, "variant", "np") != "np" or getattr(
            cell, "use_peepholes", False
        ):
            # keras.layers.Bidirectional cannot see this before it hands a
            # layer to Keras's fused cuDNN LSTM.
            reason = (
                f"an LSTM with variant={cell.variant!r} and use_peepholes="
                f"{cell.use_peepholes} is not cuDNN's LSTM"
            )
        elif use_cudnn is True:
            reason = _cudnn_cell_reason(self)
        else:
            reason = None
        if reason is None:
            return use_cudnn
        if use_cudnn is True:
            raise ValueError(
                "use_cudnn=True demands a cuDNN kernel, but none computes this "
                f"{type(self).__name__}: {reason}. Pass use_cudnn='auto' to let "
                "kerasrnn choose. Received: use_cudnn=True, "
                f"fast_path={self.fast_path!r}"
            )
        return False

    # Hyperparameters live on the cell; read them from the layer as in Keras.
    units = _cell_property("units")
    activation = _cell_property("activation")
    use_bias = _cell_property("use_bias")
    kernel_initializer = _cell_property("kernel_initializer")
    recurrent_initializer = _cell_property("recurrent_initializer")
    bias_initializer = _cell_property("bias_initializer")
    kernel_regularizer = _cell_property("kernel_regularizer")
    recurrent_regularizer = _cell_property("recurrent_regularizer")
    bias_regularizer = _cell_property("bias_regularizer")
    kernel_constraint = _cell_property("kernel_constraint")
    recurrent_constraint = _cell_property("recurrent_constraint")
    bias_constraint = _cell_property("bias_constraint")
    dropout = _cell_property("dropout")
    recurrent_dropout = _cell_property("recurrent_dropout")
    seed = _cell_property("seed")

    def _check_sequences_shape(self, shape):
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank 3 "
                f"(batch, timesteps, features). Received: inputs.shape={shape}"
            )
        if shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} needs a known feature dimension. "
                f"Received: inputs.shape={shape}"
            )
        if shape[1] == 0:
            raise ValueError(
                f"{type(self).__name__} needs at least one time step. "
                f"Received: inputs.shape={shape}"
            )
        kernel = getattr(self.cell, "kernel", None)
        if self.cell.built and kernel is not None and shape[-1] != kernel.shape[0]:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' was built for "
                f"{kernel.shape[0]} input features (kernel shape "
                f"{tuple(kernel.shape)}). Received: inputs.shape={shape}"
            )

    def _check_initial_state(self, initial_state, batch_size):
        states = (
            list(initial_state)
            if keras.tree.is_nested(initial_state)
            else [initial_state]
        )
        names = getattr(self.cell, "state_names", None) or (
            "[h, c]" if len(self.state_size) == 2 else "[h]"
        )
        if len(states) != len(self.state_size):
            raise ValueError(
                f"{type(self).__name__} needs initial_state with "
                f"{len(self.state_size)} tensor(s) {names}. Received: "
                f"initial_state with {len(states)} tensor(s)"
            )
        for state, size in zip(states, self.state_size):
            shape = tuple(ops.shape(state))
            ok = len(shape) == 2 and shape[1] == size
            if ok and shape[0] is not None and batch_size is not None:
                ok = shape[0] == batch_size
            if not ok:
                raise ValueError(
                    f"Each initial_state tensor of {type(self).__name__} must have "
                    f"shape (batch, {size}) = ({batch_size}, {size}). Received: "
                    f"initial_state shapes {[tuple(ops.shape(s)) for s in states]}"
                )

    def _check_mask(self, mask, sequences_shape):
        shape = tuple(ops.shape(mask))
        expected = tuple(sequences_shape[:2])
        ok = len(shape) == 2 and all(
            a is None or b is None or a == b for a, b in zip(shape, expected)
        )
        if not ok:
            raise ValueError(
                f"The mask of {type(self).__name__} must have shape (batch, "
                f"timesteps) = {expected}, one entry per step. Received: "
                f"mask.shape={shape}"
            )

    def build(self, sequences_shape, initial_state_shape=None):
        self._check_sequences_shape(sequences_shape)
        if self.stateful and sequences_shape[0] is None:
            raise ValueError(
                "stateful=True needs a static batch size: pass "
                "`batch_size` to `keras.Input` (or `batch_input_shape`). "
                f"Received: stateful=True with inputs.shape={tuple(sequences_shape)}"
            )
        keras.layers.RNN.build(self, sequences_shape, initial_state_shape)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        self._check_sequences_shape(sequences.shape)
        export_format = export_target()
        if export_format is not None:
            check_exportable(self, export_format, sequences)
        if initial_state is not None:
            self._check_initial_state(initial_state, sequences.shape[0])
        if mask is not None:
            self._check_mask(mask, sequences.shape)
        # Plain flags: set past Keras's attribute tracking, which costs more
        # than a short eager call on the torch backend.
        object.__setattr__(self.cell, "_masks_wanted", bool(training))
        try:
            return keras.layers.RNN.call(
                self,
                sequences,
                initial_state=initial_state,
                mask=mask,
                training=training,
            )
        finally:
            object.__setattr__(self.cell, "_masks_wanted", True)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        # Traced for model.export: the graph the format's converter takes.
        export_format = export_target()
        chosen = None
        if export_format is not None:
            chosen = choose_export_path(self, export_format, mask)
        if chosen is None:
            inspected = (
                getattr(self, "_state_probes", None) is not None
                or getattr(self.cell, "_gate_trace", None) is not None
            )
            if getattr(self, "use_cudnn", "auto") is True and not inspected:
                self._check_cudnn_call(sequences, mask)
                chosen = ("fast", "use_cudnn=True")
            else:
                use_fast, reason = choose_path(self, sequences, mask, training)
                chosen = ("fast" if use_fast else "readable", reason)
        object.__setattr__(self, "last_path", chosen[0])
        object.__setattr__(self, "last_path_reason", chosen[1])
        _logger.debug(
            "%s '%s': %s path (%s)",
            type(self).__name__,
            self.name,
            self.last_path,
            self.last_path_reason,
        )
        if self.last_path == "export":
            return run_export_path(self, export_format, sequences, initial_state, mask)
        if self.last_path == "fast":
            return run_fast_path(self, sequences, initial_state, mask, training)
        if getattr(self, "_state_probes", None) is not None:
            return self._probed_inner_loop(sequences, initial_state, mask, training)
        # keras.layers.RNN's loop over the cell, never the cuDNN dispatch of
        # the Keras LSTM or GRU a subclass may also derive from.
        return keras.layers.RNN.inner_loop(
            self, sequences, initial_state, mask, training=training
        )

    def _check_cudnn_call(self, sequences, mask):
        """Raises `ValueError` unless this call runs on a cuDNN kernel."""
        backend = keras.backend.backend()
        reason = static_support(self)
        if reason is None:
            check = getattr(backend_kernels(backend), "cudnn_unsupported_call", None)
            if check is None:
                reason = f"kerasrnn's kernels for the {backend!r} backend use no cuDNN"
            else:
                reason = check(self, sequences, mask)
        if reason is not None:
            raise ValueError(
                f"use_cudnn=True demands a cuDNN kernel, but this call of "
                f"{type(self).__name__} '{self.name}' cannot run on one: {reason}. "
                "Pass use_cudnn='auto' to fall back to another kernel. "
                "Received: use_cudnn=True"
            )

    def _probed_inner_loop(self, sequences, initial_state, mask, training):
        """The readable loop with zero probes added to the states, so that
        `kerasrnn.inspection.gradients` reads dL/dh_t (and dL/dc_t) as dL/dprobe_t.

        `self._state_probes` maps `"hidden_state"` (and, for cells that call
        `self.probe("cell_state", ...)`, `"cell_state"`) to a zero tensor
        `(batch, timesteps, units)` in input order. The probes travel as extra
        input features, so `go_backwards` reverses them with the inputs. The
        hidden-state probe is added to the step's output and new `h_t`; the
        cell adds the others itself where the state is made, before its other
        uses. At a masked step the layer keeps the previous state, so that
        step's probe never reaches the loss: dL/dh_t is 0 there.
        """
        from keras.src.backend import rnn

        probes = dict(self._state_probes)
        names = list(probes)
        features = sequences.shape[-1]
        widths = [probes[name].shape[-1] for name in names]
        stacked = ops.concatenate(
            [sequences] + [ops.cast(probes[name], sequences.dtype) for name in names],
            axis=-1,
        )
        cell_kwargs = {"training": training} if self.cell._call_has_training_arg else {}

        def step(inputs, states):
            step_probes, offset = {}, features
            for name, width in zip(names, widths):
                step_probes[name] = inputs[:, offset : offset + width]
                offset += width
            h_probe = step_probes.pop("hidden_state", None)
            object.__setattr__(self.cell, "_step_probes", step_probes)
            try:
                output, new_states = self.cell(
                    inputs[:, :features], list(states), **cell_kwargs
                )
                unused = list(step_probes)
            finally:
                object.__setattr__(self.cell, "_step_probes", None)
            if unused:
                raise ValueError(
                    f"{type(self.cell).__name__} does not add probes for the "
                    f"states {unused}: kerasrnn.inspection.gradients cannot differentiate "
                    "with respect to them."
                )
            new_states = (
                list(new_states) if keras.tree.is_nested(new_states) else [new_states]
            )
            if h_probe is not None:
                output = output + h_probe
                new_states[0] = new_states[0] + h_probe
            return output, new_states

        if not keras.tree.is_nested(initial_state):
            initial_state = [initial_state]
        return rnn(
            step,
            stacked,
            initial_state,
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def get_config(self):
        config = self.cell.get_config()
        for key in _CELL_OBJECT_KEYS:
            config.pop(key, None)
        config["activity_regularizer"] = regularizers.serialize(
            self.activity_regularizer
        )
        config["fast_path"] = self.fast_path
        if self.takes_use_cudnn:
            config["use_cudnn"] = self.use_cudnn
        base_config = keras.layers.RNN.get_config(self)
        del base_config["cell"]
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
