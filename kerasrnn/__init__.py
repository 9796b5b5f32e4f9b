"""kerasrnn: vanilla RNN, LSTM and GRU cells from raw weights as Keras 3 layers."""

from kerasrnn.cells.clockwork import ClockworkRNNCell
from kerasrnn.cells.depth_gated_lstm import DepthGatedLSTMCell
from kerasrnn.cells.gru import GRUCell
from kerasrnn.cells.lstm import LSTMCell
from kerasrnn.cells.min_gru import MinGRUCell
from kerasrnn.cells.min_lstm import MinLSTMCell
from kerasrnn.cells.simple_rnn import SimpleRNNCell
from kerasrnn.cells.slstm import SLSTMCell
from kerasrnn.layers.base import RecurrentLayer
from kerasrnn.layers.clockwork import ClockworkRNN
from kerasrnn.layers.depth_gated_lstm import DepthGatedLSTM
from kerasrnn.layers.gru import GRU
from kerasrnn.layers.lstm import LSTM
from kerasrnn.layers.min_gru import MinGRU
from kerasrnn.layers.min_lstm import MinLSTM
from kerasrnn.layers.simple_rnn import SimpleRNN
from kerasrnn.layers.slstm import SLSTM

__version__ = "0.1.0"

__all__ = [
    "ClockworkRNN",
    "ClockworkRNNCell",
    "DepthGatedLSTM",
    "DepthGatedLSTMCell",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "MinGRU",
    "MinGRUCell",
    "MinLSTM",
    "MinLSTMCell",
    "RecurrentLayer",
    "SLSTM",
    "SLSTMCell",
    "SimpleRNN",
    "SimpleRNNCell",
]
