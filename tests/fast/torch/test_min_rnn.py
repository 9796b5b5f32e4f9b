"""The chunked sequential form of the minimal cells on the torch backend
(`kerasrnn.fast.torch.min_rnn`).

Its reference is a float64 PyTorch loop written from Feng et al.'s
equations (not from the cells' `coefficients`), one step at a time and
differentiated by autograd: the states, the last state and the gradients
with respect to the inputs, the initial state, the kernel and the bias
within 1e-10 relative to the largest value; for both cells, with and
without a step mask (samples that start, pause and end masked), with and
without a bias, all states or the last one, and chunks of one step, of a
few steps (the last chunk shorter) and of the whole sequence. Layer-level
checks (masks, `go_backwards`, stateful, Bidirectional, finite
differences against NumPy) run through this form in
`tests/layers/minimal_checks.py`, with chunks of two or three steps.
Memory is counted from the allocation records of PyTorch's profiler.
"""

import pytest

from tests.utils import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the torch kernels run on the torch backend"
)

if BACKEND == "torch":
    import torch

    from kerasrnn.cells.min_gru import MinGRUCell
    from kerasrnn.cells.min_lstm import MinLSTMCell
    from kerasrnn.fast.torch import min_rnn
    from tests.fast.torch.allocations import peak_allocated_bytes

