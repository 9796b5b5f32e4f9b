"""Generating text with a character-level language model, one character at
a time, and exporting the generator as a SavedModel that needs no kerasrnn.

A trained model reads a window and predicts every next character. To write
new text we run it the other way: feed a prompt, pick a character from the
predicted distribution, feed that character back, and so on. Running the
whole text so far through the model at every step would cost `O(n**2)`;
instead `CharGenerator` keeps the recurrent state, exactly as the sequence
layer carries it from step to step, and runs each character once:

    states = zeros
    for ch in prompt:                   # prime: read the prompt
        logits, states = step(ch, states)
    repeat num_chars times:
        ch = sample(softmax(logits / temperature), top_k)
        logits, states = step(ch, states)

`step` is the model's own layers (embedding, each recurrent layer's cell,
the dense head) applied to one character, so its logits are the same
numbers the model gives for the whole prefix. Sampling draws from NumPy's
`default_rng(seed)`: the same seed, prompt and weights give the same text.
The temperature divides the logits: below 1 it sharpens the distribution
(safer, more repetitive text), above 1 it flattens it; 0 means always the
most likely character (greedy). `top_k` keeps only the k most likely.

`export_generator` writes the same loop as TensorFlow ops into a
SavedModel (TensorFlow only), served by plain `tf.saved_model.load`.
"""

import math
import os
import shutil
import tempfile

import keras
import numpy as np
from keras import ops

from kerasrnn.teaching.char_lm import decode, encode
from kerasrnn.teaching.char_model import char_model_layers

__all__ = [
    "SERVING_TEXT",
    "CharGenerator",
    "export_generator",
    "next_character_distribution",
]


def next_character_distribution(logits, temperature=1.0, top_k=None):
    """The distribution a character is drawn from: `softmax(logits /
    temperature)`, restricted to the `top_k` largest logits.

    Args:
        logits: Array `(vocab,)` of a model's next-character logits.
        temperature: Number >= 0; 0 gives all the mass to the largest logit
            (the first one on a tie). Default: 1.0.
        top_k: Keep only the `top_k` most likely characters (ties at the
            k-th logit are kept too), or `None` for all. Default: `None`.

    Returns:
        A float64 array `(vocab,)` summing to 1.

    Example:

    >>> next_character_distribution([0.0, math.log(3.0)]).round(3).tolist()
    [0.25, 0.75]
    >>> next_character_distribution([0.0, 1.0, 2.0], top_k=1).tolist()
    [0.0, 0.0, 1.0]
    """
    logits = np.asarray(logits, dtype=np.float64)
    temperature = _check_temperature(temperature)
    top_k = _check_top_k(top_k, logits.shape[-1])
    if logits.ndim != 1:
        raise ValueError(
            f"logits must be 1-D (vocab,). Received: logits.shape={logits.shape}"
        )
    if temperature == 0:
        probabilities = np.zeros_like(logits)
        probabilities[np.argmax(logits)] = 1.0
        return probabilities
    scaled = logits / temperature
    if top_k is not None:
        kth = np.sort(scaled)[-top_k]
        scaled = np.where(scaled >= kth, scaled, -np.inf)
    scaled = scaled - scaled.max()
    weights = np.exp(scaled)
    return weights / weights.sum()


