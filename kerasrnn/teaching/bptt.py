"""Backpropagation through time by hand: a vanilla RNN in NumPy.

The model reads a sequence `x_1 .. x_T` and predicts one vector at the end:

    a_t = W_xh x_t + W_hh h_{t-1} + b_h
    h_t = tanh(a_t),                      h_0 = 0 (or given)
    y   = W_hy h_T + b_y
    L   = mean((y - target)**2)           # over the batch and the outputs

Shapes (math convention, column vectors): `W_xh` is `(units, input_dim)`,
`W_hh` `(units, units)`, `b_h` `(units,)`, `W_hy` `(output_dim, units)`,
`b_y` `(output_dim,)`. The code works on a batch of row vectors, so
`W_xh x_t` is written `x_t @ W_xh.T`. In Keras's (and kerasrnn's) fused
layout the same weights are `kernel = W_xh.T`, `recurrent_kernel = W_hh.T`,
`bias = b_h`, and for the `Dense` readout `kernel = W_hy.T`, `bias = b_y`
(`to_keras_weights` / `from_keras_weights`).

Backpropagation through time is the chain rule run backwards over the
unrolled loop. The gradient reaching `h_t` from the loss is the gradient at
`h_T` multiplied by one Jacobian per step,

    dh_T/dh_t = prod_{k=t+1..T} dh_k/dh_{k-1},    dh_k/dh_{k-1} = diag(1 - h_k**2) W_hh,

so its size behaves like a power of `W_hh`: it shrinks geometrically when
the spectral radius of `W_hh` is below 1 (and tanh's slope, at most 1, only
shrinks it further) and can grow geometrically above 1 (Pascanu, Mikolov &
Bengio 2013). `jacobian_norms` measures exactly this product.

Reference:
    Werbos, "Backpropagation Through Time: What It Does and How to Do It",
    Proc. IEEE 78(10), 1990. Pascanu, Mikolov & Bengio, "On the difficulty
    of training recurrent neural networks", ICML 2013.
"""

import numbers

import numpy as np

from kerasrnn._utils.validation import check_positive_int, is_integer

__all__ = [
    "PARAMETER_NAMES",
    "backward",
    "clip_by_global_norm",
    "forward",
    "from_keras_weights",
    "global_norm",
    "init_params",
    "jacobian_norm_curves",
    "jacobian_norms",
    "kerasrnn_gradients",
    "loss_and_gradients",
    "mse_loss",
    "numerical_gradients",
    "recurrent_matrix",
    "relative_error",
    "to_keras_weights",
    "train_sgd",
]

PARAMETER_NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


def _check_params(params):
    missing = [name for name in PARAMETER_NAMES if name not in params]
    if missing:
        raise ValueError(
            f"params must hold {PARAMETER_NAMES}. Received: params with keys "
            f"{sorted(params)} (missing {missing})"
        )
    units = params["W_hh"].shape[0]
    expected = {
        "W_hh": (units, units),
        "b_h": (units,),
        "W_xh": (units, params["W_xh"].shape[-1]),
        "W_hy": (params["W_hy"].shape[0], units),
        "b_y": (params["W_hy"].shape[0],),
    }
    for name, shape in expected.items():
        if params[name].shape != shape:
            raise ValueError(
                f"params['{name}'] must have shape {shape}. Received: "
                f"params['{name}'].shape={params[name].shape}"
            )


def _check_inputs(params, x):
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != params["W_xh"].shape[1]:
        raise ValueError(
            "x must have shape (batch, timesteps, "
            f"{params['W_xh'].shape[1]}). Received: x.shape={x.shape}"
        )
    return x