BATCH, STEPS, FEATURES, UNITS = 4, 11, 3, 5
# Sample 0 starts masked, 1 pauses, 2 ends masked, 3 runs every step.
MASK = [
    [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    [1] * STEPS,
]
# Elements per chunk at BATCH rows: a whole step's pre-activations are
# BATCH * width; 1 element gives chunks of one step.
CHUNKINGS = {"one_step": 1, "three_steps": 3, "whole": 10**9}


def _g(v):
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def _reference_step(kind, k, h):
    if kind == "min_gru":
        k_z, k_h = k.chunk(2, dim=-1)
        z = torch.sigmoid(k_z)
        return (1 - z) * h + z * _g(k_h)
    k_i, k_f, k_h = k.chunk(3, dim=-1)
    i, f = torch.sigmoid(k_i), torch.sigmoid(k_f)
    return f / (f + i) * h + i / (f + i) * _g(k_h)


def _reference(kind, x, h0, kernel, bias, mask):
    """All states `(steps, batch, units)`, a step at a time; a masked step
    keeps the state."""
    states, h = [], h0
    for t in range(x.shape[0]):
        k = x[t] @ kernel + (0 if bias is None else bias)
        new = _reference_step(kind, k, h)
        h = new if mask is None else torch.where(mask[t], new, h)
        states.append(h)
    return torch.stack(states)


def _inputs(kind, biased, seed=0):
    generator = torch.Generator().manual_seed(seed)
    width = UNITS * (2 if kind == "min_gru" else 3)

    def normal(*shape, scale=1.0):
        values = torch.randn(*shape, generator=generator, dtype=torch.float64)
        return (scale * values).requires_grad_()

    x = normal(STEPS, BATCH, FEATURES)
    h0 = normal(BATCH, UNITS, scale=2.0)  # any sign
    kernel = normal(FEATURES, width, scale=0.8)
    bias = normal(width, scale=0.5) if biased else None
    return x, h0, kernel, bias


def _cell_class(kind):
    return {"min_gru": MinGRUCell, "min_lstm": MinLSTMCell}[kind]


def _assert_close(got, expected, what):
    scale = max(expected.abs().max().item(), 1e-30)
    error = (got - expected).abs().max().item() / scale
    assert error <= 1e-10, f"{what}: relative error {error:.3g}"


@pytest.mark.parametrize("kind", ["min_gru", "min_lstm"])
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("last_only", [False, True], ids=["states", "last"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("biased", [True, False], ids=["bias", "no_bias"])
def test_matches_a_float64_loop_with_its_gradients(
    kind, chunking, last_only, masked, biased, monkeypatch
):
    monkeypatch.setattr(min_rnn, "_CHUNK_ELEMENTS", CHUNKINGS[chunking])
    x, h0, kernel, bias = _inputs(kind, biased)
    weights = [x, h0, kernel] + ([] if bias is None else [bias])
    mask = torch.tensor(MASK, dtype=torch.bool).T[:, :, None] if masked else None

    got = min_rnn.sequence_states(
        _cell_class(kind), x, h0, kernel, bias, mask, True, last_only
    )
    expected = _reference(kind, x, h0, kernel, bias, mask)
    if last_only:
        expected = expected[-1]
    assert got.shape == expected.shape
    _assert_close(got.detach(), expected.detach(), "states")

    cotangent = torch.randn(
        expected.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    got_grads = torch.autograd.grad((got * cotangent).sum(), weights)
    expected_grads = torch.autograd.grad((expected * cotangent).sum(), weights)
    for name, g, e in zip(["x", "h0", "kernel", "bias"], got_grads, expected_grads):
        _assert_close(g, e, f"d{name}")


@pytest.mark.parametrize("kind", ["min_gru", "min_lstm"])
def test_without_the_input_gradient_the_weights_still_get_theirs(kind, monkeypatch):
    monkeypatch.setattr(min_rnn, "_CHUNK_ELEMENTS", 3)
    x, h0, kernel, bias = _inputs(kind, True, seed=1)
    got = min_rnn.sequence_states(
        _cell_class(kind), x, h0, kernel, bias, None, False, False
    )
    expected = _reference(kind, x, h0, kernel, bias, None)
    got_grads = torch.autograd.grad(got.square().sum(), [x, h0, kernel, bias])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, h0, kernel, bias])
    assert not got_grads[0].any()  # left out, as the caller asked
    for name, g, e in zip(["h0", "kernel", "bias"], got_grads[1:], expected_grads[1:]):
        _assert_close(g, e, f"d{name}")


@pytest.mark.parametrize("kind", ["min_gru", "min_lstm"])
@pytest.mark.parametrize("last_only", [False, True], ids=["states", "last"])
def test_inference_runs_the_same_forward_pass(kind, last_only, monkeypatch):
    monkeypatch.setattr(min_rnn, "_CHUNK_ELEMENTS", 3)
    x, h0, kernel, bias = _inputs(kind, True, seed=2)
    mask = torch.tensor(MASK, dtype=torch.bool).T[:, :, None]
    with torch.no_grad():
        got = min_rnn.sequence_states(
            _cell_class(kind), x, h0, kernel, bias, mask, True, last_only
        )
        expected = _reference(kind, x, h0, kernel, bias, mask)
    assert got.grad_fn is None
    _assert_close(got, expected[-1] if last_only else expected, "states")


def test_it_steps_aside_where_a_graph_is_built_or_off_the_cpu():
    x = torch.ones(3, 2, 4)
    assert min_rnn.applies(x)
    assert not min_rnn.applies(torch.ones(3, 2, 4, device="meta"))
    assert not min_rnn.applies(torch.ones(0, 2, 4))
    assert not min_rnn.applies(torch.ones(3, 2, 4, dtype=torch.int32))
    seen = []

    def probe(v):
        seen.append(min_rnn.applies(v))
        return v.sum()

    torch.func.grad(probe)(x)
    assert seen == [False]


@pytest.mark.parametrize("kind", ["min_gru", "min_lstm"])
def test_a_subclass_of_a_cell_runs_its_own_coefficients(kind, monkeypatch):
    """A subclass may change the equations: it runs its `coefficients` and
    `coefficients_vjp` (Keras operations) on each chunk, not the kernels
    written for the two cells. This one keeps them, so the reference holds."""
    monkeypatch.setattr(min_rnn, "_CHUNK_ELEMENTS", 3)
    subclass = type("Subclass", (_cell_class(kind),), {})
    calls = []
    original = subclass.coefficients_vjp

    def vjp(k, da, db):
        calls.append(k.shape)
        return original(k, da, db)

    monkeypatch.setattr(subclass, "coefficients_vjp", staticmethod(vjp))
    x, h0, kernel, bias = _inputs(kind, True, seed=4)
    mask = torch.tensor(MASK, dtype=torch.bool).T[:, :, None]
    got = min_rnn.sequence_states(subclass, x, h0, kernel, bias, mask, True, False)
    expected = _reference(kind, x, h0, kernel, bias, mask)
    _assert_close(got.detach(), expected.detach(), "states")
    weights = [x, h0, kernel, bias]
    got_grads = torch.autograd.grad(got.square().sum(), weights)
    expected_grads = torch.autograd.grad(expected.square().sum(), weights)
    for name, g, e in zip(["x", "h0", "kernel", "bias"], got_grads, expected_grads):
        _assert_close(g, e, f"d{name}")
    assert len(calls) > 1  # one call per chunk


def _peak_bytes(run, steps=8000, batch=16, units=64):
    """The peak of the bytes PyTorch's CPU allocator holds, beyond what it
    held before, over a MinGRU training step through `run(x, h0, kernel,
    bias)` (the loss: the sum of what it returns, whose gradient PyTorch
    expands from a scalar, allocating nothing), counted by PyTorch's profiler from
    its allocation records; and the bytes of the states `(steps, batch,
    units)` float32."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(steps, batch, 8, generator=generator)
    h0 = torch.zeros(batch, units)
    kernel = (0.3 * torch.randn(8, 2 * units, generator=generator)).requires_grad_()
    bias = torch.zeros(2 * units, requires_grad=True)

    def step():
        run(x, h0, kernel, bias).sum().backward()

    peak = peak_allocated_bytes(step)
    return peak, steps * batch * units * 4


def test_a_training_step_on_the_last_state_holds_a_few_chunks():
    """The last state alone: one state per chunk is kept and the chunks'
    temporaries come and go (well under the states' size); all states: the
    states, plus a few chunks. Precondition: the whole-sequence form that
    runs elsewhere (`kerasrnn.fast.min_rnn` on another device) holds several
    times the states, so the measure tells them apart."""
    from kerasrnn.fast import min_rnn as whole_sequence

    def chunked(last_only):
        def run(x, h0, kernel, bias):
            return min_rnn.sequence_states(
                MinGRUCell, x, h0, kernel, bias, None, False, last_only
            )

        return run

    def unchunked(x, h0, kernel, bias):
        return whole_sequence._sequence_states(
            MinGRUCell, x, h0, kernel, bias, None, "sequential", False, last_only=True
        )

    last_peak, states = _peak_bytes(chunked(True))
    all_peak, _ = _peak_bytes(chunked(False))
    whole_peak, _ = _peak_bytes(unchunked)
    assert whole_peak > 3 * states
    assert last_peak < 0.4 * states
    assert states <= all_peak < 1.4 * states


@pytest.mark.parametrize("kind", ["min_gru", "min_lstm"])
@pytest.mark.parametrize(
    "dtype, tolerance",
    [("float16", 2e-3), ("bfloat16", 1.5e-2)],
    ids=["float16", "bfloat16"],
)
def test_half_precision_stays_close_to_float64(kind, dtype, tolerance, monkeypatch):
    """Mixed precision runs the layer in float16 or bfloat16: the states and
    gradients stay within a few units of the format's rounding, relative to
    the largest value (float16 has 11 significant bits, bfloat16 8; read
    here: float16 at most 8e-4, bfloat16 at most 6e-3 for the states and
    1.7e-2 for a gradient)."""
    monkeypatch.setattr(min_rnn, "_CHUNK_ELEMENTS", 3)
    x, h0, kernel, bias = _inputs(kind, True, seed=5)
    half = [
        t.detach().to(getattr(torch, dtype)).requires_grad_()
        for t in (x, h0, kernel, bias)
    ]
    mask = torch.tensor(MASK, dtype=torch.bool).T[:, :, None]
    got = min_rnn.sequence_states(_cell_class(kind), *half, mask, True, False)
    expected = _reference(kind, x, h0, kernel, bias, mask)
    assert got.dtype == getattr(torch, dtype)
    scale = expected.abs().max().item()
    assert (got.double() - expected).abs().max().item() <= tolerance * scale
    got_grads = torch.autograd.grad(got.float().square().sum(), half)
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, h0, kernel, bias])
    for name, g, e in zip(["x", "h0", "kernel", "bias"], got_grads, expected_grads):
        error = (g.double() - e).abs().max().item() / e.abs().max().item()
        assert error <= 2.5 * tolerance, f"d{name}: relative error {error:.3g}"
