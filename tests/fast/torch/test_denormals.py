"""Subnormal numbers on PyTorch's CPU threads (`kerasrnn.fast.torch.denormals`).

The checks of the effect are independent of how the flags are set:
- every thread of PyTorch's OpenMP pool, probed through the runtime's
  `GOMP_parallel` (found here in PyTorch's own folder, the body a Python
  callback), multiplies the subnormal 1e-39 by 1 to exactly 0 when it
  flushes, and to 1e-39 when it does not;
- the input gradient of an LSTM whose BPTT gradient decays through
  float32's subnormal range (forget gates near sigmoid(-2) = 0.12) holds
  subnormal numbers through the readable loop (no flushing) and none
  through the fused kernel, and the two agree within float32 rounding
  (1e-5 relative, and 1e-6 of the largest gradient absolute: the two loops
  round differently, and a relative error compounds along the decay).
"""

import ctypes
import glob
import os
import threading

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="PyTorch's threads are set on the torch backend"
)

if BACKEND == "torch":
    import torch

    from kerasrnn.fast.torch.denormals import (
        backward_flushed,
        flush_denormals,
        flushed,
    )

TINY = np.finfo(np.float32).tiny
SUBNORMAL = 1e-39
PROBE_THREADS = 2


@pytest.fixture
def restored():
    """PyTorch's default afterwards: subnormals computed, the pool's size kept."""
    threads = torch.get_num_threads()
    torch.set_num_threads(PROBE_THREADS)
    yield
    flush_denormals(False)
    torch.set_num_threads(threads)


def products_per_thread():
    """`{thread: 1e-39 * 1}` on each of `PROBE_THREADS` threads of the
    OpenMP pool that PyTorch's wheel bundles (the calling thread is one)."""
    libraries = glob.glob(
        os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*")
    )
    if not libraries:
        pytest.skip("this PyTorch build bundles no libgomp to probe its threads with")
    body_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    parallel = ctypes.CDLL(libraries[0]).GOMP_parallel
    parallel.argtypes = [body_type, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    products, lock = {}, threading.Lock()

    def body(_):
        product = float(torch.tensor([SUBNORMAL]).mul(1.0)[0])
        with lock:
            products[threading.get_ident()] = product

    parallel(body_type(body), None, PROBE_THREADS, 0)
    assert len(products) == PROBE_THREADS
    return products


def every_thread_flushes():
    """True if all probed threads flush, False if none does (else fails)."""
    flushing = {product == 0 for product in products_per_thread().values()}
    assert len(flushing) == 1, "some threads flush and some do not"
    return flushing.pop()


def test_flush_denormals_sets_and_clears_every_thread_of_the_pool(restored):
    products_per_thread()  # the pool's threads exist before the flags are set
    assert not every_thread_flushes()
    assert flush_denormals() == PROBE_THREADS
    assert every_thread_flushes()
    assert flush_denormals(False) == PROBE_THREADS
    assert not every_thread_flushes()


def test_flushed_sets_every_thread_for_the_block_only(restored):
    products_per_thread()
    with flushed():
        assert every_thread_flushes()
    assert not every_thread_flushes()
    # A process that flushes already keeps flushing after the block.
    flush_denormals()
    with flushed():
        assert every_thread_flushes()
    assert every_thread_flushes()


def test_flushed_puts_the_setting_back_when_the_block_raises(restored):
    with pytest.raises(RuntimeError, match="inside"):
        with flushed():
            raise RuntimeError("inside")
    assert not every_thread_flushes()


def decaying_lstm(fast_path, timesteps=96, batch=16, features=8, units=32):
    """An LSTM whose forget gates are near 0.12, so that the gradient of
    `sum(h_T ** 2)` decays through the subnormal range within the sequence,
    and the input that the gradient is taken for."""
    keras.utils.set_random_seed(0)
    layer = kerasrnn.LSTM(units, fast_path=fast_path)
    layer.build((batch, timesteps, features))
    bias = np.zeros(4 * units, "float32")
    bias[units : 2 * units] = -2.0
    layer.cell.bias.assign(bias)
    x = np.random.default_rng(0).normal(size=(batch, timesteps, features))
    return layer, torch.tensor(x.astype("float32"), requires_grad=True)


def lstm_gradients(fast_path):
    layer, x = decaying_lstm(fast_path)
    layer(x).square().sum().backward()
    assert layer.last_path == ("fast" if fast_path else "readable")
    return [x.grad.numpy()] + [v.value.grad.numpy() for v in layer.trainable_variables]


def subnormal_count(array):
    return int(np.sum((array != 0) & (np.abs(array) < TINY)))


def test_the_fused_kernel_flushes_in_its_backward_pass_only(restored):
    readable = lstm_gradients(fast_path=False)
    assert subnormal_count(readable[0]) > 0, "the gradient never became subnormal"
    fused = lstm_gradients(fast_path=True)
    assert [subnormal_count(g) for g in fused] == [0] * len(fused)
    for a, b in zip(fused, readable):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())
    # PyTorch's setting is back after the backward pass, on every thread.
    assert not every_thread_flushes()