def recurrent_matrix(units, spectral_radius, seed=None, kind="gaussian"):
    """A random `(units, units)` recurrent matrix with a chosen spectral radius.

    Args:
        units: Positive integer, the size of the hidden state.
        spectral_radius: Non-negative float, the largest absolute eigenvalue
            of the result.
        seed: Integer seed or `None`. Default: `None`.
        kind: `"gaussian"` (entries drawn from N(0, 1/units), then rescaled)
            or `"orthogonal"` (a random rotation times `spectral_radius`, for
            which `||W^k||_2 = spectral_radius**k` exactly).
            Default: `"gaussian"`.

    Returns:
        A float64 NumPy array.
    """
    units = check_positive_int("units", units)
    if (
        isinstance(spectral_radius, bool)
        or not isinstance(spectral_radius, numbers.Real)
        or spectral_radius < 0
    ):
        raise ValueError(
            "spectral_radius must be a non-negative number. Received: "
            f"spectral_radius={spectral_radius!r}"
        )
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 1.0 / np.sqrt(units), size=(units, units))
    if kind == "orthogonal":
        q, r = np.linalg.qr(matrix)
        matrix = q * np.sign(np.diag(r))
    elif kind != "gaussian":
        raise ValueError(
            f"kind must be 'gaussian' or 'orthogonal'. Received: kind={kind!r}"
        )
    radius = np.max(np.abs(np.linalg.eigvals(matrix)))
    return matrix * (spectral_radius / radius)


def init_params(
    input_dim, units, output_dim, seed=None, spectral_radius=None, input_scale=1.0
):
    """Random parameters of the NumPy RNN, in float64.

    `W_xh` and `W_hy` are Glorot-uniform, biases zero, and `W_hh` random
    orthogonal (as Keras initialises `recurrent_kernel`) or, when
    `spectral_radius` is given, a Gaussian matrix rescaled to it.

    Args:
        input_dim: Positive integer, features per step.
        units: Positive integer, size of the hidden state.
        output_dim: Positive integer, size of the prediction.
        seed: Integer seed or `None`. Default: `None`.
        spectral_radius: If set, the spectral radius of `W_hh`.
            Default: `None` (orthogonal, radius 1).
        input_scale: Multiplies `W_xh`. Default: 1.0.

    Returns:
        A dict with keys `PARAMETER_NAMES`.
    """
    input_dim = check_positive_int("input_dim", input_dim)
    units = check_positive_int("units", units)
    output_dim = check_positive_int("output_dim", output_dim)
    rng = np.random.default_rng(seed)

    def glorot(fan_out, fan_in):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_out, fan_in))

    W_xh = input_scale * glorot(units, input_dim)
    recurrent_seed = int(rng.integers(2**31))
    if spectral_radius is None:
        W_hh = recurrent_matrix(units, 1.0, recurrent_seed, kind="orthogonal")
    else:
        W_hh = recurrent_matrix(units, spectral_radius, recurrent_seed)
    return {
        "W_xh": W_xh,
        "W_hh": W_hh,
        "b_h": np.zeros(units),
        "W_hy": glorot(output_dim, units),
        "b_y": np.zeros(output_dim),
    }


def forward(params, x, h0=None):
    """Runs the RNN over `x` and predicts from the last hidden state.

    Args:
        params: Dict of the weights (`PARAMETER_NAMES`).
        x: Inputs, `(batch, timesteps, input_dim)`.
        h0: Initial hidden state `(batch, units)`. Default: zeros.

    Returns:
        `(y, h)`: the prediction `(batch, output_dim)` and every hidden
        state, `h[:, t]` = `h_t` for `t = 0..T`, shape `(batch, T + 1, units)`
        (kept for the backward pass).
    """
    _check_params(params)
    x = _check_inputs(params, x)
    W_xh, W_hh, b_h = params["W_xh"], params["W_hh"], params["b_h"]
    batch, steps, _ = x.shape
    units = W_hh.shape[0]
    h = np.zeros((batch, steps + 1, units), dtype=np.result_type(x, W_hh))
    if h0 is not None:
        h[:, 0] = h0
    for t in range(steps):
        a_t = x[:, t] @ W_xh.T + h[:, t] @ W_hh.T + b_h
        h[:, t + 1] = np.tanh(a_t)
    y = h[:, steps] @ params["W_hy"].T + params["b_y"]
    return y, h


