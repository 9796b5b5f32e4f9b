"""What the fast-path parity tests of the three backends share: inputs and
initial states, two copies of a layer with the same weights (one with
`fast_path=True`, one with `fast_path=False`), and the comparison of their
outputs and gradients.

Each backend's `test_parity.py` binds these to its own layer kinds and
shapes (`functools.partial`), and keeps its own cases: the masks its
kernels support, its batch slices, its compiled wrappers.
"""

import dataclasses

import numpy as np

from tests.utils import assert_all_close, call_and_gradients, random_weights_like


@dataclasses.dataclass(frozen=True)
class Shapes:
    """The shapes of a parity test's layers and inputs."""

    batch: int
    steps: int
    features: int
    units: int


def inputs(shapes, seed=0, batch=None, steps=None):
    """A random float32 input `(batch, steps, features)`."""
    rng = np.random.default_rng(seed)
    batch = shapes.batch if batch is None else batch
    steps = shapes.steps if steps is None else steps
    return rng.standard_normal((batch, steps, shapes.features)).astype("float32")


def initial_state(layer, seed=3, batch=None, shapes=None):
    """Random initial states for `layer`, one `(batch, size)` per state."""
    rng = np.random.default_rng(seed)
    batch = shapes.batch if batch is None else batch
    return [
        (0.5 * rng.standard_normal((batch, size))).astype("float32")
        for size in layer.state_size
    ]


def twin_layers(kinds, shapes, kind, batch=None, steps=None, scale=0.5, **kwargs):
    """`(fast, readable)` copies of the layer `kinds[kind]` (a `(class,
    kwargs)` pair) with the same random weights, built for `shapes`."""
    cls, kind_kwargs = kinds[kind]
    fast = cls(shapes.units, fast_path=True, **kind_kwargs, **kwargs)
    readable = cls(shapes.units, fast_path=False, **kind_kwargs, **kwargs)
    batch = shapes.batch if batch is None else batch
    steps = shapes.steps if steps is None else steps
    for layer in (fast, readable):
        layer.build((batch, steps, shapes.features))
    weights = random_weights_like(readable, scale=scale)
    fast.set_weights(weights)
    readable.set_weights(weights)
    return fast, readable


def assert_same(fast, readable, x, tol=1e-5, gradients=call_and_gradients, **call):
    """Same outputs (shapes, dtypes, values) and gradients with respect to the
    inputs, the initial states and every weight from both layers, within
    `tol` (absolute and relative), the fast one having taken the fast path;
    returns the fast layer's outputs. `gradients(layer, x, call)` computes
    `(outputs, gradients)` (`tests.utils.call_and_gradients` by default)."""
    out_fast, grads_fast = gradients(fast, x, call)
    out_readable, grads_readable = gradients(readable, x, call)
    assert fast.last_path == "fast", fast.last_path_reason
    assert readable.last_path == "readable"
    assert len(out_fast) == len(out_readable)
    for k, (a, b) in enumerate(zip(out_fast, out_readable)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert_all_close(a, b, atol=tol, rtol=tol, what=f"output {k}")
    assert grads_fast.keys() == grads_readable.keys()
    for name, expected in grads_readable.items():
        actual = grads_fast[name]
        if name == "initial_state":
            for a, b in zip(actual, expected):
                assert_all_close(a, b, atol=tol, rtol=tol, what="d/dinitial_state")
        else:
            assert_all_close(actual, expected, atol=tol, rtol=tol, what=f"d/d{name}")
    return out_fast
