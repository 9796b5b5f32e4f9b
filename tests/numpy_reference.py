"""Plain NumPy (float64) re-implementations of kerasrnn's recurrent layers,
written from the equations of the papers, to check the layers against.

Each `*_step(x_t, states, weights, config)` takes one step for a batch and
returns `(output, new_states)`; `run_layer` drives a step over a sequence
with Keras's semantics for `go_backwards`, masking, `return_sequences` and
`return_state`. `weights` maps a weight's name (`kernel`, `recurrent_kernel`,
`bias`, `peephole_i`, ...) to its array.
"""

import numpy as np


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free


ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "silu": lambda x: x * _sigmoid(x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
}


def simple_rnn_step(x_t, states, weights, config):
    (h_tm1,) = states
    act = ACTIVATIONS[config["activation"]]
    z = x_t @ weights["kernel"] + h_tm1 @ weights["recurrent_kernel"]
    if config["use_bias"]:
        z = z + weights["bias"]
    h = act(z)
    return h, [h]


def gru_step(x_t, states, weights, config):
    (h_tm1,) = states
    act = ACTIVATIONS[config["activation"]]
    rec = ACTIVATIONS[config["recurrent_activation"]]
    W, U = weights["kernel"], weights["recurrent_kernel"]
    n = U.shape[0]
    b_in = b_rec = np.zeros(3 * n)
    if config["use_bias"]:
        if config["reset_after"]:
            b_in, b_rec = weights["bias"][0], weights["bias"][1]
        else:
            b_in = weights["bias"]
    x = x_t @ W + b_in
    x_z, x_r, x_h = x[:, :n], x[:, n : 2 * n], x[:, 2 * n :]
    U_z, U_r, U_h = U[:, :n], U[:, n : 2 * n], U[:, 2 * n :]
    if config["reset_after"]:
        z = rec(x_z + h_tm1 @ U_z + b_rec[:n])
        r = rec(x_r + h_tm1 @ U_r + b_rec[n : 2 * n])
        hh = act(x_h + r * (h_tm1 @ U_h + b_rec[2 * n :]))
    else:
        z = rec(x_z + h_tm1 @ U_z)
        r = rec(x_r + h_tm1 @ U_r)
        hh = act(x_h + (r * h_tm1) @ U_h)
    h = z * h_tm1 + (1.0 - z) * hh
    return h, [h]


def lstm_structure(config):
    """The gates, fused blocks and peepholes of an LSTM variant (Greff et al.
    2015): returns `(gate_names, block_names, use_peepholes)`."""
    variant = config.get("variant", "np")
    mods = set(variant.split("+")) - {"vanilla"}
    has_i, has_o = "nig" not in mods, "nog" not in mods
    has_f = "nfg" not in mods and "cifg" not in mods
    gates = [g for g, present in (("i", has_i), ("f", has_f), ("o", has_o)) if present]
    blocks = [g for g in ("i", "f") if g in gates] + ["c"] + (["o"] if has_o else [])
    peepholes = config.get("use_peepholes")
    if peepholes is None:
        peepholes = "np" not in mods
    return gates, blocks, peepholes


