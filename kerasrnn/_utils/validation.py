"""Argument checks shared by kerasrnn cells and layers.

Each check raises `ValueError` naming the argument and the value received, so
that bad input fails in the constructor or in `build()`, never deep inside a
backend.
"""

import numbers

import numpy as np
from keras import activations

__all__ = [
    "is_integer",
    "check_positive_int",
    "check_int_at_least",
    "check_rate",
    "check_bool",
    "get_activation",
]


def is_integer(value):
    """A Python or NumPy integer, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(name, value):
    """Returns `value` if it is a positive Python/NumPy integer, else raises."""
    if not is_integer(value) or value <= 0:
        raise ValueError(
            f"{name} must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def check_int_at_least(name, value, minimum):
    """Returns `value` if it is a Python/NumPy integer >= `minimum`, else raises."""
    if not is_integer(value) or value < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def check_rate(name, value):
    """Returns `value` as a float if it lies in [0, 1), else raises."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a float in [0, 1). Received: {name}={value!r}"
        )
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"{name} must be a float in [0, 1). Received: {name}={value!r}"
        )
    return value


def check_bool(name, value):
    """Returns `value` as a Python bool if it is `True`/`False` (NumPy's too),
    else raises: `bool("no")` would silently be `True`."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False. Received: {name}={value!r}")
    return bool(value)


def get_activation(name, identifier):
    """Resolves an activation like `keras.activations.get`, naming the argument."""
    try:
        fn = activations.get(identifier)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Unknown activation for `{name}`. Received: {name}={identifier!r}"
        ) from error
    if fn is None or not callable(fn):
        raise ValueError(
            f"Unknown activation for `{name}`. Received: {name}={identifier!r}"
        )
    return fn
