"""Keras's own RNN unit tests, run with kerasrnn's classes substituted.

Every `unittest.TestCase` of Keras 3's `keras/src/layers/rnn/{simple_rnn,
lstm,gru,bidirectional,rnn,stacked_rnn_cells}_test.py`, imported from the
installed wheel (`keras_suite.keras_test_modules`), is collected here as
`<file>_<Class>` and runs under the `kerasrnn_substituted` fixture
(`conftest.py`): `keras.layers.SimpleRNN`, `LSTM`, `GRU` and their cells are
kerasrnn's, and the fixture fails a test in which kerasrnn was not
constructed (outside `keras_suite.CONSTRUCTS_NONE`) or in which Keras's own
six classes were constructed or computed. Keras's expected values, shapes
and tolerances are the assertions; tests that Keras itself skips (a CUDA
device, another backend) are skipped by Keras's own marks. With Keras 3.15.1
every other test passes on TensorFlow, JAX and PyTorch, so none is marked
xfail; one that checks a Keras internal no drop-in can match would be marked
`pytest.mark.xfail(reason=..., strict=True)` here, never skipped.
"""

import pytest

from tests.conformance import keras_suite


def _collect():
    collected = {}
    for file_name, module in keras_suite.keras_test_modules().items():
        for class_name, test_case in keras_suite.test_case_classes(module).items():
            name = f"{file_name}_{class_name}"
            collected[name] = pytest.mark.usefixtures("kerasrnn_substituted")(
                type(name, (test_case,), {"__module__": __name__})
            )
    return collected


globals().update(_collect())


def test_every_listed_test_exists():
    """CONSTRUCTS_NONE names tests that exist."""
    existing = set()
    for file_name, module in keras_suite.keras_test_modules().items():
        for class_name, test_case in keras_suite.test_case_classes(module).items():
            existing.add(f"{file_name}_{class_name}::*")
            existing.update(
                f"{file_name}_{class_name}::{attr}"
                for attr in dir(test_case)
                if attr.startswith("test")
            )
    listed = set(keras_suite.CONSTRUCTS_NONE)
    assert listed <= existing, sorted(listed - existing)
