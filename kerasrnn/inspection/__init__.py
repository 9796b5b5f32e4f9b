"""Looking inside a trained recurrent network: the gradient at every time step,
the gates at every step, and checks that the data is finite.

- `kerasrnn.inspection.gradients`: `hidden_state_gradient_norms`, the exact
  norm of dL/dh_t (and dL/dc_t) at every step.
- `kerasrnn.inspection.gates`: `gate_activations`, every gate of a kerasrnn
  layer at every step, and `summarize_gates`.
- `kerasrnn.inspection.numerics`: `check_finite`, `check_finite_dataset` and
  `with_finite_check`, which find a NaN or Inf at its source.
- `kerasrnn.inspection.finder`: finds the recurrent layer of a model that the
  tools above (and `kerasrnn.callbacks`) instrument.
"""

from kerasrnn.inspection.finder import find_recurrent_layer
from kerasrnn.inspection.gates import gate_activations, summarize_gates
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
    "HiddenStateGradients",
    "check_finite",
    "check_finite_dataset",
    "find_recurrent_layer",
    "gate_activations",
    "hidden_state_gradient_norms",
    "summarize_gates",
    "with_finite_check",
]
