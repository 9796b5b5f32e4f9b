"""The SimpleRNN's training step by hand on the torch backend
(`kerasrnn.fast.torch.simple_rnn`).

Its reference is PyTorch's own kernel differentiated by autograd
(`torch._VF.rnn_tanh`/`rnn_relu`, the function behind `torch.nn.RNN`):
outputs, final states and every gradient (inputs, initial state, both
weight matrices, both biases) in float64 within 1e-10 relative to the
largest value; across batch-first, time-major and packed sequences
(unequal lengths), both activations, with and without biases, the loss on
the outputs, on the final state or both, and chunks of one step, of a few
steps across unequal batch sizes, and of the whole sequence. Layer-level
parity (masks, `go_backwards`, stateful, Bidirectional) is in
`test_parity.py` and `test_torch_nn.py`, which run through this kernel.
Memory is counted from the allocation records of PyTorch's profiler.
"""

import itertools

import pytest

from tests.utils import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the torch kernels run on the torch backend"
)

if BACKEND == "torch":
    import torch

    from kerasrnn.fast.torch import simple_rnn
    from kerasrnn.fast.torch.simple_rnn import kept_states_kernel
    from kerasrnn.fast.torch.weights import kernel_function
    from tests.fast.torch.allocations import peak_allocated_bytes

BATCH, STEPS, FEATURES, UNITS = 5, 9, 3, 4
LENGTHS = [9, 3, 7, 1, 9]  # unsorted, with a sample of one step


def _tensors(dtype, biases, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape, scale=1.0):
        value = torch.randn(*shape, generator=generator, dtype=dtype) * scale
        return value.requires_grad_()

    x = draw(BATCH, STEPS, FEATURES)
    h0 = draw(1, BATCH, UNITS)
    params = [draw(UNITS, FEATURES), draw(UNITS, UNITS, scale=0.5)]
    if biases:
        params += [draw(UNITS), draw(UNITS)]
    return x, h0, params


def _call(function, x, h0, params, form):
    biases = len(params) == 4
    if form == "batch_first":
        return function(x, h0, params, biases, 1, 0.0, True, False, True)
    if form == "time_major":
        sequence = x.transpose(0, 1).contiguous()
        return function(sequence, h0, params, biases, 1, 0.0, True, False, False)
    sequence = torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False
    )
    h0 = h0.index_select(1, sequence.sorted_indices)
    return function(
        sequence.data, sequence.batch_sizes, h0, params, biases, 1, 0.0, True, False
    )


def _loss(outputs, last, on):
    def weights(like):
        return torch.arange(like.numel(), dtype=like.dtype).reshape(like.shape)

    loss = 0
    if on in ("outputs", "both"):
        loss = loss + (outputs.sin() * weights(outputs).cos()).sum()
    if on in ("last", "both"):
        loss = loss + (last.cos() * weights(last)).sum()
    return loss