class CharGenerator:
    """Generates text from a character-level language model one character at
    a time, carrying the recurrent state from step to step.

    Args:
        model: A character model: `Embedding -> recurrent layers -> Dense`,
            as `kerasrnn.teaching.char_model.build_char_model` builds it.
        alphabet: The model's characters in code order, a `str`.

    Example:

    >>> from kerasrnn.teaching.char_model import build_char_model
    >>> model = build_char_model(3, units=4, embedding_dim=2)
    >>> generator = CharGenerator(model, "abc")
    >>> text = generator.generate("ab", 5, temperature=0.8, seed=1)
    >>> len(text), text == generator.generate("ab", 5, temperature=0.8, seed=1)
    (5, True)

    Reference:
        Graves, "Generating Sequences With Recurrent Neural Networks",
        arXiv:1308.0850, 2013. Karpathy, "The Unreasonable Effectiveness of
        Recurrent Neural Networks", 2015.
    """

    def __init__(self, model, alphabet):
        self.embedding, self.recurrent, self.head = char_model_layers(model)
        if not isinstance(alphabet, str) or len(set(alphabet)) != len(alphabet):
            raise ValueError(
                f"alphabet must be a str of distinct characters. Received: {alphabet!r}"
            )
        if len(alphabet) != self.head.units:
            raise ValueError(
                f"alphabet must have one character per output of the model "
                f"({self.head.units}). Received: {len(alphabet)} characters"
            )
        self.model = model
        self.alphabet = alphabet
        self._step_model = None

    @property
    def vocab_size(self):
        return len(self.alphabet)

    def initial_states(self, batch_size=1):
        """Zero states as NumPy arrays, one list per recurrent layer (`[h, c]`
        for an LSTM)."""
        return [
            [
                np.asarray(ops.convert_to_numpy(s))
                for s in layer.cell.get_initial_state(batch_size)
            ]
            for layer in self.recurrent
        ]

    def step(self, codes, states):
        """Runs one character per sequence through the model.

        Args:
            codes: int array `(batch,)`, the characters read now.
            states: The states before them, as `initial_states` makes them.

        Returns:
            `(logits, states)`: NumPy logits `(batch, vocab)` of the next
            character, and the states after reading `codes`.
        """
        if self._step_model is None:
            self._step_model = self._build_step_model()
        flat = [np.asarray(s) for layer_states in states for s in layer_states]
        outputs = self._step_model.predict_on_batch(
            [np.asarray(codes, dtype="int32").reshape(-1), *flat]
        )
        logits, flat = outputs[0], list(outputs[1:])
        new_states, k = [], 0
        for layer_states in states:
            new_states.append(flat[k : k + len(layer_states)])
            k += len(layer_states)
        new_states = [[np.asarray(s) for s in layer] for layer in new_states]
        return np.asarray(logits, dtype=np.float32), new_states

    def _build_step_model(self):
        # The model's own layers on one step, as a functional model whose
        # compiled predict function runs much faster than eager calls.
        codes = keras.Input((), dtype="int32", batch_size=None)
        x = self.embedding(codes)
        state_inputs, state_outputs = [], []
        for layer in self.recurrent:
            layer_inputs = [
                keras.Input((int(s.shape[-1]),), dtype=layer.compute_dtype)
                for s in layer.cell.get_initial_state(1)
            ]
            step = _CellStep(layer.cell, name=f"{layer.name}_step")
            x, after = step(x, list(layer_inputs))
            state_inputs.extend(layer_inputs)
            state_outputs.extend(after if isinstance(after, (list, tuple)) else [after])
        return keras.Model([codes, *state_inputs], [self.head(x), *state_outputs])

    def prime(self, prompt):
        """Reads `prompt` from a zero state.

        Returns:
            `(logits, states)` after its last character: `logits` `(vocab,)`
            predicts the character that follows the prompt.
        """
        codes = self._encode_prompt(prompt)
        states = self.initial_states(1)
        for code in codes:
            logits, states = self.step([code], states)
        return logits[0], states

    def log_probabilities(self, text):
        """Natural-log probabilities of the next character after each prefix
        `text[: t + 1]`, computed step by step.

        Returns:
            A float64 array `(len(text), vocab)`: row `t` is what the model
            predicts after reading `text[t]` (and everything before it).
        """
        codes = self._encode_prompt(text, name="text")
        states = self.initial_states(1)
        rows = []
        for code in codes:
            logits, states = self.step([code], states)
            rows.append(_log_softmax(logits[0]))
        return np.stack(rows)

    def bits_per_character(self, codes, streams=64):
        """Bits per character on a long text read with the state carried
        from its first character to its last, never reset.

        The text is cut into `streams` consecutive parts of equal length,
        read side by side as one batch; every character but the first of
        each part is predicted from everything before it in its part.

        Args:
            codes: int array, the text's codes.
            streams: Positive integer, parts read side by side. Default: 64.

        Returns:
            A Python float.
        """
        codes = np.asarray(codes, dtype=np.int32).reshape(-1)
        if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
            raise ValueError(
                f"streams must be a positive integer. Received: streams={streams!r}"
            )
        length = len(codes) // streams
        if length < 2:
            raise ValueError(
                f"codes must hold at least 2 characters per stream ({2 * streams}). "
                f"Received: {len(codes)} codes"
            )
        parts = codes[: streams * length].reshape(streams, length)
        states = self.initial_states(streams)
        rows = np.arange(streams)
        nats = 0.0
        for t in range(length - 1):
            logits, states = self.step(parts[:, t], states)
            nats -= float(np.sum(_log_softmax(logits)[rows, parts[:, t + 1]]))
        return nats / (streams * (length - 1)) / math.log(2.0)

    def generate(self, prompt, num_chars, temperature=1.0, top_k=None, seed=None):
        """Continues `prompt` with `num_chars` sampled characters.

        Args:
            prompt: A non-empty `str` of characters of the alphabet.
            num_chars: Integer >= 0, characters to generate.
            temperature: Number >= 0; 0 is greedy. Default: 1.0.
            top_k: Sample among the `top_k` most likely characters only, or
                `None` for all. Default: `None`.
            seed: Integer seed of the draws, or `None` for fresh randomness.
                Default: `None`.

        Returns:
            The generated `str` (without the prompt).
        """
        return self.generate_many(prompt, num_chars, [temperature], top_k, seed)[0]

    def generate_many(self, prompt, num_chars, temperatures, top_k=None, seed=None):
        """Continues `prompt` once per temperature, all in one batch.

        Sample `k` draws from `numpy.random.default_rng(seed)` spawned for
        stream `k` (`SeedSequence(seed).spawn`), so a call with the same
        arguments gives the same texts.

        Args:
            prompt: A non-empty `str` of characters of the alphabet.
            num_chars: Integer >= 0, characters to generate.
            temperatures: A non-empty sequence of numbers >= 0.
            top_k: As in `generate`. Default: `None`.
            seed: As in `generate`. Default: `None`.

        Returns:
            A list of `str`, one per temperature.
        """
        if (
            isinstance(num_chars, bool)
            or not isinstance(num_chars, int)
            or num_chars < 0
        ):
            raise ValueError(
                f"num_chars must be an integer >= 0. Received: num_chars={num_chars!r}"
            )
        temperatures = [_check_temperature(t) for t in np.atleast_1d(temperatures)]
        if not temperatures:
            raise ValueError(
                "temperatures must not be empty. Received: temperatures=[]"
            )
        top_k = _check_top_k(top_k, self.vocab_size)
        streams = len(temperatures)
        rngs = [
            np.random.default_rng(child)
            for child in np.random.SeedSequence(seed).spawn(streams)
        ]
        logits, states = self.prime(prompt)
        logits = np.repeat(logits[None], streams, axis=0)
        states = [[np.repeat(s, streams, axis=0) for s in layer] for layer in states]
        codes = np.zeros((streams, num_chars), dtype=np.int32)
        for k in range(num_chars):
            for stream, (temperature, rng) in enumerate(zip(temperatures, rngs)):
                probabilities = next_character_distribution(
                    logits[stream], temperature, top_k
                )
                # Inverse CDF: the first character whose cumulative mass passes u.
                cdf = np.cumsum(probabilities)
                code = np.searchsorted(cdf, rng.random() * cdf[-1], side="right")
                codes[stream, k] = min(int(code), self.vocab_size - 1)
            if k + 1 < num_chars:
                logits, states = self.step(codes[:, k], states)
        return [decode(row, self.alphabet) for row in codes]

    def _encode_prompt(self, prompt, name="prompt"):
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(
                f"{name} must be a non-empty str. Received: {name}={prompt!r}"
            )
        return encode(prompt, self.alphabet)


