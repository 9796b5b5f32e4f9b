"""Smoke test of tutorials/lstm_step_by_step.py: runs it end to end with
--quick and checks the files it says it writes and what it reports."""

import importlib.util
import json
import math
import pathlib

TUTORIAL = pathlib.Path(__file__).parents[2] / "tutorials" / "lstm_step_by_step.py"
PNG = b"\x89PNG\r\n\x1a\n"


def load_tutorial():
    spec = importlib.util.spec_from_file_location("lstm_step_by_step", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_writes_its_outputs(tmp_path):
    tutorial = load_tutorial()
    tutorial.main(["--quick", "--output-dir", str(tmp_path)])

    for name in ("lstm_gates.png", "gru_gates.png", "memory_units.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG, name
    saved = json.loads((tmp_path / "results.json").read_text())
    settings = saved["settings"]
    assert settings["quick"] is True
    assert saved["baseline_mse"] == (
        (settings["seq_len"] - 1)
        * (1 - settings["marker_prob"])
        / (3 * settings["seq_len"])
    )
    for cell, gates, letters in (
        ("lstm", {"input_gate", "forget_gate", "output_gate"}, "i f g o c h"),
        ("gru", {"update_gate", "reset_gate"}, "z r hh h"),
    ):
        result = saved["results"][cell]
        assert math.isfinite(result["val_mse"])
        assert 0 <= result["unit"] < settings["units"]
        assert set(result["gates"]) == gates
        for values in result["gates"].values():
            for value in values.values():
                assert 0.0 <= value <= 1.0
        # one line per time step of the walked-through sequence, plus a header
        lines = (tmp_path / f"{cell}_steps.txt").read_text().splitlines()
        assert len(lines) == settings["seq_len"] + 1
        assert lines[0].split()[5:] == letters.split()
        assert lines[1].endswith("<- marker")  # step 0 is always marked
