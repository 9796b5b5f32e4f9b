"""Keras callbacks that show what happens inside kerasrnn's recurrent layers
while a model trains: the gradient at every time step and the gates."""

from kerasrnn.callbacks.gate_activation_history import GateActivationHistory
from kerasrnn.callbacks.gradient_norm_history import GradientNormHistory

__all__ = ["GateActivationHistory", "GradientNormHistory"]