class _CellStep(keras.layers.Layer):
    """One step of a recurrent layer's cell under a name of its own (two
    layers' cells may share a name, which a functional model refuses)."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell

    def call(self, inputs, states):
        output, after = self.cell(inputs, states, training=False)
        return output, list(after) if isinstance(after, (list, tuple)) else [after]


def _log_softmax(logits):
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _check_temperature(temperature):
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float, np.floating, np.integer))
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise ValueError(
            "temperature must be a finite number >= 0. "
            f"Received: temperature={temperature!r}"
        )
    return float(temperature)


def _check_top_k(top_k, vocab_size):
    if top_k is None:
        return None
    if (
        isinstance(top_k, bool)
        or not isinstance(top_k, (int, np.integer))
        or not 1 <= top_k <= vocab_size
    ):
        raise ValueError(
            f"top_k must be None or an integer in [1, {vocab_size}]. "
            f"Received: top_k={top_k!r}"
        )
    return int(top_k)


# --- The exported generator (TensorFlow) ----------------------------------

SERVING_TEXT = "text"


def _serving_functions(generator):
    """`tf.function`s of the SavedModel: `generate` and `step`.

    `generate(prompt, num_chars, temperature, top_k, seed)` takes scalars (a
    UTF-8 `prompt` string, an int32 count, a float32 temperature, an int32
    `top_k` with 0 for all characters, an int32 seed) and returns
    `{"text": the generated string}`. `step(codes, state)` takes int32
    codes `(batch,)` and the flat float32 state `(batch, state_size)` (every
    layer's states side by side; zeros to start) and returns `{"logits":
    (batch, vocab), "state": (batch, state_size)}`; `alphabet()` returns the
    characters in code order, one per entry.
    """
    import tensorflow as tf

    embedding, recurrent, head = (
        generator.embedding,
        generator.recurrent,
        generator.head,
    )
    alphabet = tf.constant(list(generator.alphabet))
    vocab_size = generator.vocab_size
    zero_states = generator.initial_states(1)
    sizes = [[int(s.shape[-1]) for s in layer_states] for layer_states in zero_states]
    state_size = sum(sum(layer_sizes) for layer_sizes in sizes)
    dtype = keras.backend.standardize_dtype(recurrent[0].compute_dtype)

    def run_step(codes, states):
        x = embedding(codes)
        new_states = []
        for layer, layer_states in zip(recurrent, states):
            x, after = layer.cell(x, list(layer_states), training=False)
            new_states.append(
                list(after) if isinstance(after, (list, tuple)) else [after]
            )
        return head(x), new_states

    def flatten(states):
        return tf.concat([s for layer_states in states for s in layer_states], axis=-1)

    def unflatten(state):
        parts = tf.split(
            state, [n for layer_sizes in sizes for n in layer_sizes], axis=-1
        )
        states, k = [], 0
        for layer_sizes in sizes:
            states.append(parts[k : k + len(layer_sizes)])
            k += len(layer_sizes)
        return states

    def pick(logits, temperature, top_k, seed, index):
        def greedy():
            return tf.argmax(logits, output_type=tf.int32)

        def sampled():
            scaled = logits / temperature
            k = tf.clip_by_value(top_k, 1, vocab_size)
            kth = tf.math.top_k(scaled, k=k).values[-1]
            keep = tf.logical_or(top_k <= 0, scaled >= kth)
            scaled = tf.where(keep, scaled, tf.fill(tf.shape(scaled), -np.inf))
            draw = tf.random.stateless_categorical(
                scaled[None], 1, seed=tf.stack([seed, index]), dtype=tf.int32
            )
            return draw[0, 0]

        return tf.cond(temperature > 0, sampled, greedy)

    # The loops are tf.while_loop and tf.cond already: nothing for AutoGraph.
    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec([], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="num_chars"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ],
    )
    def generate(prompt, num_chars, temperature, top_k, seed):
        chars = tf.strings.unicode_split(prompt, "UTF-8")
        matches = tf.equal(chars[:, None], alphabet[None, :])
        checks = [
            tf.debugging.assert_positive(
                tf.size(chars), message="prompt must not be empty"
            ),
            tf.debugging.assert_equal(
                tf.reduce_all(tf.reduce_any(matches, axis=1)),
                True,
                message="prompt holds characters outside the alphabet of the model",
            ),
            tf.debugging.assert_non_negative(
                num_chars, message="num_chars must be >= 0"
            ),
            tf.debugging.assert_non_negative(
                temperature, message="temperature must be >= 0"
            ),
        ]
        with tf.control_dependencies(checks):
            codes = tf.argmax(tf.cast(matches, tf.int32), axis=1, output_type=tf.int32)
        states = [
            [tf.zeros([1, n], dtype) for n in layer_sizes] for layer_sizes in sizes
        ]

        def read(t, logits, state):
            logits, new_states = run_step(codes[t][None], unflatten(state))
            return t + 1, logits, flatten(new_states)

        _, logits, state = tf.while_loop(
            lambda t, *_: t < tf.size(codes),
            read,
            (tf.constant(0), tf.zeros([1, vocab_size], dtype), flatten(states)),
        )

        def write(i, logits, state, out):
            code = pick(logits[0], temperature, top_k, seed, i)
            logits, new_states = run_step(code[None], unflatten(state))
            return i + 1, logits, flatten(new_states), out.write(i, code)

        _, _, _, out = tf.while_loop(
            lambda i, *_: i < num_chars,
            write,
            (tf.constant(0), logits, state, tf.TensorArray(tf.int32, size=num_chars)),
        )
        text = tf.strings.reduce_join(tf.gather(alphabet, out.stack()))
        return {SERVING_TEXT: text}

    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec([None], tf.int32, name="codes"),
            tf.TensorSpec([None, state_size], dtype, name="state"),
        ],
    )
    def step(codes, state):
        logits, new_states = run_step(codes, unflatten(state))
        return {"logits": logits, "state": flatten(new_states)}

    @tf.function(autograph=False, input_signature=[])
    def characters():
        return {"alphabet": alphabet}

    return {"generate": generate, "step": step, "alphabet": characters}


def export_generator(generator, path):
    """Writes a SavedModel that generates text, served without kerasrnn.

    Its `serving_default` signature (alias of `generate`) takes `prompt`, a
    scalar string, `num_chars` (int32), `temperature` (float32, 0 for
    greedy), `top_k` (int32, 0 for all characters) and `seed` (int32), and
    returns `text`, the generated continuation; the same seed gives the same
    text. The `step` signature is one step with the state passed in and out
    (`codes`, `state` -> `logits`, `state`), for clients that sample
    themselves, and `alphabet` lists the characters in code order. The
    weights are inside and the layers run as plain TensorFlow ops. The model
    is written to a temporary folder beside `path` and renamed into place.
    TensorFlow backend only.

    Args:
        generator: A `CharGenerator`.
        path: The SavedModel folder to write.

    Returns:
        `path`.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "export_generator writes a TensorFlow SavedModel and needs the "
            f"TensorFlow backend. Received: KERAS_BACKEND={keras.backend.backend()!r}"
        )
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    functions = _serving_functions(generator)
    archive = keras.export.ExportArchive()
    archive.track(generator.model)
    for name, function in functions.items():
        archive.add_endpoint(name, function)  # the first is serving_default
    tmp = tempfile.mkdtemp(prefix=".saved_model-partial-", dir=parent)
    try:
        archive.write_out(tmp, verbose=False)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