def mse_loss(y, target):
    """Mean squared error and its gradient with respect to `y`."""
    diff = y - target
    loss = np.mean(diff**2)
    # d mean(diff**2) / d y = 2 * diff / (number of entries)
    dy = 2.0 * diff / diff.size
    return loss, dy


def backward(params, x, h, dy):
    """Backpropagation through time, by hand.

    Args:
        params: The weights used in `forward`.
        x: The inputs given to `forward`.
        h: The hidden states returned by `forward`.
        dy: dL/dy, the loss gradient at the prediction, `(batch, output_dim)`.

    Returns:
        `(grads, dh0)`: a dict of dL/dparam with the keys and shapes of
        `params`, and dL/dh_0, `(batch, units)`.
    """
    x = _check_inputs(params, x)
    W_hh, W_hy = params["W_hh"], params["W_hy"]
    steps = x.shape[1]
    grads = {name: np.zeros_like(params[name]) for name in PARAMETER_NAMES}

    # readout y = h_T W_hy^T + b_y: dL/dW_hy = dy^T h_T, dL/db_y = sum of dy
    grads["W_hy"] = dy.T @ h[:, steps]
    grads["b_y"] = dy.sum(axis=0)
    # the only path from the loss to h_T is through the readout
    dh = dy @ W_hy
    for t in reversed(range(steps)):
        h_t, h_tm1 = h[:, t + 1], h[:, t]
        # backprop through tanh: dh_t/da_t = 1 - h_t**2
        da = dh * (1.0 - h_t**2)
        # a_t = x_t W_xh^T + h_{t-1} W_hh^T + b_h: each weight is used at
        # every step, so its gradient is the sum over steps
        grads["W_xh"] += da.T @ x[:, t]
        grads["W_hh"] += da.T @ h_tm1
        grads["b_h"] += da.sum(axis=0)
        # one step back in time: dL/dh_{t-1} = dL/da_t W_hh, i.e. the gradient
        # is multiplied by the Jacobian diag(1 - h_t**2) W_hh once per step
        dh = da @ W_hh
    return grads, dh


def loss_and_gradients(params, x, target, h0=None):
    """The MSE loss of `forward` and its gradients from `backward`."""
    y, h = forward(params, x, h0)
    loss, dy = mse_loss(y, target)
    grads, _ = backward(params, x, h, dy)
    return loss, grads


def numerical_gradients(params, x, target, eps=1e-6):
    """Central finite differences of the loss, one parameter entry at a time.

    `(L(p + eps) - L(p - eps)) / (2 eps)` has an error of order `eps**2`
    (plus rounding of order `1e-16 / eps`); use float64 parameters. Each
    entry of `params` is nudged in place and restored.

    Returns:
        A dict of arrays with the shapes of `params`.
    """
    grads = {}
    for name in PARAMETER_NAMES:
        value = params[name]
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + eps
            loss_plus = mse_loss(forward(params, x)[0], target)[0]
            value[index] = saved - eps
            loss_minus = mse_loss(forward(params, x)[0], target)[0]
            value[index] = saved
            grad[index] = (loss_plus - loss_minus) / (2.0 * eps)
        grads[name] = grad
    return grads


