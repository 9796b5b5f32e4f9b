"""The sentiment classifier: embedding, kerasrnn recurrent layers, masked
pooling over the review, and a sigmoid head. Runs on any Keras backend."""

import keras
import numpy as np
from keras import ops

from kerasrnn._utils.validation import (
    check_int_at_least,
    check_positive_int,
    check_rate,
)
from kerasrnn.layers.gru import GRU
from kerasrnn.layers.lstm import LSTM
from kerasrnn.layers.simple_rnn import SimpleRNN
from kerasrnn.teaching.text_classification.preprocessing import TokenDropout

__all__ = [
    "CELLS",
    "POOLINGS",
    "MaskedPooling",
    "build_classifier",
    "compile_classifier",
]

CELLS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


POOLINGS = ("max_mean", "max", "mean", "last")


@keras.saving.register_keras_serializable(package="kerasrnn")
class MaskedPooling(keras.layers.Layer):
    """Pools a sequence over its unmasked steps: max, mean or both.

    With `x_t` the outputs and `m_t` in {0, 1} the mask:

        mean = sum_t m_t * x_t / max(1, sum_t m_t)
        max  = max_{t : m_t = 1} x_t        (0 for a fully masked row)

    Args:
        mode: `"max_mean"` (both, concatenated), `"max"` or `"mean"`.
            Default: `"max_mean"`.

    Call arguments:
        inputs: A tensor `(batch, timesteps, features)`.
        mask: Optional boolean `(batch, timesteps)`; all steps count without.

    Returns:
        A tensor `(batch, features)`, or `(batch, 2 * features)` for
        `"max_mean"`.

    Example:

    >>> x = np.array([[[1.0], [3.0], [9.0]]])
    >>> MaskedPooling()(x, mask=np.array([[True, True, False]]))
    array([[3., 2.]], dtype=float32)
    """

    def __init__(self, mode="max_mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max_mean", "max", "mean"):
            raise ValueError(
                "mode must be one of ('max_mean', 'max', 'mean'). "
                f"Received: mode={mode!r}"
            )
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        count = ops.sum(m, axis=1)
        pooled = []
        if self.mode in ("max_mean", "max"):
            lowest = ops.full_like(inputs, float("-inf"))
            peak = ops.max(ops.where(m > 0, inputs, lowest), axis=1)
            pooled.append(ops.where(count > 0, peak, ops.zeros_like(peak)))
        if self.mode in ("max_mean", "mean"):
            pooled.append(ops.sum(inputs * m, axis=1) / ops.maximum(count, 1.0))
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        features = input_shape[-1]
        if self.mode == "max_mean" and features is not None:
            features = 2 * features
        return (input_shape[0], features)

    def get_config(self):
        config = {"mode": self.mode}
        base_config = super().get_config()
        return {**base_config, **config}


