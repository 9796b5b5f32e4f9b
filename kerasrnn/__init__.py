"""kerasrnn: vanilla RNN, LSTM and GRU cells from raw weights as Keras 3 layers."""

from kerasrnn.cells.gru import GRUCell
from kerasrnn.cells.lstm import LSTMCell
from kerasrnn.cells.simple_rnn import SimpleRNNCell
from kerasrnn.layers.base import RecurrentLayer
from kerasrnn.layers.gru import GRU
from kerasrnn.layers.lstm import LSTM
from kerasrnn.layers.simple_rnn import SimpleRNN

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "RecurrentLayer",
    "SimpleRNN",
    "SimpleRNNCell",
]
