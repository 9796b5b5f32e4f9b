"""Sequence layers that run a kerasrnn cell over the time axis."""

from kerasrnn.layers.base import RecurrentLayer
from kerasrnn.layers.gru import GRU
from kerasrnn.layers.lstm import LSTM
from kerasrnn.layers.min_gru import MinGRU
from kerasrnn.layers.min_lstm import MinLSTM
from kerasrnn.layers.simple_rnn import SimpleRNN
from kerasrnn.layers.slstm import SLSTM

__all__ = [
    "GRU",
    "LSTM",
    "MinGRU",
    "MinLSTM",
    "RecurrentLayer",
    "SLSTM",
    "SimpleRNN",
]
