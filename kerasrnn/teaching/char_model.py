"""The character-level language model: characters in, a distribution over
the next character out, at every step.

    codes (batch, T) -> Embedding -> recurrent layer(s), return_sequences
                     [-> Dropout] -> Dense(vocab) -> logits (batch, T, vocab)

`CELLS` maps each `--cell` name to the kerasrnn layer that
`build_char_model` stacks; add an entry to offer a new cell everywhere (the
tutorial's flag, the generator, the export). The model takes windows of any
length (`Input((None,))`), so the same model scores a training window, a
whole prompt, or the probe batches of the gradient measurements.

The loss ignores targets equal to `IGNORE`: training data never holds it,
and `last_character_targets` uses it to keep only the prediction of each
window's last character, whose gradient then shows how far back in the
text a prediction reaches.
"""

import keras
import numpy as np

import kerasrnn

__all__ = [
    "CELLS",
    "CELL_LABELS",
    "IGNORE",
    "RECURRENT_NAME",
    "build_char_model",
    "char_model_layers",
    "last_character_targets",
]

# Each `--cell` choice and the kerasrnn sequence layer it builds.
CELLS = {
    "lstm": kerasrnn.LSTM,
    "gru": kerasrnn.GRU,
    "simple_rnn": kerasrnn.SimpleRNN,
    "min_gru": kerasrnn.MinGRU,
    "min_lstm": kerasrnn.MinLSTM,
    "slstm": kerasrnn.SLSTM,
}
CELL_LABELS = {
    "lstm": "LSTM",
    "gru": "GRU",
    "simple_rnn": "SimpleRNN (tanh)",
    "min_gru": "minGRU",
    "min_lstm": "minLSTM",
    "slstm": "sLSTM",
}
# Target value the loss skips (Keras's `ignore_class`).
IGNORE = -1
# Name of the first recurrent layer (the next ones: "recurrent_2", ...).
RECURRENT_NAME = "recurrent"


