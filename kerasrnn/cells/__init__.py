"""One-step recurrent cells from raw weights."""

from kerasrnn.cells.gru import GRUCell
from kerasrnn.cells.lstm import LSTMCell
from kerasrnn.cells.min_gru import MinGRUCell
from kerasrnn.cells.min_lstm import MinLSTMCell
from kerasrnn.cells.simple_rnn import SimpleRNNCell
from kerasrnn.cells.slstm import SLSTMCell

__all__ = [
    "GRUCell",
    "LSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "SLSTMCell",
    "SimpleRNNCell",
]
