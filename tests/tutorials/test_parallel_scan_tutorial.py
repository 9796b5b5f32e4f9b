"""Smoke test of tutorials/parallel_scan.py (--quick): the combine rule it
checks by hand, every file it says it writes, the tables it prints, the
settings written next to the results, and the timings read back on a
second run; and of `kerasrnn.teaching.scan_study`'s counting and scan."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from kerasrnn.teaching import scan_study as study

TUTORIAL = pathlib.Path(__file__).parents[2] / "tutorials" / "parallel_scan.py"
PNG = b"\x89PNG\r\n\x1a\n"


def load_tutorial():
    spec = importlib.util.spec_from_file_location("parallel_scan", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_writes_what_it_claims(tmp_path, capsys):
    args = ["--quick", "--cells", "gru", "min_gru", "--output-dir", str(tmp_path)]
    result = load_tutorial().main(args)
    printed = capsys.readouterr().out

    assert "largest difference: 0.0e+00" in printed
    assert "scan (scan) against the cell step by step (readable)" in printed
    for name in ("step_times.png", "depth_work.png", "gradients_adding.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG, name
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"]["quick"] is True
    assert saved["settings"]["training"]["cells"] == ["gru", "min_gru"]
    assert saved["combine_rule"]["layer_error"] < 1e-5
    assert set(saved["tasks"]) == {"adding", "copy"}
    for task in saved["tasks"].values():
        assert [r["cell"] for r in task["results"]] == ["gru", "min_gru"]
        assert all(np.isfinite(r["test_loss"]) for r in task["results"])
    timings = result["timings"]
    assert sorted(timings) == [16, 32]
    for entry in timings.values():
        assert entry["min_gru"]["path"] == "sequential"
        assert entry["min_gru_scan"]["path"] == "scan"
        assert entry["gru"]["seconds"] > 0
    assert "| minGRU | sequential |" in printed

    # A second run reads the timings back instead of measuring them again.
    load_tutorial().main(args + ["--tasks"])
    assert "Reading the timings measured before" in capsys.readouterr().out


def test_scan_by_pairs_matches_the_loop_and_counts_its_rounds():
    rng = np.random.default_rng(0)
    for steps in (1, 2, 5, 8, 13):
        a, b = rng.uniform(0.1, 1, steps), rng.standard_normal(steps)
        rounds = []
        _, h = study.scan_by_pairs(a, b, rounds=rounds)
        np.testing.assert_allclose(h, study.loop(a, b), rtol=1e-12)
        _, _, depth, work = study.depth_and_work(steps)
        assert len(rounds) == depth
        assert 2 * sum(count for _, count in rounds) == work


def test_depth_grows_as_log_and_work_as_four_t():
    loop_depth, loop_work, scan_depth, scan_work = study.depth_and_work(4096)
    assert (loop_depth, loop_work) == (4096, 4096)
    assert scan_depth == 23  # 2 log2(4096) - 1: the last level has no even step
    assert 3.9 * 4096 < scan_work < 4 * 4096


def test_bad_kind_and_cells_raise():
    with pytest.raises(ValueError, match="kind"):
        study.make_layer("transformer", 4)
    with pytest.raises(ValueError, match="cells"):
        study.check_cells(["min_gru", "mamba"])