def lstm_step(x_t, states, weights, config):
    h_tm1, c_tm1 = states[0], states[1]
    variant = config.get("variant", "np")
    mods = set(variant.split("+"))
    act = ACTIVATIONS[config["activation"]]
    rec = ACTIVATIONS[config["recurrent_activation"]]
    gates, blocks, peepholes = lstm_structure(config)
    n = h_tm1.shape[1]
    z = x_t @ weights["kernel"] + h_tm1 @ weights["recurrent_kernel"]
    if config["use_bias"]:
        z = z + weights["bias"]
    z = {name: z[:, k * n : (k + 1) * n] for k, name in enumerate(blocks)}
    if "fgr" in mods:
        r = states[2] @ weights["gate_recurrent_kernel"]
        for k, name in enumerate(gates):
            z[name] = z[name] + r[:, k * n : (k + 1) * n]

    def gate(name, cell_state):
        pre = z[name]
        if peepholes:
            pre = pre + weights[f"peephole_{name}"] * cell_state
        return rec(pre)

    i = gate("i", c_tm1) if "i" in gates else np.ones_like(c_tm1)
    if "cifg" in mods:
        f = 1.0 - i
    elif "f" in gates:
        f = gate("f", c_tm1)
    else:
        f = np.ones_like(c_tm1)
    g = z["c"] if "niaf" in mods else act(z["c"])
    c = f * c_tm1 + i * g
    o = gate("o", c) if "o" in gates else np.ones_like(c)
    h = o * (c if "noaf" in mods else act(c))
    new_states = [h, c]
    if "fgr" in mods:
        values = {"i": i, "f": f, "o": o}
        new_states.append(np.concatenate([values[g] for g in gates], axis=-1))
    return h, new_states


STEPS = {"SimpleRNN": simple_rnn_step, "GRU": gru_step, "LSTM": lstm_step}


def state_sizes(kind, config):
    units = config["units"]
    if kind != "LSTM":
        return [units]
    sizes = [units, units]
    if "fgr" in config.get("variant", "np").split("+"):
        sizes.append(len(lstm_structure(config)[0]) * units)
    return sizes


def run_layer(
    kind,
    config,
    weights,
    x,
    initial_state=None,
    mask=None,
    return_sequences=False,
    return_state=False,
    go_backwards=False,
    masked_output_start="zeros",
    peak=None,
):
    """Runs layer `kind` over `x` `(batch, timesteps, features)` in float64.

    Masked steps keep the previous states and repeat the previous output,
    as `keras.layers.RNN` does by default. Before the first step that
    "previous output" is zero (`masked_output_start="zeros"`: TensorFlow, and
    JAX with `unroll=True`) or the initial hidden state
    (`masked_output_start="state"`: JAX's scan loop); the two differ only
    when the sequence starts with masked steps and the initial state is not
    zero (an `initial_state` or a stateful layer's carried state). With
    `go_backwards` the sequence (and mask) is read from the end and the
    outputs come in that order.

    If `peak` is a dict, `peak["value"]` is raised to the largest absolute
    value any state or output reached at any step (a recurrence can overflow
    float32 inside the sequence and still end small).

    Returns `(outputs, final_states)` where `outputs` is what the layer
    returns: the sequence or the last output, followed by the final states
    when `return_state`.
    """
    step = STEPS[kind]
    x = np.asarray(x, np.float64)
    weights = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    batch, timesteps = x.shape[0], x.shape[1]
    if initial_state is None:
        states = [np.zeros((batch, s)) for s in state_sizes(kind, config)]
    else:
        states = [np.asarray(s, np.float64) for s in initial_state]
    order = range(timesteps - 1, -1, -1) if go_backwards else range(timesteps)
    if masked_output_start == "state":
        output = states[0]
    else:
        output = np.zeros((batch, config["units"]))
    outputs = []
    for t in order:
        # A diverging recurrence may overflow even float64; `peak` reports it.
        with np.errstate(over="ignore", invalid="ignore"):
            new_output, new_states = step(x[:, t], states, weights, config)
        if mask is None:
            output, states = new_output, new_states
        else:
            keep = np.asarray(mask[:, t], bool)[:, None]
            output = np.where(keep, new_output, output)
            states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
        outputs.append(output)
        if peak is not None:
            values = np.abs(np.concatenate([v.ravel() for v in [output, *states]]))
            reached = values.max(initial=0.0) if np.isfinite(values).all() else np.inf
            peak["value"] = max(peak.get("value", 0.0), float(reached))
    result = np.stack(outputs, axis=1) if return_sequences else output
    if return_state:
        return [result, *states], states
    return result, states
