"""Training and reporting a character-level language model.

- The gradient of a last-character prediction, as `GradientNormHistory`
  records it on `last_character_targets` probes, matches backpropagation
  through time written out in NumPy for a tanh RNN (rtol 1e-4).
- `gradient_reach` against hand-made profiles; `BitsPerCharacter` against
  the hand conversion; settings errors are named.
- A tiny run of `train_char_model` writes what it says, records one
  gradient profile per epoch plus the one before training, and a run
  interrupted after its first epoch resumes and ends where the
  uninterrupted run ends.
"""

import doctest
import json
import math
import os

import keras
import numpy as np
import pytest

from kerasrnn.callbacks import GradientNormHistory
from kerasrnn.teaching import char_training
from kerasrnn.teaching.char_lm import BUILTIN_TEXT, char_corpus
from kerasrnn.teaching.char_model import build_char_model, last_character_targets
from kerasrnn.teaching.char_training import (
    BitsPerCharacter,
    Settings,
    gradient_reach,
    train_char_model,
)
from tests.utils import BACKEND


def test_docstring_examples():
    result = doctest.testmod(char_training, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 2
    assert result.failed == 0


def test_last_character_gradient_matches_numpy_bptt():
    """dL/dh_t for the loss of the last prediction only, in a tanh RNN:
    dL/dh_T = (softmax(z_T) - onehot(y)) V^T / N at the last step, and
    dL/dh_{t-1} = (dL/dh_t * (1 - h_t**2)) U^T before it (no loss of its
    own: the other targets are ignored)."""
    vocab, units, seq_len, count = 7, 5, 9, 4
    keras.utils.set_random_seed(3)
    model = build_char_model(vocab, cell="simple_rnn", units=units, embedding_dim=3)
    rng = np.random.default_rng(0)
    model.set_weights(
        [
            (0.8 * rng.standard_normal(w.shape)).astype("float32")
            for w in model.get_weights()
        ]
    )
    codes = rng.integers(0, vocab, size=200).astype(np.int32)
    x, y = last_character_targets(codes, seq_len, count, seed=1)

    norms = GradientNormHistory(x, y, layer="recurrent")
    norms.set_model(model)
    measured = norms.measure()["h"]

    (E,) = model.get_layer("embedding").get_weights()
    W, U, b = model.get_layer("recurrent").get_weights()
    V, c = model.get_layer("logits").get_weights()
    E, W, U, b, V, c = (a.astype(np.float64) for a in (E, W, U, b, V, c))
    h = np.zeros((count, units))
    hs = []
    for t in range(seq_len):
        h = np.tanh(E[x[:, t]] @ W + h @ U + b)
        hs.append(h)
    z = hs[-1] @ V + c
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[np.arange(count), y[:, -1]] -= 1.0
    grad = p @ V.T / count
    expected = [np.linalg.norm(grad)]
    for t in range(seq_len - 1, 0, -1):
        # backprop through tanh: 1 - h**2, then through U
        grad = (grad * (1.0 - hs[t] ** 2)) @ U.T
        expected.append(np.linalg.norm(grad))
    np.testing.assert_allclose(measured, expected[::-1], rtol=1e-4)


def test_gradient_reach_by_hand():
    reach = gradient_reach([1e-4, 1e-3, 0.02, 0.5, 2.0], threshold=0.01)
    np.testing.assert_allclose(reach["ratios"], [1.0, 0.25, 0.01, 5e-4, 5e-5])
    assert reach["reach"] == 2 and not reach["capped"]
    flat = gradient_reach([0.5, 0.7, 1.0], threshold=0.01)
    assert flat["reach"] == 2 and flat["capped"]
    with pytest.raises(ValueError, match="positive last entry"):
        gradient_reach([1.0, 0.0])


def test_bits_per_character_logs():
    logs = {"loss": 2 * math.log(2.0), "val_loss": math.log(2.0)}
    BitsPerCharacter().on_epoch_end(0, logs)
    assert logs["bits_per_char"] == pytest.approx(2.0)
    assert logs["val_bits_per_char"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"cell": "rnn"}, "cell must be one of"),
        ({"units": 0}, "units must be a positive integer"),
        ({"steps_per_epoch": 2.0}, "steps_per_epoch must be a positive integer"),
        ({"final_learning_rate": 1.0}, "final_learning_rate must lie"),
        ({"reach_threshold": 1.0}, "reach_threshold must lie"),
        ({"dropout": -0.1}, "dropout must lie"),
    ],
    ids=["cell", "units", "steps", "final-lr", "threshold", "dropout"],
)
def test_settings_errors(change, message):
    with pytest.raises(ValueError, match=message):
        Settings(**change).check()


