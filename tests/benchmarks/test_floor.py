"""The matmul floor (`benchmarks/bench/floor.py`) computes the products it
claims, checked against NumPy on this test's backend, and refuses a layer
without a dense recurrent product. No timing is asserted."""

import keras
import numpy as np
import pytest

from benchmarks.bench import configs, timing
from benchmarks.bench.floor import GATES, FloorBench


def numpy_floor(x, kernel, recurrent, hs, dzs, timesteps, units):
    """`(inference value, training value)` of the floor, step by step."""
    batch, _, features = x.shape
    width = recurrent.shape[1]
    z = np.tile(x[:, 0, :1], (1, width))
    for _ in range(timesteps):
        z = z[:, :units] @ recurrent
    infer = z[0, 0]
    dz = z
    for _ in range(timesteps):
        dz = np.tile(dz @ recurrent.T, (1, width // units))
    xs = np.swapaxes(x, 0, 1).reshape(timesteps * batch, features)
    train = dz[0, 0] + (hs.T @ dzs).sum() + (xs.T @ dzs).sum()
    return infer, train


@pytest.mark.parametrize("kind", sorted(GATES))
def test_the_floor_runs_every_step_of_the_products_it_claims(kind):
    """Inference: `T` products `(batch, units) @ (units, gates * units)`;
    training: those, `T` products back through time, and the weight
    gradients over all steps. A floor that skipped a step
    or shrank a product would compute another value (relative 1e-4,
    float32 sums)."""
    args = configs.parse_args(["--quick", "--features", "5", "--batch", "3"])
    shape = timesteps, units = (7, 4)
    x, y = timing.make_data(shape, args)
    _, path = timing.build("matmul-floor", configs.kind_of(kind), shape, args, x, y)
    assert path() == "matmuls only"
    # Weights of scale 1 (the timed floor's are 0.05) keep the recurrence's
    # value far from 0, so that a missing step changes it.
    bench = FloorBench(configs.kind_of(kind), shape, x, scale=1.0)
    kernel, recurrent = (
        keras.ops.convert_to_numpy(bench.weights[k]).astype("float64")
        for k in ("kernel", "recurrent")
    )
    assert recurrent.shape == (units, GATES[kind] * units)
    hs, dzs = (
        keras.ops.convert_to_numpy(bench.gradient_rows[k]).astype("float64")
        for k in ("hs", "dzs")
    )
    infer, train = numpy_floor(
        x.astype("float64"), kernel, recurrent, hs, dzs, timesteps, units
    )
    got_infer = float(keras.ops.convert_to_numpy(bench.infer_value()))
    got_train = float(keras.ops.convert_to_numpy(bench.train_value()))
    np.testing.assert_allclose(got_infer, infer, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_train, train, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(GATES))
def test_the_timed_floor_keeps_its_values_normal_over_long_sequences(kind):
    """The timed weights (orthogonal first block, zeros) keep both chains'
    norms: after 3000 steps each way no value has decayed into float32's
    subnormal range (which PyTorch computes with slowly) or overflowed."""
    args = configs.parse_args(["--quick", "--features", "5", "--batch", "3"])
    shape = (3000, 8)
    x, _ = timing.make_data(shape, args)
    bench = FloorBench(configs.kind_of(kind), shape, x)
    for value in (bench.infer_value(), bench.train_value()):
        value = float(keras.ops.convert_to_numpy(value))
        assert np.isfinite(value) and abs(value) > np.finfo(np.float32).tiny, value


@pytest.mark.parametrize("kind", ["min_gru", "min_lstm", "slstm"])
def test_a_layer_without_a_dense_recurrent_product_has_no_floor(kind):
    args = configs.parse_args(["--quick"])
    x, _ = timing.make_data((12, 16), args)
    with pytest.raises(ValueError, match="no dense recurrent product"):
        FloorBench(configs.kind_of(kind), (12, 16), x)
