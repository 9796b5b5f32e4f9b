"""The matmul floor: the matrix products a layer's step cannot avoid, timed
alone, in the same process as the layers.

A recurrent layer's step `t` needs `h_{t-1}`, so its recurrent product
`h_{t-1} @ U`, `(batch, units) @ (units, gates * units)`, runs `T` times
one after the other, however the rest is fused. Backpropagation through
time adds `dz_t @ U^T` per step, newest first, and the weight gradients,
which can be taken as one product over all steps each. This row runs
exactly those products, at the backend's own matmul speed, with no gate
arithmetic, no saved activations and no optimizer:

- inference: the `T` recurrent products in the backend's compiled loop;
- training: the same, `T` products `dz_t @ U^T` back through time, then
  `dU = H^T @ DZ` and `dW = X^T @ DZ` over all steps. No input gradient:
  the suite's layer is its model's first, so no row computes one.

The input projection `x_t @ W` is left out of the chain: it does not wait
for the previous step, so a kernel may take it anywhere (kerasrnn's JAX and
TensorFlow kernels fold it into the step's product as `[x_t, h_{t-1}] @
[[W], [U]]`). Both ways of timing it cost more here than its share of
the arithmetic: as one product over all steps before the loop, its `(T *
batch, gates * units)` result is a fresh buffer in every call (an LSTM's
floor at T=500 then read 1.01x Keras's inference, slower than kerasrnn's
kernel); folded into the step, the floor read 0.94x at 512 units against
0.75x without it.

Its time over the built-in's (the `× keras` column) is a lower bound on
the ratio a kernel could reach on that machine without faster matrix
products; a kernel's time over the floor's is what its input projection,
gates, memory traffic and loop cost. It is a floor, not a bound proven: a
kernel that changed the arithmetic (lower precision, a different
algorithm) could go under it.
"""

import numpy as np

from .timing import wait

# The width of a kind's recurrent product, in units: `(units, gates *
# units)`. The minimal cells have no recurrent product, and the sLSTM's is
# block-diagonal per head, so they have no floor row.
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def _compile(fn):
    """`fn` compiled as the backend compiles a step (`jax.jit`, a
    `tf.function`; torch runs eagerly, as Keras's torch steps do)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    return fn


class FloorBench:
    """`train()` and `infer()` of the matmul floor of `kind` (a
    `configs.Kind`) at `(timesteps, units)`, batch and features of `x`.

    With `scale=None` (timing) the recurrent matrix's first `units` columns
    are a random orthogonal matrix and the others zeros, so that both
    chains of products keep their norm over any number of steps: a chain
    that decays passes through float32's subnormal range, which PyTorch on
    a CPU computes with dozens of times slower (XLA flushes it to zero);
    at T=500 an LSTM's inference floor on torch read 262 ms with random
    weights of scale 0.05, against 13 ms at T=100. With a number, every
    weight is random with that standard deviation (the tests': a dense
    matrix, so that a product computed on fewer columns shows).

    Raises `ValueError` for a kind without a recurrent product (`GATES`).
    """

    def __init__(self, kind, shape, x, scale=None):
        if kind.name not in GATES:
            raise ValueError(
                f"{kind.kerasrnn} has no dense recurrent product, so no matmul floor"
            )
        import keras
        from keras import ops

        timesteps, units = shape
        batch, _, features = x.shape
        width = GATES[kind.name] * units
        rng = np.random.default_rng(0)

        std = 0.05 if scale is None else scale

        def tensor(*dims):
            return ops.convert_to_tensor(
                (std * rng.standard_normal(dims)).astype("float32")
            )

        kernel = tensor(features, width)
        if scale is None:
            orthogonal, _ = np.linalg.qr(rng.standard_normal((units, units)))
            blocks = np.zeros((units, width), "float32")
            blocks[:, :units] = orthogonal
            recurrent = ops.convert_to_tensor(blocks)
        else:
            recurrent = tensor(units, width)
        recurrent_t = ops.transpose(recurrent)
        steps_first = ops.transpose(ops.convert_to_tensor(x), (1, 0, 2))
        # What the weight gradients read: every step's input, state and
        # `dz`, as the rows of one product each.
        xs = ops.reshape(steps_first, (timesteps * batch, features))
        hs, dzs = tensor(batch * timesteps, units), tensor(batch * timesteps, width)

        def forward(steps_first):
            # The carry is the whole product, so no slice of it can let the
            # compiler shrink the matmul; it starts from the first step's
            # inputs, so that it is not zero.
            start = ops.tile(ops.take(steps_first, 0, axis=0)[:, :1], (1, width))
            return ops.fori_loop(
                0, timesteps, lambda t, z: ops.matmul(z[:, :units], recurrent), start
            )

        def backward(dz):
            # The copy into `gates` blocks stands for the gate derivatives
            # that turn `dh_{t-1}` into `dz_{t-1}`; it is the loop's only
            # work besides the product.
            repeat = width // units
            return ops.fori_loop(
                0,
                timesteps,
                lambda t, dz: ops.tile(ops.matmul(dz, recurrent_t), (1, repeat)),
                dz,
            )

        def train(steps_first):
            dz = backward(forward(steps_first))
            d_recurrent = ops.matmul(ops.transpose(hs), dzs)
            d_kernel = ops.matmul(ops.transpose(xs), dzs)
            # Whole sums: a compiler may shrink a product read at one entry.
            return dz[0, 0] + ops.sum(d_recurrent) + ops.sum(d_kernel)

        def infer(steps_first):
            return forward(steps_first)[0, 0]

        self.weights = {"kernel": kernel, "recurrent": recurrent}
        self.gradient_rows = {"hs": hs, "dzs": dzs}
        self.backend = keras.backend.backend()
        self._train, self._infer = _compile(train), _compile(infer)
        self._xs = steps_first

    def train_value(self):
        """The scalar the training floor returns (what it computed reads it)."""
        return self._run(self._train)

    def infer_value(self):
        """The scalar the inference floor returns."""
        return self._run(self._infer)

    def train(self):
        self.train_value()

    def infer(self):
        self.infer_value()

    def _run(self, fn):
        if self.backend == "torch":
            import torch

            with torch.no_grad():
                value = fn(self._xs)
        else:
            value = fn(self._xs)
        wait(value, self.backend)
        return value