def build_classifier(
    vocabulary_size,
    cell="lstm",
    units=64,
    embedding_dim=128,
    bidirectional=True,
    num_layers=1,
    pooling="max_mean",
    embedding_dropout=0.25,
    dropout=0.25,
    dense_units=0,
    seed=0,
    name=None,
    token_dropout=0.0,
    initial_embeddings=None,
):
    """The sentiment classifier from token ids to `P(positive)`.

    `ids (batch, T)` -> optional `TokenDropout(token_dropout)` ->
    `Embedding(vocabulary_size, embedding_dim,
    mask_zero=True)` -> `SpatialDropout1D(embedding_dropout)` ->
    `num_layers` recurrent layers of `units` (each wrapped in
    `Bidirectional` when asked) -> `MaskedPooling(pooling)` of the last
    layer's outputs over the real tokens, or its final state for
    `pooling="last"` -> `Dropout(dropout)` -> optional
    `Dense(dense_units, relu)` -> `Dense(1, sigmoid)`.

    Build it inside `strategy.scope()` to train it under a
    `tf.distribute` strategy.

    Args:
        vocabulary_size: Positive integer, the vectorizer's vocabulary size.
        cell: `"simple_rnn"`, `"lstm"` or `"gru"`. Default: `"lstm"`.
        units: Positive integer, units of each recurrent layer (per
            direction). Default: 64.
        embedding_dim: Positive integer, size of the word vectors.
            Default: 128.
        bidirectional: Read the review in both directions. Default: `True`.
        num_layers: Positive integer, recurrent layers stacked. Default: 1.
        pooling: `"max_mean"`, `"max"`, `"mean"` or `"last"`.
            Default: `"max_mean"`.
        embedding_dropout: Fraction of embedding channels dropped for a whole
            review, in [0, 1). Default: 0.25.
        dropout: Dropout before the dense head, in [0, 1). Default: 0.25.
        dense_units: Units of a hidden ReLU layer in the head; 0 for none.
            Default: 0.
        seed: Seed of the weights and dropout. Default: 0.
        name: Name of the model (members of an ensemble need distinct
            names). Default: `None` (`"imdb_<cell>"`).
        token_dropout: Chance that a token becomes the out-of-vocabulary id
            in training (`TokenDropout`), in [0, 1); 0 for none. Default: 0.
        initial_embeddings: Optional array `(vocabulary_size,
            embedding_dim)` the `Embedding` starts from (for example
            `unit_rows(train_word_vectors(...))`); it is trained further
            with the rest. Its all-zero rows (the padding, the unknown word,
            words the vectors were not learnt for) keep the layer's own
            random start. Default: `None` (a random start).

    Returns:
        An uncompiled `keras.Model` named `name`.

    Example:

    >>> model = build_classifier(1000, cell="gru", units=8, embedding_dim=16)
    >>> model(np.array([[4, 5, 6, 0]])).shape
    TensorShape([1, 1])
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {tuple(CELLS)}. Received: cell={cell!r}")
    if pooling not in POOLINGS:
        raise ValueError(
            f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}"
        )
    for argument, value in (
        ("vocabulary_size", vocabulary_size),
        ("units", units),
        ("embedding_dim", embedding_dim),
        ("num_layers", num_layers),
    ):
        check_positive_int(argument, value)
    dense_units = check_int_at_least("dense_units", dense_units, 0)
    for argument, value in (
        ("embedding_dropout", embedding_dropout),
        ("dropout", dropout),
        ("token_dropout", token_dropout),
    ):
        check_rate(argument, value)
    if initial_embeddings is not None:
        initial_embeddings = np.asarray(initial_embeddings, dtype="float32")
        if initial_embeddings.shape != (vocabulary_size, embedding_dim):
            raise ValueError(
                "initial_embeddings must have shape (vocabulary_size, embedding_dim) "
                f"= {(vocabulary_size, embedding_dim)}. Received: "
                f"initial_embeddings.shape={initial_embeddings.shape}"
            )
        if not np.all(np.isfinite(initial_embeddings)):
            raise ValueError("initial_embeddings must be finite. Received: NaN or inf")

    seeds = iter(range(seed * 1000, seed * 1000 + 1000))
    layer_class = CELLS[cell]
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = token_ids
    if token_dropout:
        # Its seed comes after all the others, so that models without it
        # keep their weights and dropout masks.
        x = TokenDropout(token_dropout, seed=seed * 1000 + 999, name="token_dropout")(x)
    embedding = keras.layers.Embedding(
        vocabulary_size,
        embedding_dim,
        mask_zero=True,
        embeddings_initializer=keras.initializers.RandomUniform(
            -0.05, 0.05, seed=next(seeds)
        ),
        name="embedding",
    )
    x = embedding(x)
    if initial_embeddings is not None:
        learnt = np.any(initial_embeddings != 0, axis=1, keepdims=True)
        start = ops.convert_to_numpy(embedding.embeddings)
        embedding.embeddings.assign(np.where(learnt, initial_embeddings, start))
    if embedding_dropout:
        x = keras.layers.SpatialDropout1D(
            embedding_dropout, seed=next(seeds), name="embedding_dropout"
        )(x)
    for i in range(num_layers):
        last = i == num_layers - 1
        rnn = layer_class(
            units,
            return_sequences=not (last and pooling == "last"),
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            recurrent_initializer=keras.initializers.Orthogonal(seed=next(seeds)),
            name=f"{cell}_{i}",
        )
        if bidirectional:
            rnn = keras.layers.Bidirectional(rnn, name=f"bidirectional_{cell}_{i}")
        x = rnn(x)
    if pooling != "last":
        x = MaskedPooling(pooling, name=f"{pooling}_pooling")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=next(seeds), name="dropout")(x)
    if dense_units:
        x = keras.layers.Dense(
            dense_units,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            name="hidden",
        )(x)
    probability = keras.layers.Dense(
        1,
        activation="sigmoid",
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        name="positive_probability",
    )(x)
    return keras.Model(token_ids, probability, name=name or f"imdb_{cell}")


def compile_classifier(model, learning_rate=1e-3, decay_steps=None, clipnorm=None):
    """Compiles with Adam, binary cross-entropy and accuracy.

    Args:
        model: The classifier.
        learning_rate: Adam's (initial) step size. Default: 1e-3.
        decay_steps: When given, the step size follows a cosine from
            `learning_rate` down to 2 % of it over this many steps (then
            stays there), so the last epochs refine rather than jump about.
            Default: `None` (constant).
        clipnorm: Clip each gradient to this norm. Default: `None`.
    """
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=int(decay_steps), alpha=0.02
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model