TINY = {
    "units": 8,
    "embedding_dim": 4,
    "seq_len": 12,
    "batch_size": 8,
    "steps_per_epoch": 3,
    "epochs": 2,
    "prompt": "Love ",
    "sample_chars": 20,
    "temperatures": (0.5, 1.0),
    "probe_windows": 4,
}


class Interrupt(keras.callbacks.Callback):
    """Stops the run like a crash once the first epoch is done."""

    def on_epoch_begin(self, epoch, logs=None):
        logs = logs or {}
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")


def test_tiny_run_writes_results_and_resumes(tmp_path, monkeypatch):
    corpus = char_corpus(BUILTIN_TEXT)
    settings = Settings(cell="gru", **TINY)
    results = train_char_model(settings, corpus, str(tmp_path / "plain"), verbose=0)

    assert results["cell"] == "gru" and results["settings"]["steps"] == 6
    assert len(results["history"]) == 2
    assert results["final_val_bits_per_char"] == pytest.approx(
        results["history"][-1]["val_loss"] / math.log(2.0), rel=1e-6
    )
    assert results["gradient_epochs"] == [0, 1, 2]
    assert len(results["gradient_ratios"][0]) == TINY["seq_len"]
    assert list(results["gradient_by_state"]) == ["h"]  # a GRU has no cell state
    assert results["gradient_by_state"]["h"]["reach"] == results["gradient_reach"]
    table = char_training.reach_table(results)
    assert table.count("\n") == 4 and "| 1 back | 10 back | reach |" in table
    assert set(results["samples"]) == {"0.5", "1"}
    assert all(len(s) == 20 for s in results["samples"].values())
    written = json.loads((tmp_path / "plain" / "results.json").read_text())
    assert written["final_val_bits_per_char"] == results["final_val_bits_per_char"]
    for name in ("history.csv", "samples.md", "gradient_norms.npz", "model.keras"):
        assert (tmp_path / "plain" / name).stat().st_size > 0, name
    assert (tmp_path / "plain" / "generator").is_dir() == (BACKEND == "tensorflow")
    samples = (tmp_path / "plain" / "samples.md").read_text()
    assert samples.count("## epoch 1:") == 1 and samples.count("## epoch 2:") == 1

    # Several cells under one folder are reported side by side.
    other = tmp_path / "lstm"
    other.mkdir()
    (other / "results.json").write_text(
        json.dumps({**written, "cell": "lstm", "label": "LSTM"})
    )
    (tmp_path / "gru").mkdir()
    os.replace(tmp_path / "plain" / "results.json", tmp_path / "gru" / "results.json")
    found = char_training.load_results(str(tmp_path))
    assert [r["cell"] for r in found] == ["lstm", "gru"]  # in the order of CELLS
    table = char_training.comparison_table(found)
    assert "| LSTM | 8 x 1 |" in table and "| GRU | 8 x 1 |" in table
    for plot in (
        char_training.plot_bits_per_character,
        char_training.plot_gradient_reach,
    ):
        path = plot(found, str(tmp_path / f"{plot.__name__}.png"))
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    # Interrupted after the first epoch, then run again with the same settings.
    resumed_dir = str(tmp_path / "resumed")
    original = char_training.BitsPerCharacter.on_epoch_begin
    monkeypatch.setattr(
        char_training.BitsPerCharacter, "on_epoch_begin", Interrupt.on_epoch_begin
    )
    with pytest.raises(KeyboardInterrupt):
        train_char_model(settings, corpus, resumed_dir, verbose=0)
    monkeypatch.setattr(char_training.BitsPerCharacter, "on_epoch_begin", original)
    assert os.path.isdir(os.path.join(resumed_dir, "backup"))
    resumed = train_char_model(settings, corpus, resumed_dir, verbose=0)
    assert len(resumed["history"]) == 2
    assert resumed["gradient_epochs"] == [0, 1, 2]
    np.testing.assert_allclose(
        resumed["val_bits_per_char"], results["val_bits_per_char"], rtol=1e-5
    )
    np.testing.assert_allclose(
        resumed["gradient_ratios"], results["gradient_ratios"], rtol=1e-4
    )
    samples = open(os.path.join(resumed_dir, "samples.md")).read()
    assert samples.count("## epoch 1:") == 1 and samples.count("## epoch 2:") == 1


def test_a_validation_text_shorter_than_a_window_is_refused(tmp_path):
    corpus = char_corpus(BUILTIN_TEXT[:300])
    with pytest.raises(ValueError, match="shorter than one window"):
        train_char_model(Settings(seq_len=50), corpus, str(tmp_path))