def test_a_process_that_flushes_keeps_flushing_after_the_backward_pass(restored):
    flush_denormals()
    fused = lstm_gradients(fast_path=True)
    assert subnormal_count(fused[0]) == 0
    assert every_thread_flushes()


def test_the_setting_is_put_back_when_the_pass_stops_before_the_inputs(restored):
    # Autograd runs only what the gradient of `middle` needs: the region is
    # entered at the kernel's outputs, and never left at its inputs.
    weight = torch.ones(3, requires_grad=True)
    inside = []

    def kernel(w):
        inside.append(w * 2.0)
        return (inside[0] * 3.0,)

    (out,) = backward_flushed([weight], kernel)
    (grad,) = torch.autograd.grad(out.sum(), inside)
    np.testing.assert_array_equal(grad.numpy(), [3.0, 3.0, 3.0])
    assert not every_thread_flushes()


def test_a_pass_that_raises_has_its_setting_put_back_at_the_next_call(restored):
    class Raises(torch.autograd.Function):
        @staticmethod
        def forward(ctx, w):
            return w * 2.0

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError("a backward pass that fails")

    weight = torch.ones(3, requires_grad=True)
    (out,) = backward_flushed([weight], lambda w: (Raises.apply(w),))
    with pytest.raises(RuntimeError, match="fails"):
        out.sum().backward()
    # Neither the kernel's input gradients nor the end of the pass ran.
    assert every_thread_flushes()
    backward_flushed([weight], lambda w: (w * 2.0,))
    assert not every_thread_flushes()


def test_no_region_without_gradients(restored):
    weight = torch.ones(3)
    (out,) = backward_flushed([weight], lambda w: (w * 2.0,))
    assert out.grad_fn is None
    with torch.no_grad():
        (out,) = backward_flushed([weight.requires_grad_()], lambda w: (w * 2.0,))
    assert out.grad_fn is None


def test_inputs_without_gradient_stay_without_one(restored):
    x, w = torch.ones(3), torch.ones(3, requires_grad=True)
    seen = []

    def kernel(x, w):
        seen.append(x.requires_grad)
        return (x * w,)

    (out,) = backward_flushed([x, w], kernel)
    assert seen == [False]
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0, 1.0])


def test_torch_func_transforms_take_the_kernel_as_it_is(restored):
    def loss(w):
        (out,) = backward_flushed([w], lambda w: (w * w,))
        return out.sum()

    weight = torch.tensor([1.0, 2.0, 3.0])
    grad = torch.func.grad(loss)(weight)
    np.testing.assert_array_equal(grad.numpy(), [2.0, 4.0, 6.0])
    batched = torch.func.vmap(torch.func.grad(loss))(torch.stack([weight, -weight]))
    np.testing.assert_array_equal(batched.numpy(), [[2, 4, 6], [-2, -4, -6]])


@pytest.mark.parametrize("enabled", [1, "yes", None])
def test_enabled_must_be_a_bool(enabled):
    with pytest.raises(ValueError, match="enabled"):
        flush_denormals(enabled)