@pytest.mark.parametrize(
    "activation,form,biases,loss_on,chunk_rows",
    list(
        itertools.product(
            ["tanh", "relu"],
            ["batch_first", "time_major", "packed"],
            [False, True],
            ["outputs", "last", "both"],
            [1, 7, 512],
        )
    ),
)
def test_equals_pytorch_kernel(
    monkeypatch, activation, form, biases, loss_on, chunk_rows
):
    # A chunk of steps per 1 row: one step per chunk; per 7 rows: chunks of
    # one to three steps, some across steps of unequal batch sizes (packed);
    # per 512 rows: the whole sequence in one chunk.
    monkeypatch.setattr(simple_rnn, "_CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(simple_rnn, "_MIN_CHUNKS", 1)
    results = []
    for function in (
        kernel_function("simple_rnn", activation),
        kept_states_kernel(activation),
    ):
        x, h0, params = _tensors(torch.float64, biases)
        outputs, last = _call(function, x, h0, params, form)
        grads = torch.autograd.grad(_loss(outputs, last, loss_on), [x, h0, *params])
        results.append([outputs.detach(), last.detach(), *grads])
    for expected, got in zip(*results):
        assert got.shape == expected.shape
        scale = float(expected.abs().max()) or 1.0
        assert float((got - expected).abs().max()) <= 1e-10 * scale


def _peak_bytes(function, batch=16, steps=400, units=64):
    """The peak of the bytes PyTorch's CPU allocator holds, beyond what it
    held before, over a training step through `function` (forward and
    backward, the loss on the final state), counted by PyTorch's profiler
    from its allocation records; and the bytes of the states `(steps,
    batch, units)` float32."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, steps, 8, generator=generator)
    h0 = torch.zeros(1, batch, units)
    params = [
        torch.randn(units, 8, generator=generator),
        torch.randn(units, units, generator=generator) / units**0.5,
        torch.zeros(units),
        torch.zeros(units),
    ]
    params = [p.requires_grad_() for p in params]

    def step():
        _, last = function(x, h0, params, True, 1, 0.0, True, False, True)
        last.square().sum().backward()

    peak = peak_allocated_bytes(step)
    return peak, steps * batch * units * 4


def test_training_step_holds_the_states_and_little_else():
    # The forward pass holds the states and one chunk of input projections;
    # the backward pass, one chunk of `da`. PyTorch's kernel, differentiated
    # by autograd, holds about three times the states (a precondition that
    # shows the measure can tell them apart).
    peak, states = _peak_bytes(kept_states_kernel("tanh"))
    pytorch_peak, _ = _peak_bytes(kernel_function("simple_rnn", "tanh"))
    assert pytorch_peak > 2.5 * states
    assert states <= peak <= 1.15 * states


def test_no_gradient_runs_pytorch_kernel():
    x, h0, params = _tensors(torch.float32, True)
    with torch.no_grad():
        outputs, last = _call(kept_states_kernel("tanh"), x, h0, params, "batch_first")
        expected, expected_last = _call(
            kernel_function("simple_rnn", "tanh"), x, h0, params, "batch_first"
        )
    assert outputs.grad_fn is None
    torch.testing.assert_close(outputs, expected, rtol=0, atol=0)
    torch.testing.assert_close(last, expected_last, rtol=0, atol=0)


@pytest.mark.parametrize("form", ["batch_first", "packed"])
def test_nothing_requiring_a_gradient_runs_pytorch_kernel(form):
    # Gradients enabled, but no tensor asks for one (and no biases, so a
    # bool follows the weights among the arguments).
    x, h0, params = _tensors(torch.float32, False)
    x, h0 = x.detach(), h0.detach()
    params = [p.detach() for p in params]
    outputs, last = _call(kept_states_kernel("tanh"), x, h0, params, form)
    expected, expected_last = _call(
        kernel_function("simple_rnn", "tanh"), x, h0, params, form
    )
    assert outputs.grad_fn is None
    torch.testing.assert_close(outputs, expected, rtol=0, atol=0)
    torch.testing.assert_close(last, expected_last, rtol=0, atol=0)


def test_torch_func_grad_takes_pytorch_kernel():
    # torch.func transforms run PyTorch's kernel (an old-style
    # autograd.Function has no rule for them): the gradient still matches.
    x, h0, params = _tensors(torch.float64, True)
    x, h0 = x.detach(), h0.detach()
    params = [p.detach() for p in params]

    def loss(w_hh, function):
        outputs, last = _call(
            function, x, h0, [params[0], w_hh, *params[2:]], "batch_first"
        )
        return _loss(outputs, last, "both")

    grad = torch.func.grad(loss)(params[1], kept_states_kernel("tanh"))
    w_hh = params[1].clone().requires_grad_()
    (expected,) = torch.autograd.grad(
        loss(w_hh, kernel_function("simple_rnn", "tanh")), [w_hh]
    )
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
