"""Smoke test of `tutorials/lstm_variants.py --quick`: it trains every
architecture asked for on both tasks, writes results.json, results.md and
the box plot, and a rerun reloads the finished trials instead of training
them again."""

import importlib.util
import json
import math
import pathlib

import pytest

TUTORIAL = (
    pathlib.Path(__file__).resolve().parents[2] / "tutorials" / "lstm_variants.py"
)


def load_tutorial():
    spec = importlib.util.spec_from_file_location("lstm_variants_tutorial", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_outputs(out, architectures):
    results = json.loads((out / "results.json").read_text())
    assert set(results["summary"]) == {"adding", "char_lm"}
    for task, table in results["summary"].items():
        assert set(table) == set(architectures)
        for arch, entry in table.items():
            assert math.isfinite(entry["best"]) or entry["diverged"], (task, arch)
            assert entry["draws"] == 1
    assert results["settings"]["quick"] is True
    assert results["settings"]["train_steps"] == 2
    assert len(results["trials"]) == 2 * len(architectures)
    markdown = (out / "results.md").read_text()
    assert "### Beside Greff et al. (2015)" in markdown
    for arch in architectures:
        assert f"| {arch} |" in markdown
    assert (out / "scores.png").stat().st_size > 1000
    return results


def test_quick_run_writes_results_and_resumes(tmp_path):
    tutorial = load_tutorial()
    architectures = ["vanilla", "nfg", "cifg", "gru"]
    argv = [
        "--quick",
        "--output-dir",
        str(tmp_path),
        "--architectures",
        ",".join(architectures),
    ]
    tutorial.main(argv)
    first = check_outputs(tmp_path, architectures)
    second = tutorial.main(argv)
    assert [t["seconds"] for t in second["trials"]] == [
        t["seconds"] for t in first["trials"]
    ]


@pytest.mark.slow
def test_quick_run_of_every_architecture(tmp_path):
    tutorial = load_tutorial()
    tutorial.main(["--quick", "--output-dir", str(tmp_path)])
    from kerasrnn.teaching.studies import ARCHITECTURES

    check_outputs(tmp_path, ARCHITECTURES)


def test_bad_task_is_refused(tmp_path):
    tutorial = load_tutorial()
    with pytest.raises(SystemExit):
        tutorial.parse_args(["--tasks", "music", "--output-dir", str(tmp_path)])
