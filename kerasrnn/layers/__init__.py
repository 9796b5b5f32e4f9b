"""Sequence layers that run a kerasrnn cell over the time axis."""

from kerasrnn.layers.base import RecurrentLayer
from kerasrnn.layers.gru import GRU
from kerasrnn.layers.lstm import LSTM
from kerasrnn.layers.simple_rnn import SimpleRNN

__all__ = ["GRU", "LSTM", "RecurrentLayer", "SimpleRNN"]