def build_char_model(
    vocab_size,
    cell="lstm",
    units=256,
    num_layers=1,
    embedding_dim=64,
    learning_rate=2e-3,
    clipnorm=None,
    dropout=0.0,
):
    """A compiled character-level language model.

    Args:
        vocab_size: Integer >= 2, characters in the alphabet.
        cell: A key of `CELLS`. Default: `"lstm"`.
        units: Positive integer, units of each recurrent layer. Default: 256.
        num_layers: Positive integer, stacked recurrent layers, named
            `"recurrent"`, `"recurrent_2"`, ... Default: 1.
        embedding_dim: Positive integer, width of the character embedding.
            Default: 64.
        learning_rate: Adam step size, a positive number or a
            `keras.optimizers.schedules.LearningRateSchedule`. Default: 2e-3.
        clipnorm: Clip each update's gradient to this global norm, or `None`.
            Default: `None`.
        dropout: Fraction of each recurrent layer's outputs dropped in
            training (between the layers and before the head, not along the
            recurrence: Zaremba et al. 2014), in [0, 1). Default: 0.0.

    Returns:
        A `keras.Model` from int32 codes `(batch, timesteps)` to logits
        `(batch, timesteps, vocab_size)`, compiled with Adam and sparse
        cross-entropy from logits in nats (targets equal to `IGNORE` skipped).

    Example:

    >>> model = build_char_model(30, cell="gru", units=8, embedding_dim=4)
    >>> model.predict(np.zeros((2, 5), "int32"), verbose=0).shape
    (2, 5, 30)

    Reference:
        Karpathy, char-rnn (2015): the model and its dropout between layers.
        Zaremba, Sutskever & Vinyals, "Recurrent Neural Network
        Regularization", arXiv:1409.2329, 2014.
    """
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ValueError(f"dropout must lie in [0, 1). Received: dropout={dropout!r}")
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {tuple(CELLS)}. Received: cell={cell!r}")
    for name, value, least in (
        ("vocab_size", vocab_size, 2),
        ("units", units, 1),
        ("num_layers", num_layers, 1),
        ("embedding_dim", embedding_dim, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(
                f"{name} must be an integer >= {least}. Received: {name}={value!r}"
            )
    if not isinstance(
        learning_rate, keras.optimizers.schedules.LearningRateSchedule
    ) and not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
        raise ValueError(
            "learning_rate must be a positive number or a LearningRateSchedule. "
            f"Received: learning_rate={learning_rate!r}"
        )

    codes = keras.Input((None,), dtype="int32", name="codes")
    hidden = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(codes)
    for k in range(num_layers):
        hidden = CELLS[cell](
            units,
            return_sequences=True,
            name=RECURRENT_NAME if k == 0 else f"{RECURRENT_NAME}_{k + 1}",
        )(hidden)
        if dropout:
            hidden = keras.layers.Dropout(dropout, name=f"dropout_{k + 1}")(hidden)
    logits = keras.layers.Dense(vocab_size, name="logits")(hidden)
    model = keras.Model(codes, logits, name=f"char_{cell}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=IGNORE
        ),
    )
    return model


def char_model_layers(model):
    """The parts of a character model in order: `(embedding, [recurrent
    layers], head)`.

    The model must be what `build_char_model` makes, or any model of the
    same form: a `keras.layers.Embedding`, then `keras.layers.RNN` layers
    (kerasrnn's or Keras's) returning sequences, then one `Dense` head;
    `Dropout` layers, which do nothing at inference, are left out.
    """
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, (keras.layers.InputLayer, keras.layers.Dropout))
    ]
    embedding, *recurrent, head = layers if len(layers) >= 3 else (None, None)
    ok = (
        isinstance(embedding, keras.layers.Embedding)
        and isinstance(head, keras.layers.Dense)
        and recurrent
        and all(
            isinstance(r, keras.layers.RNN) and r.return_sequences for r in recurrent
        )
    )
    if not ok:
        raise ValueError(
            "model must be Embedding -> recurrent layers (return_sequences=True) "
            "-> Dense, as build_char_model makes it. Received: layers "
            f"{[type(layer).__name__ for layer in layers]}"
        )
    return embedding, recurrent, head


def last_character_targets(codes, seq_len, count, seed=0):
    """Probe windows whose loss is the prediction of their last character
    only.

    With these targets, the gradient of the loss with respect to the hidden
    state `t` steps before the end measures how much that prediction can
    still change what the network stored `t` characters earlier:
    `kerasrnn.callbacks.GradientNormHistory` records it at every step.

    Args:
        codes: int array, a text's codes (the validation part).
        seq_len: Positive integer, characters per window.
        count: Positive integer, windows.
        seed: Integer; the windows start at places drawn from it. Default: 0.

    Returns:
        `(x, y)`: int32 arrays `(count, seq_len)`; `y` is `IGNORE` except in
        the last column, the character after each window.

    Example:

    >>> x, y = last_character_targets(np.arange(20), seq_len=4, count=2)
    >>> bool((y[:, -1] == x[:, -1] + 1).all()), bool((y[:, :-1] == IGNORE).all())
    (True, True)
    """
    codes = np.asarray(codes, dtype=np.int32)
    for name, value in (("seq_len", seq_len), ("count", count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{name} must be a positive integer. Received: {name}={value!r}"
            )
    if codes.ndim != 1 or len(codes) < seq_len + 1:
        raise ValueError(
            f"codes must be 1-D with at least seq_len + 1 = {seq_len + 1} entries. "
            f"Received: codes.shape={codes.shape}"
        )
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(codes) - seq_len, size=count)
    x = codes[starts[:, None] + np.arange(seq_len)]
    y = np.full_like(x, IGNORE)
    y[:, -1] = codes[starts + seq_len]
    return x, y
