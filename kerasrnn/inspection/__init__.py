"""Looking inside a trained recurrent network: the gradient at every time step,
the gates at every step, and checks that the data is finite.

- `kerasrnn.inspection.gradients`: `hidden_state_gradient_norms`, the exact
  norm of dL/dh_t (and dL/dc_t) at every step.
- `kerasrnn.inspection.gates`: `gate_activations`, every gate of a kerasrnn
  layer at every step (`GateRecorder` compiles it once for repeated use),
  `summarize_gates` and `saturated`.
- `kerasrnn.inspection.numerics`: `check_finite`, `check_finite_dataset` and
  `with_finite_check`, which find a NaN or Inf at its source.
- `kerasrnn.inspection.finder`: `find_recurrent_layer`, the recurrent layer
  of a model that the tools above (and `kerasrnn.callbacks`) instrument, and
  `capture_layer_inputs`, what that layer receives for a batch.
"""

from kerasrnn.inspection.finder import capture_layer_inputs, find_recurrent_layer
from kerasrnn.inspection.gates import (
    GateRecorder,
    gate_activations,
    saturated,
    summarize_gates,
)
from kerasrnn.inspection.gradients import (
    HiddenStateGradients,
    hidden_state_gradient_norms,
)
from kerasrnn.inspection.numerics import (
    check_finite,
    check_finite_dataset,
    with_finite_check,
)

__all__ = [
    "GateRecorder",
    "HiddenStateGradients",
    "capture_layer_inputs",
    "check_finite",
    "check_finite_dataset",
    "find_recurrent_layer",
    "gate_activations",
    "hidden_state_gradient_norms",
    "saturated",
    "summarize_gates",
    "with_finite_check",
]
