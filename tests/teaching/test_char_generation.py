"""Generating text one character at a time.

- Step by step, carrying the state, the generator gives the model's own
  whole-prefix probabilities within 1e-5 (every cell, one and two layers).
- A seed fixes the sample; temperature 0 and top-k 1 are greedy (checked
  against the argmax of the model's probabilities for each prefix); top-k
  draws only among the k most likely; the draws follow the model's
  distribution (frequencies over many draws within 5 standard errors).
- The exported SavedModel (TensorFlow) runs in a process where kerasrnn
  cannot be imported and generates the generator's greedy text, the same
  sample for the same seed, and the step logits within 1e-5.
"""

import doctest
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasrnn.teaching import char_generation
from kerasrnn.teaching.char_generation import (
    CharGenerator,
    export_generator,
    next_character_distribution,
)
from kerasrnn.teaching.char_lm import encode
from kerasrnn.teaching.char_model import CELLS, build_char_model
from tests.utils import BACKEND, tensorflow_only

ALPHABET = "abcdefgh \n"
# A generous window of floating-point agreement between the fused
# whole-sequence loop and single steps of the cell, in float32.
ATOL = 1e-5


def softmax(logits):
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(-1, keepdims=True)


def make_generator(cell="lstm", num_layers=1, units=12, seed=0, scale=0.6, dropout=0.0):
    """A model with random weights large enough to give peaked, varied
    predictions (a fresh model predicts nearly uniform ones)."""
    keras.utils.set_random_seed(seed)
    model = build_char_model(
        len(ALPHABET),
        cell=cell,
        units=units,
        num_layers=num_layers,
        embedding_dim=5,
        dropout=dropout,
    )
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            (scale * rng.standard_normal(w.shape)).astype(w.dtype)
            for w in model.get_weights()
        ]
    )
    return model, CharGenerator(model, ALPHABET)


def whole_prefix_probabilities(model, text, compiled=False):
    """The model's next-character probabilities after every prefix of
    `text`, from one call on the whole text: `predict` (compiled, the fused
    loop where the backend has one) or an eager call (no retracing for
    each new length)."""
    codes = encode(text, ALPHABET)[None]
    if compiled:
        logits = model.predict(codes, verbose=0)[0]
    else:
        logits = keras.ops.convert_to_numpy(model(codes, training=False))[0]
    return softmax(logits)


