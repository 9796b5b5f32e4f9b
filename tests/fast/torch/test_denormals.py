"""`kerasrnn.fast.torch.denormals.flush_denormals` on PyTorch's CPU threads.

Two checks of its effect, each independent of how it sets the flags:
- every thread of PyTorch's OpenMP pool, probed through the runtime's
  `GOMP_parallel` (found here in PyTorch's own folder), multiplies the
  subnormal 1e-39 by 1 to exactly 0 after the call, and to 1e-39 before
  it and after `flush_denormals(False)`;
- the input gradient of kerasrnn's LSTM on PyTorch's fused kernel, whose
  BPTT gradient decays through float32's subnormal range (forget gates near
  0.12), holds subnormal numbers without the flags and none with them, and
  every gradient agrees with the unflushed one within 1e-37 (flushing
  changes only values below 1.2e-38).
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

    from kerasrnn.fast.torch.denormals import flush_denormals

TINY = np.finfo(np.float32).tiny
SUBNORMAL = 1e-39
PROBE_THREADS = 2


@pytest.fixture
def restored():
    """PyTorch's default afterwards: subnormals computed, the pool's size kept."""
    threads = torch.get_num_threads()
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
    return products


def test_every_thread_of_the_pool_flushes_and_clears(restored):
    torch.set_num_threads(PROBE_THREADS)
    products_per_thread()  # the pool's threads exist before the flags are set
    before = products_per_thread()
    assert len(before) == PROBE_THREADS
    assert all(product != 0 for product in before.values()), before
    assert flush_denormals() == PROBE_THREADS
    flushed = products_per_thread()
    assert flushed.keys() == before.keys(), "the probe ran on other threads"
    assert all(product == 0 for product in flushed.values()), flushed
    assert flush_denormals(False) == PROBE_THREADS
    assert all(product != 0 for product in products_per_thread().values())


def lstm_gradients(timesteps=96, batch=16, features=8, units=32):
    """Gradients of `sum(h_T ** 2)` through kerasrnn's LSTM on PyTorch's fused
    kernel, with forget gates near sigmoid(-2) = 0.12 so that the gradient
    decays through the subnormal range within the sequence."""
    keras.utils.set_random_seed(0)
    layer = kerasrnn.LSTM(units)
    layer.build((batch, timesteps, features))
    bias = np.zeros(4 * units, "float32")
    bias[units : 2 * units] = -2.0
    layer.cell.bias.assign(bias)
    x = np.random.default_rng(0).normal(size=(batch, timesteps, features))
    x = torch.tensor(x.astype("float32"), requires_grad=True)
    layer(x).square().sum().backward()
    assert layer.last_path == "fast", layer.last_path_reason
    return [x.grad.numpy()] + [v.value.grad.numpy() for v in layer.trainable_variables]


def subnormal_count(array):
    return int(np.sum((array != 0) & (np.abs(array) < TINY)))


def test_the_fused_lstm_gradient_holds_no_subnormal_numbers_when_flushed(restored):
    plain = lstm_gradients()
    assert subnormal_count(plain[0]) > 0, "the test's gradient never became subnormal"
    flush_denormals()
    flushed = lstm_gradients()
    assert [subnormal_count(g) for g in flushed] == [0] * len(flushed)
    for a, b in zip(flushed, plain):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-37)
    flush_denormals(False)
    assert subnormal_count(lstm_gradients()[0]) == subnormal_count(plain[0])


@pytest.mark.parametrize("enabled", [1, "yes", None])
def test_enabled_must_be_a_bool(enabled):
    with pytest.raises(ValueError, match="enabled"):
        flush_denormals(enabled)
