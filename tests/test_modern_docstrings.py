"""The doctest examples in the docstrings of the post-lecture modules
(minGRU, minLSTM, sLSTM, the linear recurrence) run and print what they
show, on every backend."""

import doctest

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.cells import min_gru, min_lstm, minimal, slstm
from kerasrnn.fast import linear_recurrence, min_rnn
from kerasrnn.layers import min_gru as min_gru_layer
from kerasrnn.layers import min_lstm as min_lstm_layer
from kerasrnn.layers import minimal as minimal_layer
from kerasrnn.layers import slstm as slstm_layer

MODULES = [
    min_gru,
    min_lstm,
    minimal,
    slstm,
    linear_recurrence,
    min_rnn,
    min_gru_layer,
    min_lstm_layer,
    minimal_layer,
    slstm_layer,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    globs = {"np": np, "keras": keras, "kerasrnn": kerasrnn, **vars(module)}
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    examples = 0
    for test in finder.find(module, module.__name__, globs=globs):
        examples += len(test.examples)
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
    if module not in (minimal, min_rnn, minimal_layer):
        assert examples > 0, f"{module.__name__} has no docstring example"
