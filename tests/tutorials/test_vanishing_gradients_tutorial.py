"""Smoke test of tutorials/vanishing_gradients.py (--quick: every file it
says it writes, and the table it prints), and an opt-in slow run of the
lecture's claim at T = 100."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from kerasrnn.teaching import long_dependency as ld

TUTORIAL = pathlib.Path(__file__).parents[2] / "tutorials" / "vanishing_gradients.py"
PNG = b"\x89PNG\r\n\x1a\n"


def load_tutorial():
    spec = importlib.util.spec_from_file_location("vanishing_gradients", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    __import__("keras").backend.backend() != "tensorflow",
    reason="tf.distribute strategy",
)
def test_quick_run_under_a_mirrored_strategy_matches_one_device(tmp_path):
    """--strategy mirrored (one replica here) trains the same models: the
    weights are built under strategy.scope() and the results agree."""
    tutorial = load_tutorial()
    plain = tutorial.main(
        ["--quick", "--cells", "lstm", "--output-dir", str(tmp_path / "a")]
    )
    mirrored = tutorial.main(
        [
            "--quick",
            "--cells",
            "lstm",
            "--strategy",
            "mirrored",
            "--output-dir",
            str(tmp_path / "b"),
        ]
    )
    assert [r["cell"] for r in mirrored] == ["lstm"]
    np.testing.assert_allclose(
        mirrored[0]["test_loss"], plain[0]["test_loss"], rtol=1e-4
    )
    np.testing.assert_allclose(
        mirrored[0]["grad_norm_last"], plain[0]["grad_norm_last"], rtol=1e-3
    )


def test_quick_run_writes_what_it_claims(tmp_path, capsys):
    results = load_tutorial().main(["--quick", "--output-dir", str(tmp_path)])
    printed = capsys.readouterr().out

    assert [r["cell"] for r in results] == ["rnn", "lstm", "gru"]
    for name in ("loss_curves.png", "gradient_profiles.png", "tanh.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG, name
    saved = json.loads((tmp_path / "results.json").read_text())
    settings = saved["settings"]
    assert settings["quick"] is True and settings["task"] == "adding"
    assert settings["timesteps"] == settings["seq_len"] == 12
    assert settings["steps"] == settings["epochs"] * 4  # 128 samples, batch 32
    assert saved["solved_rule"] == "test MSE < 0.01"
    for cell, result in zip(("rnn", "lstm", "gru"), saved["results"]):
        assert (tmp_path / f"gradient_norms_{cell}.png").read_bytes()[:8] == PNG
        norms = np.load(tmp_path / f"gradient_norms_{cell}.npz")
        assert norms["h"].shape == (settings["epochs"] + 1, settings["timesteps"])
        np.testing.assert_allclose(norms["h"][-1, 0], result["grad_norm_first"])
        np.testing.assert_allclose(norms["h"][-1, -1], result["grad_norm_last"])
        assert (tmp_path / f"gradient_norms_{cell}.csv").stat().st_size > 0
        assert result["baseline"] == pytest.approx(1 / 6)
        assert result["solved"] == (result["test_loss"] < 0.01)
        assert len(result["history"]["val_loss"]) == settings["epochs"]
        assert result["seconds"] > 0
    # The printed table is the one saved, one row per cell.
    assert saved["table"] in printed
    for label in ("tanh RNN", "LSTM", "GRU"):
        assert f"| {label} |" in saved["table"]


@pytest.mark.parametrize("task", ["copy", "temporal_order"])
def test_quick_run_of_the_other_tasks(tmp_path, task):
    argv = ["--quick", "--task", task, "--cells", "lstm", "--output-dir", str(tmp_path)]
    (result,) = load_tutorial().main(argv)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["task"] == ld.TASK_NAMES[task]
    assert saved["solved_rule"] == "recall accuracy >= 99%"
    assert 0.0 <= result["recall_accuracy"] <= 1.0
    assert "recall acc." in saved["table"]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--cells", "lstm", "transformer"], "--cells"),
        (["--task", "sorting"], "--task"),
    ],
    ids=["cell", "task"],
)
def test_bad_flags_are_refused(argv, match, capsys):
    with pytest.raises(SystemExit):
        load_tutorial().parse_args(argv)
    assert match in capsys.readouterr().err


def test_bad_task_settings_raise_value_error():
    with pytest.raises(ValueError, match="seq_len"):
        ld.make_task("temporal_order", 5)
    with pytest.raises(ValueError, match="task"):
        ld.make_task("sorting", 50)
    with pytest.raises(ValueError, match="cells"):
        ld.check_cells([])


@pytest.mark.slow
def test_at_100_steps_the_lstm_solves_the_adding_problem_and_the_rnn_does_not(
    tmp_path,
):
    """The lecture's claim with the tutorial's defaults (a few minutes)."""
    tutorial = load_tutorial()
    _, settings = tutorial.parse_args(
        ["--cells", "rnn", "lstm", "--output-dir", str(tmp_path)]
    )
    assert settings.seq_len == 100
    task = ld.make_task(settings.task, settings.seq_len)
    data = ld.make_data(task, settings)
    rnn, lstm = (
        ld.run_cell(c, task, data, settings, verbose=0) for c in ("rnn", "lstm")
    )
    assert lstm["test_loss"] < 0.01
    assert rnn["test_loss"] > 0.5 * task.baseline
    # The gradient that reaches the first step, relative to the last, is
    # smaller for the tanh RNN.
    assert (
        rnn["grad_norm_first"] / rnn["grad_norm_last"]
        < lstm["grad_norm_first"] / lstm["grad_norm_last"]
    )