def test_docstring_examples():
    result = doctest.testmod(char_generation, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4
    assert result.failed == 0


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize(
    "num_layers,dropout",
    [(1, 0.0), (2, 0.3)],
    ids=["one-layer", "two-layers-dropout"],
)
def test_stepwise_generation_equals_the_whole_prefix(cell, num_layers, dropout):
    model, generator = make_generator(cell, num_layers, dropout=dropout)
    text = "abc defg\nhab ba\ncafe"
    whole = np.log(whole_prefix_probabilities(model, text, compiled=True))
    stepwise = generator.log_probabilities(text)
    assert stepwise.shape == (len(text), len(ALPHABET))
    np.testing.assert_allclose(stepwise, whole, atol=ATOL, rtol=0)
    eager = np.log(whole_prefix_probabilities(model, text))
    np.testing.assert_allclose(stepwise, eager, atol=ATOL, rtol=0)
    # Priming with a prefix ends where the whole-prefix model's step ends.
    logits, _ = generator.prime(text[:7])
    np.testing.assert_allclose(np.log(softmax(logits)), whole[6], atol=ATOL, rtol=0)
    # The predictions are not all alike, so the comparison means something.
    assert np.ptp(whole.max(-1)) > 0.05


def test_bits_per_character_with_the_state_carried_equals_whole_parts():
    """Reading a text as 3 parts side by side, step by step, scores what
    the model gives each whole part in one call."""
    from kerasrnn.teaching.char_lm import cross_entropy_bits

    model, generator = make_generator("lstm")
    text = ("abc defg\nhab ba\ncafe " * 4)[:61]
    codes = encode(text, ALPHABET)
    parts = codes[:60].reshape(3, 20)
    probabilities = softmax(model.predict(parts[:, :-1], verbose=0))
    expected = cross_entropy_bits(probabilities, parts[:, 1:])
    assert generator.bits_per_character(codes, streams=3) == pytest.approx(
        expected, abs=1e-5
    )
    with pytest.raises(ValueError, match="at least 2 characters per stream"):
        generator.bits_per_character(codes[:5], streams=3)
    with pytest.raises(ValueError, match="streams must be a positive integer"):
        generator.bits_per_character(codes, streams=0)


def test_a_seed_gives_the_same_sample():
    _, generator = make_generator("gru")
    first = generator.generate("ab", 60, temperature=1.0, seed=11)
    assert len(first) == 60 and set(first) <= set(ALPHABET)
    assert generator.generate("ab", 60, temperature=1.0, seed=11) == first
    assert generator.generate("ab", 60, temperature=1.0, seed=12) != first
    many = generator.generate_many("ab", 30, [0.5, 1.0], seed=5)
    assert generator.generate_many("ab", 30, [0.5, 1.0], seed=5) == many
    assert len(many) == 2 and all(len(s) == 30 for s in many)


@pytest.mark.parametrize("cell", list(CELLS))
def test_temperature_zero_and_top_k_one_are_greedy(cell):
    model, generator = make_generator(cell)
    prompt = "ha"
    greedy = generator.generate(prompt, 25, temperature=0)
    for i, ch in enumerate(greedy):
        probabilities = whole_prefix_probabilities(model, prompt + greedy[:i])[-1]
        assert ch == ALPHABET[int(np.argmax(probabilities))], i
    assert generator.generate(prompt, 25, temperature=1.0, top_k=1, seed=3) == greedy
    assert generator.generate(prompt, 25, temperature=0, seed=99) == greedy


def test_top_k_draws_among_the_k_most_likely():
    model, generator = make_generator("lstm", scale=0.3)
    prompt = "fed"
    sample = generator.generate(prompt, 30, temperature=3.0, top_k=2, seed=4)
    for i, ch in enumerate(sample):
        probabilities = whole_prefix_probabilities(model, prompt + sample[:i])[-1]
        top_two = {ALPHABET[k] for k in np.argsort(probabilities)[-2:]}
        assert ch in top_two, i
    # At this temperature a sample without top-k leaves those two often.
    free = generator.generate(prompt, 30, temperature=3.0, seed=4)
    assert free != sample


@pytest.mark.parametrize("temperature", [1.0, 0.5], ids=["t1", "t0.5"])
def test_draws_follow_the_model_distribution(temperature):
    """4,000 one-character samples after the same prompt: each character's
    frequency within 5 standard errors of softmax(logits / temperature)."""
    model, generator = make_generator("lstm", scale=0.3)
    draws = 4000
    texts = generator.generate_many("cab", 1, [temperature] * draws, seed=21)
    counts = np.array([sum(t == ch for t in texts) for ch in ALPHABET])
    logits = np.log(whole_prefix_probabilities(model, "cab")[-1])
    expected = softmax(logits / temperature)
    standard_error = np.sqrt(expected * (1 - expected) / draws)
    np.testing.assert_array_less(
        np.abs(counts / draws - expected), 5 * standard_error + 1e-12
    )


def test_next_character_distribution_by_hand():
    logits = np.log([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(
        next_character_distribution(logits), [0.1, 0.2, 0.3, 0.4]
    )
    # Temperature 0.5 squares the probabilities before normalising.
    squared = np.array([0.01, 0.04, 0.09, 0.16]) / 0.30
    np.testing.assert_allclose(next_character_distribution(logits, 0.5), squared)
    np.testing.assert_allclose(
        next_character_distribution(logits, 1.0, top_k=2), [0, 0, 3 / 7, 4 / 7]
    )
    np.testing.assert_array_equal(
        next_character_distribution([1.0, 3.0, 3.0], temperature=0), [0, 1, 0]
    )
    np.testing.assert_allclose(
        next_character_distribution([1.0, 3.0, 3.0], top_k=1), [0, 0.5, 0.5]
    )


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda g: g.generate("az", 3), "outside the alphabet"),
        (lambda g: g.generate("", 3), "prompt must be a non-empty str"),
        (lambda g: g.generate("ab", -1), "num_chars must be an integer >= 0"),
        (lambda g: g.generate("ab", 3, temperature=-0.1), "temperature must be"),
        (lambda g: g.generate("ab", 3, top_k=0), "top_k must be None or an integer"),
        (lambda g: g.generate("ab", 3, top_k=11), "top_k must be None or an integer"),
        (lambda g: g.generate_many("ab", 3, []), "temperatures must not be empty"),
    ],
    ids=["unknown", "empty", "count", "temperature", "top-k-0", "top-k-big", "none"],
)
def test_bad_arguments(call, message):
    _, generator = make_generator()
    with pytest.raises(ValueError, match=message):
        call(generator)


