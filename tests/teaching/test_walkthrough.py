"""Tests of kerasrnn.teaching.walkthrough: the model it builds, the unit ranking, the
gate statistics and tables checked against hand-made activations, and the
plots written to disk."""

import keras
import numpy as np
import pytest

import kerasrnn
from kerasrnn.inspection.gates import gate_activations
from kerasrnn.teaching import walkthrough

PNG = b"\x89PNG\r\n\x1a\n"


def fake_activations(batch=3, steps=7, units=4, seed=0):
    rng = np.random.default_rng(seed)
    acts = {
        key: rng.uniform(0, 1, size=(batch, steps, units))
        for key in ("input_gate", "forget_gate", "output_gate")
    }
    acts["candidate"] = rng.uniform(-1, 1, size=(batch, steps, units))
    acts["cell_state"] = rng.normal(size=(batch, steps, units))
    acts["hidden_state"] = np.tanh(acts["cell_state"]) * acts["output_gate"]
    return acts


@pytest.mark.parametrize(
    "cell,layer_cls", [("lstm", kerasrnn.LSTM), ("gru", kerasrnn.GRU)]
)
def test_build_model(cell, layer_cls):
    model = walkthrough.build_model(cell, 3, 5)
    layer = model.get_layer("recurrent")
    assert isinstance(layer, layer_cls)
    assert layer.return_sequences and layer.units == 3
    out = model(np.zeros((2, 5, 2), "float32"))
    assert tuple(out.shape) == (2, 5, 1)
    assert model.loss == "mse"


def test_build_model_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell"):
        walkthrough.build_model("rnn", 3, 5)


def test_memory_units_rank_by_absolute_correlation():
    acts = fake_activations()
    target = np.random.default_rng(1).normal(size=(3, 7))
    acts["cell_state"][..., 2] = -2.0 * target + 0.5  # perfectly anti-correlated
    acts["cell_state"][..., 0] = target + np.random.default_rng(2).normal(
        0, 1.0, size=(3, 7)
    )
    order, correlations = walkthrough.memory_units(acts, target[..., None])
    assert order[0] == 2
    assert correlations[2] == pytest.approx(1.0)
    expected = abs(
        np.corrcoef(acts["cell_state"][..., 0].ravel(), target.ravel())[0, 1]
    )
    assert correlations[0] == pytest.approx(expected)


def test_memory_units_use_hidden_state_for_gru():
    target = np.arange(6.0).reshape(1, 6)
    acts = {
        "update_gate": np.zeros((1, 6, 2)),
        "hidden_state": np.stack([np.ones(6), np.arange(6.0)], -1)[None],
    }
    order, correlations = walkthrough.memory_units(acts, target)
    assert walkthrough.state_key(acts) == "hidden_state"
    assert order[0] == 1 and correlations[0] == 0.0  # constant unit: no correlation


def test_gate_contrast_and_switching_match_manual_means():
    acts = fake_activations()
    marked = np.zeros((3, 7), bool)
    marked[:, 0] = True
    marked[1, 4] = True
    contrast = walkthrough.gate_contrast(acts, marked)
    assert set(contrast) == {"input_gate", "forget_gate", "output_gate"}
    f = acts["forget_gate"]
    manual_marked = np.mean(
        [f[b, t] for b in range(3) for t in range(7) if marked[b, t]], axis=0
    )
    manual_unmarked = np.mean(
        [f[b, t] for b in range(3) for t in range(7) if not marked[b, t]], axis=0
    )
    np.testing.assert_allclose(contrast["forget_gate"]["marked"], manual_marked)
    np.testing.assert_allclose(contrast["forget_gate"]["unmarked"], manual_unmarked)

    acts["forget_gate"][..., 1] = np.where(marked, 0.1, 0.9)
    acts["forget_gate"][0, 3, 1] = 0.2  # one unmarked step below 0.5
    switching = walkthrough.gate_switching(acts, marked, "forget_gate", 1)
    assert switching["below_at_marked"] == 1.0
    assert switching["above_at_unmarked"] == pytest.approx(16 / 17)


def test_choose_example():
    markers = np.zeros((4, 10))
    markers[0, :2] = 1
    markers[1, :7] = 1
    markers[2, :4] = 1
    markers[3, :3] = 1
    assert walkthrough.choose_example(markers, min_markers=3, max_markers=5) == 2
    assert walkthrough.choose_example(markers, min_markers=8) == 1  # most markers


def test_step_table_and_text():
    acts = fake_activations()
    x = np.zeros((3, 7, 2))
    x[:, :, 0] = np.linspace(-1, 1, 7)
    x[:, 0, 1] = 1
    target = np.ones((3, 7, 1))
    prediction = np.full((3, 7, 1), 0.5)
    rows = walkthrough.step_table(acts, x, target, prediction, unit=3, sample=2)
    assert len(rows) == 7
    assert rows[4]["forget_gate"] == acts["forget_gate"][2, 4, 3]
    assert rows[4]["value"] == pytest.approx(x[2, 4, 0])
    assert rows[0]["marker"] == 1 and rows[1]["marker"] == 0
    text = walkthrough.format_step_table(rows).splitlines()
    assert len(text) == 8
    assert text[0].split()[-6:] == ["i", "f", "g", "o", "c", "h"]
    assert text[1].endswith("<- marker")


def test_plots_write_pngs_for_real_gate_activations(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.zeros((2, 9, 2), "float32")
    x[:, :, 0] = np.random.default_rng(0).uniform(-1, 1, size=(2, 9))
    x[:, [0, 5], 1] = 1
    target = np.zeros((2, 9, 1), "float32")
    traces = []
    for cell, keys in (
        ("lstm", ("forget_gate", "input_gate", "cell_state")),
        ("gru", ("update_gate", "reset_gate", "hidden_state")),
    ):
        model = walkthrough.build_model(cell, 3, 9)
        acts = gate_activations(model.get_layer("recurrent"), x)
        prediction = keras.ops.convert_to_numpy(model(x))
        path = tmp_path / f"{cell}.png"
        walkthrough.plot_gates(acts, x, target, prediction, path, cell, sample=1)
        assert path.read_bytes()[:8] == PNG
        traces.append((cell, acts, 0, keys))
    path = tmp_path / "units.png"
    walkthrough.plot_memory_units(traces, x, target, path, sample=1)
    assert path.read_bytes()[:8] == PNG
