"""The fast path against `torch.nn.RNN`, `nn.LSTM` and `nn.GRU` holding the
same weights: an independent reference for the layout of `kerasrnn.fast.torch`.

Each module gets the layer's weights in PyTorch's layout (written out here:
transposed, the GRU's `[z, r, h]` blocks reordered to `[r, z, n]`, the
SimpleRNN's and LSTM's one bias as `bias_ih` with a zero `bias_hh`, the GRU's
two bias rows as `bias_ih` and `bias_hh`). Outputs, final states and the
gradients of every weight, mapped back to Keras's layout, must agree within
1e-5 (float32), also for right-padded sequences, which PyTorch takes packed.
"""

import numpy as np
import pytest

import kerasrnn
from tests.utils import BACKEND, assert_all_close, random_weights_like, to_numpy

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the PyTorch kernels run on the torch backend"
)

BATCH, STEPS, FEATURES, UNITS = 3, 7, 4, 5
LENGTHS = np.array([7, 3, 5])
KINDS = {
    "lstm": (kerasrnn.LSTM, {}, "LSTM", {}),
    "gru": (kerasrnn.GRU, {}, "GRU", {}),
    "simple_rnn": (kerasrnn.SimpleRNN, {}, "RNN", {"nonlinearity": "tanh"}),
    "simple_rnn_relu": (
        kerasrnn.SimpleRNN,
        {"activation": "relu"},
        "RNN",
        {"nonlinearity": "relu"},
    ),
}


def gru_blocks(array, axis):
    """Swaps the first two of three equal blocks along `axis` (its own inverse)."""
    z, r, h = np.split(array, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


def torch_state_dict(kind, kernel, recurrent_kernel, bias):
    reorder = (
        (lambda a, axis: gru_blocks(a, axis)) if kind == "gru" else (lambda a, axis: a)
    )
    state = {
        "weight_ih_l0": reorder(kernel, 1).T,
        "weight_hh_l0": reorder(recurrent_kernel, 1).T,
    }
    if kind == "gru":
        state["bias_ih_l0"] = reorder(bias[0], 0)
        state["bias_hh_l0"] = reorder(bias[1], 0)
    else:
        state["bias_ih_l0"] = bias
        state["bias_hh_l0"] = np.zeros_like(bias)
    return state


def keras_gradients(kind, module):
    """The module's weight gradients in Keras's layout."""
    g = {k: p.grad.numpy() for k, p in module.named_parameters()}
    reorder = (
        (lambda a, axis: gru_blocks(a, axis)) if kind == "gru" else (lambda a, axis: a)
    )
    grads = {
        "kernel": reorder(g["weight_ih_l0"].T, 1),
        "recurrent_kernel": reorder(g["weight_hh_l0"].T, 1),
    }
    if kind == "gru":
        grads["bias"] = np.stack(
            [reorder(g["bias_ih_l0"], 0), reorder(g["bias_hh_l0"], 0)]
        )
    else:
        # Both of PyTorch's biases enter the pre-activation where Keras's one
        # does: the three gradients are equal.
        assert_all_close(g["bias_ih_l0"], g["bias_hh_l0"], what="d/dbias_hh")
        grads["bias"] = g["bias_ih_l0"]
    return grads


@pytest.mark.parametrize("masked", [False, True], ids=["full", "right_padded"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_path_equals_torch_nn(kind, go_backwards, masked):
    import torch

    cls, kwargs, torch_name, torch_kwargs = KINDS[kind]
    layer = cls(
        UNITS,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        fast_path=True,
        **kwargs,
    )
    layer.build((BATCH, STEPS, FEATURES))
    layer.set_weights(random_weights_like(layer, scale=0.4))
    module = getattr(torch.nn, torch_name)(
        FEATURES, UNITS, batch_first=True, **torch_kwargs
    )
    module.load_state_dict(
        {
            k: torch.from_numpy(np.ascontiguousarray(v))
            for k, v in torch_state_dict(kind, *layer.get_weights()).items()
        }
    )

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    lengths = LENGTHS if masked else np.full(BATCH, STEPS)
    valid = np.arange(STEPS)[None, :] < lengths[:, None]
    h0 = [0.5 * rng.standard_normal((BATCH, UNITS)).astype("float32")]
    if kind == "lstm":
        h0.append(0.5 * rng.standard_normal((BATCH, UNITS)).astype("float32"))
    cot = rng.standard_normal((BATCH, STEPS, UNITS)).astype("float32")
    cot_states = [rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in h0]

    # PyTorch reads each sample's valid steps, reversed for go_backwards.
    x_torch = x.copy()
    if go_backwards:
        for b, n in enumerate(lengths):
            x_torch[b, :n] = x[b, n - 1 :: -1] if n else x[b, :0]
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x_torch),
        torch.from_numpy(lengths),
        batch_first=True,
        enforce_sorted=False,
    )
    hx = [torch.from_numpy(s)[None] for s in h0]
    out, final = module(packed, hx[0] if kind != "lstm" else tuple(hx))
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(
        out, batch_first=True, total_length=STEPS
    )
    final = list(final) if kind == "lstm" else [final]
    final = [s[0] for s in final]
    # Keras's step order: with go_backwards the padding comes first.
    shown_torch = out
    if go_backwards:
        shown_torch = torch.stack(
            [torch.roll(out[b], int(STEPS - n), 0) for b, n in enumerate(lengths)]
        )
    steps_valid = valid[:, ::-1] if go_backwards else valid
    loss = (
        sum((s * torch.from_numpy(c)).sum() for s, c in zip(final, cot_states))
        + (shown_torch * torch.from_numpy(cot * steps_valid[:, :, None])).sum()
    )
    loss.backward()

    mask = valid if masked else None
    outputs = layer(x, initial_state=h0, mask=mask)
    assert layer.last_path == "fast"
    sequence, states = outputs[0], outputs[1:]
    ours_loss = (
        sum((s * torch.from_numpy(c)).sum() for s, c in zip(states, cot_states))
        + (sequence * torch.from_numpy(cot * steps_valid[:, :, None])).sum()
    )
    variables = [v.value for v in layer.trainable_variables]
    grads = torch.autograd.grad(ours_loss, variables)

    assert_all_close(
        to_numpy(sequence) * steps_valid[:, :, None],
        to_numpy(shown_torch) * steps_valid[:, :, None],
        what="outputs at valid steps",
    )
    for k, (a, b) in enumerate(zip(states, final)):
        assert_all_close(to_numpy(a), to_numpy(b), what=f"final state {k}")
    expected = keras_gradients(kind, module)
    for variable, grad in zip(layer.trainable_variables, grads):
        name = variable.path.split("/")[-1]
        assert_all_close(to_numpy(grad), expected[name], what=f"d/d{name}")