def test_alphabet_must_fit_the_model():
    model, _ = make_generator()
    with pytest.raises(ValueError, match="one character per output"):
        CharGenerator(model, ALPHABET[:-1])
    with pytest.raises(ValueError, match="distinct characters"):
        CharGenerator(model, "aabcdefgh ")


# --- the exported generator ---------------------------------------------------

SERVE_WITHOUT_KERASRNN = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class NoKerasRNN(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "kerasrnn":
                raise ImportError("kerasrnn is blocked in this process")

    sys.meta_path.insert(0, NoKerasRNN())
    try:
        import kerasrnn  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True
    import tensorflow as tf

    path, out = sys.argv[1], sys.argv[2]
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]

    def generate(prompt, n, temperature, top_k, seed):
        result = serve(prompt=tf.constant(prompt), num_chars=tf.constant(n),
                       temperature=tf.constant(temperature),
                       top_k=tf.constant(top_k), seed=tf.constant(seed))
        return result["text"].numpy().decode("utf-8")

    alphabet = [c.decode() for c in loaded.signatures["alphabet"]()["alphabet"].numpy()]
    state_size = loaded.signatures["step"].structured_input_signature[1]["state"].shape[-1]
    step = loaded.signatures["step"](
        codes=tf.constant([0, 3], tf.int32), state=tf.zeros([2, state_size]))
    try:
        generate("aZ", 3, 1.0, 0, 0)
        unknown = "accepted"
    except tf.errors.InvalidArgumentError as error:
        unknown = error.message
    json.dump({
        "blocked": blocked,
        "greedy": generate("ab", 40, 0.0, 0, 0),
        "sample": generate("ab", 40, 1.0, 0, 7),
        "sample_again": generate("ab", 40, 1.0, 0, 7),
        "other_seed": generate("ab", 40, 1.0, 0, 8),
        "top_1": generate("ab", 40, 1.0, 1, 5),
        "top_3": generate("ab", 200, 2.0, 3, 6),
        "alphabet": "".join(alphabet),
        "logits": step["logits"].numpy().tolist(),
        "state_size": int(state_size),
        "unknown": unknown,
    }, open(out, "w"))
    """
)


@tensorflow_only
@pytest.mark.parametrize("cell", ["lstm", "min_gru", "slstm"])
def test_exported_generator_serves_without_kerasrnn(cell, tmp_path):
    # Two layers: several layers, each with its states (LSTM two, minGRU
    # one, sLSTM four), in one flat state.
    model, generator = make_generator(cell, num_layers=2)
    path = export_generator(generator, tmp_path / "generator")
    script = tmp_path / "serve.py"
    script.write_text(SERVE_WITHOUT_KERASRNN)
    out = tmp_path / "out.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, str(script), str(path), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(out.read_text())
    assert served["blocked"] is True
    assert served["alphabet"] == ALPHABET
    assert served["greedy"] == generator.generate("ab", 40, temperature=0)
    assert served["top_1"] == served["greedy"]
    assert served["sample"] == served["sample_again"]
    assert served["sample"] != served["other_seed"]
    assert len(served["sample"]) == 40 and set(served["sample"]) <= set(ALPHABET)
    assert "outside the alphabet of the model" in served["unknown"]
    zero = generator.initial_states(2)
    logits, _ = generator.step(np.array([0, 3]), zero)
    np.testing.assert_allclose(served["logits"], logits, atol=ATOL, rtol=0)
    assert served["state_size"] == sum(
        int(s.shape[-1]) for layer in zero for s in layer
    )
    # Top-3 sampling at temperature 2 never leaves the three most likely.
    prompt, sample = "ab", served["top_3"]
    for i, ch in enumerate(sample[:40]):
        probabilities = whole_prefix_probabilities(model, prompt + sample[:i])[-1]
        assert ch in {ALPHABET[k] for k in np.argsort(probabilities)[-3:]}, i


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the refusal elsewhere")
def test_export_needs_tensorflow(tmp_path):
    _, generator = make_generator()
    with pytest.raises(ValueError, match="needs the TensorFlow backend"):
        export_generator(generator, tmp_path / "generator")
