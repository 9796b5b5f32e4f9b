"""kerasrnn.MinGRU against a float64 NumPy loop written from Feng et al. (2024):
outputs, states and gradients on the readable, scan and sequential paths,
masks, go_backwards, stateful runs, T = 4096, Bidirectional, dropout, the
inspection tools and bad arguments. The tests are shared with
test_min_lstm.py (`tests/layers/minimal_checks.py`)."""

import pytest

from tests.layers.minimal_checks import *  # noqa: F403 - the shared tests


@pytest.fixture
def kind():
    return "min_gru"