def relative_error(a, b):
    """`||a - b|| / max(||a||, ||b||)` over all entries (0 when both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(a - b) / scale)


def jacobian_norms(W_hh, h=None):
    """Spectral norms `||dh_T / dh_t||_2` for `t = 0..T` along one trajectory.

    The Jacobian of one step is `dh_k/dh_{k-1} = diag(1 - h_k**2) W_hh`; the
    product over `k = t+1..T` is what backpropagation multiplies the
    gradient at `h_T` by on its way back to `h_t`.

    Args:
        W_hh: The recurrent matrix `(units, units)`.
        h: Hidden states `h_0..h_T` of one sequence, `(T + 1, units)`, as
            returned by `forward` (`h[0]`). With an int `T` instead, the RNN
            is taken to be linear (`h_t = W_hh h_{t-1} + ...`, slope 1), so
            the product is `W_hh**(T - t)`.

    Returns:
        A float64 array `norms` of length `T + 1` with `norms[T] = 1`.
    """
    W_hh = np.asarray(W_hh, dtype=np.float64)
    if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1]:
        raise ValueError(f"W_hh must be square. Received: W_hh.shape={W_hh.shape}")
    units = W_hh.shape[0]
    if is_integer(h):
        steps = check_positive_int("h", h)
        slopes = np.ones((steps + 1, units))
    else:
        h = np.asarray(h, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != units or h.shape[0] < 2:
            raise ValueError(
                f"h must have shape (T + 1, {units}) with T >= 1, or be an int T. "
                f"Received: h.shape={h.shape}"
            )
        steps = h.shape[0] - 1
        slopes = 1.0 - h**2
    norms = np.ones(steps + 1)
    product = np.eye(units)  # dh_T / dh_T
    for t in range(steps, 0, -1):
        # dh_T/dh_{t-1} = dh_T/dh_t diag(1 - h_t**2) W_hh
        product = (product * slopes[t]) @ W_hh
        norms[t - 1] = np.linalg.norm(product, 2)
    return norms


def global_norm(grads):
    """The L2 norm of all gradient entries together."""
    return float(np.sqrt(sum(np.sum(g**2) for g in grads.values())))


def clip_by_global_norm(grads, clipnorm):
    """Rescales all gradients together so that their global norm is at most
    `clipnorm` (Pascanu et al. 2013's clipping; the direction is kept).

    Returns:
        `(clipped_grads, norm_before_clipping)`.
    """
    norm = global_norm(grads)
    scale = 1.0 if clipnorm is None or norm <= clipnorm else clipnorm / norm
    return {name: g * scale for name, g in grads.items()}, norm


def to_keras_weights(params):
    """The weights for `kerasrnn.SimpleRNN` (`[kernel, recurrent_kernel,
    bias]`) and a `keras.layers.Dense` readout (`[kernel, bias]`)."""
    _check_params(params)
    rnn = [params["W_xh"].T, params["W_hh"].T, params["b_h"]]
    dense = [params["W_hy"].T, params["b_y"]]
    return rnn, dense


def from_keras_weights(rnn_weights, dense_weights):
    """The inverse of `to_keras_weights`."""
    kernel, recurrent_kernel, bias = rnn_weights
    dense_kernel, dense_bias = dense_weights
    return {
        "W_xh": np.asarray(kernel).T,
        "W_hh": np.asarray(recurrent_kernel).T,
        "b_h": np.asarray(bias),
        "W_hy": np.asarray(dense_kernel).T,
        "b_y": np.asarray(dense_bias),
    }


def kerasrnn_gradients(params, x, target, dtype="float64"):
    """The same loss and gradients from `kerasrnn.SimpleRNN` and the
    backend's automatic differentiation, for checking `backward`.

    Builds `kerasrnn.SimpleRNN(units)` and a `Dense(output_dim)` readout
    holding `params` (see `to_keras_weights`), computes
    `mean((y - target)**2)` and differentiates it with
    `tf.GradientTape` (TensorFlow), `jax.grad` (JAX) or `torch.autograd`
    (PyTorch).

    On JAX, float64 needs `jax_enable_x64`, which this function switches on
    for its own computation. Keras 3's `ops.tanh` and `ops.mean` return
    float32 for float64 input on JAX and PyTorch, so there the layer's
    activation is the backend's own `tanh` (the same function) and the loss
    uses the backend's `mean`.

    Args:
        params: NumPy RNN weights (`PARAMETER_NAMES`).
        x: Inputs `(batch, timesteps, input_dim)`.
        target: Targets `(batch, output_dim)`.
        dtype: Dtype of the Keras computation. Default: `"float64"`.

    Returns:
        `(loss, grads)` with NumPy values keyed like `params`.
    """
    import contextlib

    import keras

    from kerasrnn.layers.simple_rnn import SimpleRNN

    _check_params(params)
    x = _check_inputs(params, x)
    backend = keras.backend.backend()
    # Keras 3 computes ops.tanh and ops.mean in float32 for float64 input on
    # JAX and PyTorch, so those backends get their own (identical) functions.
    activation, mean = "tanh", keras.ops.mean
    context = contextlib.nullcontext()
    if backend == "jax":
        import jax

        activation, mean = jax.numpy.tanh, jax.numpy.mean
        if dtype == "float64":
            context = jax.enable_x64(True)
    elif backend == "torch":
        import torch

        activation, mean = torch.tanh, torch.mean

    with context:
        units, output_dim = params["W_hh"].shape[0], params["W_hy"].shape[0]
        rnn = SimpleRNN(units, activation=activation, dtype=dtype)
        dense = keras.layers.Dense(output_dim, dtype=dtype)
        rnn.build(x.shape)
        dense.build((None, units))
        rnn_weights, dense_weights = to_keras_weights(params)
        rnn.set_weights(rnn_weights)
        dense.set_weights(dense_weights)
        variables = [*rnn.trainable_variables, *dense.trainable_variables]
        x_in = keras.ops.convert_to_tensor(x, dtype=dtype)
        target_in = keras.ops.convert_to_tensor(target, dtype=dtype)

        def loss_of(outputs):
            return mean((outputs - target_in) ** 2)

        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = loss_of(dense(rnn(x_in)))
            values = tape.gradient(loss, [v.value for v in variables])
        elif backend == "jax":
            import jax

            rnn_state = [v.value for v in rnn.non_trainable_variables]
            dense_state = [v.value for v in dense.non_trainable_variables]

            def pure_loss(rnn_values, dense_values):
                hidden, _ = rnn.stateless_call(rnn_values, rnn_state, x_in)
                outputs, _ = dense.stateless_call(dense_values, dense_state, hidden)
                return loss_of(outputs)

            rnn_values = [v.value for v in rnn.trainable_variables]
            dense_values = [v.value for v in dense.trainable_variables]
            loss, (rnn_grads, dense_grads) = jax.value_and_grad(
                pure_loss, argnums=(0, 1)
            )(rnn_values, dense_values)
            values = [*rnn_grads, *dense_grads]
        elif backend == "torch":
            loss = loss_of(dense(rnn(x_in)))
            loss.backward()
            values = [v.value.grad for v in variables]
        else:  # pragma: no cover - numpy/openvino backends have no autodiff
            raise ValueError(
                "kerasrnn_gradients needs a backend with automatic "
                f"differentiation. Received: backend={backend!r}"
            )
        numpy_values = [keras.ops.convert_to_numpy(v) for v in values]
        loss = float(keras.ops.convert_to_numpy(loss))
    grads = from_keras_weights(numpy_values[:3], numpy_values[3:])
    return loss, grads


def jacobian_norm_curves(
    spectral_radii, units=32, seq_len=100, num_sequences=8, seed=0
):
    """`||dh_T / dh_t||_2` against `t` for recurrent matrices of several
    spectral radii, for a linear RNN and for a tanh RNN on real inputs.

    Each `W_hh` is a random orthogonal matrix times the radius, so the
    linear RNN's curve is exactly `radius**(T - t)`. The tanh RNN reads
    adding-problem sequences (`kerasrnn.teaching.tasks.adding_problem`) through a
    Glorot `W_xh`; its curve is the geometric mean over `num_sequences`
    sequences of the norms along each trajectory.

    Args:
        spectral_radii: Iterable of non-negative floats.
        units: Positive integer, hidden size. Default: 32.
        seq_len: Positive integer, `T`. Default: 100.
        num_sequences: Positive integer, sequences averaged for tanh.
            Default: 8.
        seed: Integer seed. Default: 0.

    Returns:
        A dict `{"t": array 0..T, "linear": {radius: norms}, "tanh":
        {radius: norms}}`.
    """
    from kerasrnn.teaching.tasks import adding_problem

    units = check_positive_int("units", units)
    seq_len = check_positive_int("seq_len", seq_len)
    num_sequences = check_positive_int("num_sequences", num_sequences)
    x, _ = adding_problem(num_sequences, max(seq_len, 2), seed=seed)
    x = x[:, :seq_len].astype(np.float64)
    curves = {"t": np.arange(seq_len + 1), "linear": {}, "tanh": {}}
    for radius in spectral_radii:
        params = init_params(2, units, 1, seed=seed)
        params["W_hh"] = recurrent_matrix(units, radius, seed=seed, kind="orthogonal")
        curves["linear"][radius] = jacobian_norms(params["W_hh"], seq_len)
        _, h = forward(params, x)
        logs = [np.log(jacobian_norms(params["W_hh"], h_n)) for h_n in h]
        curves["tanh"][radius] = np.exp(np.mean(logs, axis=0))
    return curves


def train_sgd(
    params,
    make_batch,
    steps,
    learning_rate,
    clipnorm=None,
    validation_data=None,
    log_every=10,
):
    """Plain stochastic gradient descent on the NumPy RNN.

    Args:
        params: Initial weights; a copy is trained.
        make_batch: Callable `step -> (x, target)` giving each step's batch.
        steps: Positive integer, the number of updates.
        learning_rate: Positive float.
        clipnorm: If set, clip the gradients to this global norm before each
            update (`clip_by_global_norm`). Default: `None`.
        validation_data: Optional `(x_val, target_val)`, scored every
            `log_every` steps. Default: `None`.
        log_every: Record the validation loss every this many steps.
            Default: 10.

    Returns:
        `(params, history)`: the trained weights and a dict of lists:
        `loss` and `grad_norm` (before clipping) at every step,
        `val_step` and `val_loss` every `log_every` steps, and `diverged_at`
        (the step whose loss or gradient first became non-finite, where
        training stops, or `None`).
    """
    steps = check_positive_int("steps", steps)
    log_every = check_positive_int("log_every", log_every)
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, numbers.Real)
        or learning_rate <= 0
    ):
        raise ValueError(
            "learning_rate must be a positive number. Received: "
            f"learning_rate={learning_rate!r}"
        )
    if clipnorm is not None and (
        isinstance(clipnorm, bool)
        or not isinstance(clipnorm, numbers.Real)
        or clipnorm <= 0
    ):
        raise ValueError(
            f"clipnorm must be a positive number or None. Received: clipnorm={clipnorm!r}"
        )
    params = {
        name: np.array(params[name], dtype=np.float64) for name in PARAMETER_NAMES
    }
    history = {
        "loss": [],
        "grad_norm": [],
        "val_step": [],
        "val_loss": [],
        "diverged_at": None,
    }
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(steps):
            if validation_data is not None and step % log_every == 0:
                y_val = forward(params, validation_data[0])[0]
                history["val_step"].append(step)
                history["val_loss"].append(
                    float(mse_loss(y_val, validation_data[1])[0])
                )
            x, target = make_batch(step)
            loss, grads = loss_and_gradients(params, x, target)
            grads, norm = clip_by_global_norm(grads, clipnorm)
            history["loss"].append(float(loss))
            history["grad_norm"].append(float(norm))
            if not (np.isfinite(loss) and np.isfinite(norm)):
                history["diverged_at"] = step
                break
            for name in PARAMETER_NAMES:
                params[name] -= learning_rate * grads[name]
        if validation_data is not None and history["diverged_at"] is None:
            y_val = forward(params, validation_data[0])[0]
            history["val_step"].append(steps)
            history["val_loss"].append(float(mse_loss(y_val, validation_data[1])[0]))
    return params, history
