"""One-step recurrent cells from raw weights."""

from kerasrnn.cells.gru import GRUCell
from kerasrnn.cells.lstm import LSTMCell
from kerasrnn.cells.simple_rnn import SimpleRNNCell

__all__ = ["GRUCell", "LSTMCell", "SimpleRNNCell"]
