"""Weight converters between kerasrnn (or Keras) recurrent layers and other
libraries: `kerasrnn.converters.pytorch` maps PyTorch's `nn.RNN`, `nn.LSTM`
and `nn.GRU` weights (and their cells) to and from Keras's layout."""

from kerasrnn.converters.pytorch import from_torch_state_dict, to_torch_state_dict

__all__ = ["from_torch_state_dict", "to_torch_state_dict"]
