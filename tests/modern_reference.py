"""Plain NumPy (float64) references for the recurrent cells that came after
the lecture, written from the papers' equations, not from kerasrnn's code:

- minGRU and minLSTM, Feng et al. 2024 ("Were RNNs All We Needed?",
  arXiv:2410.01201), log-space form: `g(x) = x + 0.5` for `x >= 0`,
  `sigmoid(x)` below;
- sLSTM, Beck et al. 2024 ("xLSTM", arXiv:2405.04517), eqs. (8)-(17):
  exponential input gate, normaliser state, stabiliser state.

Each `*_step(x_t, states, weights, config)` takes one step for a batch and
returns `(h_t, new_states)`. `run` drives a step over a sequence with the
semantics of `keras.layers.RNN`, and `finite_difference_gradients`
differentiates any function of these arrays numerically.
"""

import numpy as np


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def g(x):
    return np.where(x >= 0, x + 0.5, sigmoid(x))


def _blocks(weights, x_t, count):
    z = x_t @ weights["kernel"]
    if "bias" in weights:
        z = z + weights["bias"]
    return np.split(z, count, axis=-1)


def min_gru_step(x_t, states, weights, config=None):
    (h_tm1,) = states
    k_z, k_h = _blocks(weights, x_t, 2)
    z = sigmoid(k_z)
    h = (1.0 - z) * h_tm1 + z * g(k_h)
    return h, [h]


def min_lstm_step(x_t, states, weights, config=None):
    (h_tm1,) = states
    k_i, k_f, k_h = _blocks(weights, x_t, 3)
    i, f = sigmoid(k_i), sigmoid(k_f)
    f_prime, i_prime = f / (f + i), i / (f + i)
    h = f_prime * h_tm1 + i_prime * g(k_h)
    return h, [h]


def slstm_recurrent(h_tm1, recurrent_kernel, num_heads):
    """`h_tm1 @ R` with `R` block-diagonal per head, assembled densely."""
    if num_heads == 1:
        return h_tm1 @ recurrent_kernel
    heads, d, four_d = recurrent_kernel.shape
    units = heads * d
    dense = np.zeros((units, 4 * units))
    for k in range(heads):
        for gate in range(4):
            dense[
                k * d : (k + 1) * d, gate * units + k * d : gate * units + (k + 1) * d
            ] = recurrent_kernel[k][:, gate * d : (gate + 1) * d]
    return h_tm1 @ dense


def slstm_step(x_t, states, weights, config):
    h_tm1, c_tm1, n_tm1, m_tm1 = states
    pre = x_t @ weights["kernel"] + slstm_recurrent(
        h_tm1, weights["recurrent_kernel"], config.get("num_heads", 1)
    )
    if "bias" in weights:
        pre = pre + weights["bias"]
    i_t, f_t, z_t, o_t = np.split(pre, 4, axis=-1)
    log_f = (
        log_sigmoid(f_t) if config.get("forget_gate", "sigmoid") == "sigmoid" else f_t
    )
    m = np.maximum(log_f + m_tm1, i_t)
    i_prime = np.exp(i_t - m)
    f_prime = np.exp(log_f + m_tm1 - m)
    c = f_prime * c_tm1 + i_prime * np.tanh(z_t)
    n = f_prime * n_tm1 + i_prime
    h = sigmoid(o_t) * c / n
    return h, [h, c, n, m]


STEPS = {"min_gru": min_gru_step, "min_lstm": min_lstm_step, "slstm": slstm_step}
STATE_COUNTS = {"min_gru": 1, "min_lstm": 1, "slstm": 4}


def run(
    kind,
    weights,
    x,
    units,
    config=None,
    initial_state=None,
    mask=None,
    go_backwards=False,
    masked_output_start="zeros",
    zero_output_for_mask=False,
):
    """Runs cell `kind` over `x` `(batch, timesteps, features)` in float64.

    Masked steps keep the previous states; their output is zeros with
    `zero_output_for_mask`, else the previous output, which starts as zeros
    (`masked_output_start="zeros"`: TensorFlow, PyTorch) or as the initial
    hidden state (`"state"`: JAX's scan loop). With `go_backwards` the
    sequence is read from the end and the outputs come in that order.

    Returns `(outputs, final_states)`, `outputs` `(batch, timesteps, units)`
    in the order the steps were taken.
    """
    step = STEPS[kind]
    config = config or {}
    x = np.asarray(x, np.float64)
    weights = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    batch, timesteps = x.shape[:2]
    if initial_state is None:
        states = [np.zeros((batch, units)) for _ in range(STATE_COUNTS[kind])]
    else:
        states = [np.asarray(s, np.float64) for s in initial_state]
    output = states[0] if masked_output_start == "state" else np.zeros((batch, units))
    outputs = []
    for t in range(timesteps - 1, -1, -1) if go_backwards else range(timesteps):
        new_output, new_states = step(x[:, t], states, weights, config)
        if mask is None:
            output, states = new_output, new_states
        else:
            keep = np.asarray(mask[:, t], bool)[:, None]
            shown = np.zeros_like(new_output) if zero_output_for_mask else output
            output = np.where(keep, new_output, shown)
            states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
        outputs.append(output)
    return np.stack(outputs, axis=1), states


def finite_difference_gradients(loss, arrays, eps=1e-6):
    """Central differences of the scalar `loss(arrays)` with respect to every
    entry of every array in the dict `arrays` (float64)."""
    grads = {}
    for name, value in arrays.items():
        value = np.asarray(value, np.float64)
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = dict(arrays)
            for sign in (1, -1):
                moved = value.copy()
                moved[index] += sign * eps
                shifted[name] = moved
                grad[index] += sign * loss(shifted)
            grad[index] /= 2 * eps
        grads[name] = grad
    return grads
