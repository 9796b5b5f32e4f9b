"""Smoke tests of the benchmark suite (`benchmarks/run.py --quick`): it runs
end to end in fresh processes, on each of the three backends, and writes the
JSON and Markdown it promises, with torch.nn timed beside kerasrnn and the
backend's built-in in the same process. No timing is asserted: only that
every implementation was timed, and how the ratios relate the times."""

import importlib.util
import json

import pytest

from tests.benchmarks.helpers import run_benchmark

KEEP_PATH = {
    "kerasrnn-fast": "fast",
    "kerasrnn-readable": "readable",
    "matmul-floor": "matmuls only",
}


def has_kernels(backend):
    """Whether kerasrnn has fused kernels for `backend` (`kerasrnn.fast.<backend>`)."""
    return importlib.util.find_spec(f"kerasrnn.fast.{backend}") is not None


def test_quick_benchmark_on_every_backend_times_torch_beside(tmp_path):
    run_benchmark(
        tmp_path, "--quick", "--backend", "all", "--kinds", "lstm", "--threads", "1"
    )
    builtin_paths = {
        "tensorflow": "built-in",  # no cuDNN on a CPU: Keras's generic loop
        "jax": "built-in",
        "torch": "built-in, torch loop",
    }
    for backend, builtin_path in builtin_paths.items():
        stem = tmp_path / f"{backend}-cpu-quick"
        report = json.loads(stem.with_suffix(".json").read_text())
        assert report["machine"]["backend"] == backend
        assert report["machine"]["threads"] == 1
        assert report["machine"]["head"] == "dense"
        rows = {r["implementation"]: r for r in report["results"]}
        assert {"keras", "kerasrnn", "torch"} <= set(rows), backend
        assert rows["keras"]["path"] == builtin_path
        assert rows["torch"]["path"] == "native"
        path = rows["kerasrnn"]["path"]
        if backend == "tensorflow":
            assert path == "fast"
        assert path in ("fast", "readable"), (backend, path)
        # A forced row only where "auto" took the other path, and the fast
        # one only where the backend has kernels; else it says why not.
        expected = {"keras", "kerasrnn", "torch", "matmul-floor"}
        expected.add("kerasrnn-readable" if path == "fast" else "kerasrnn-fast")
        if path == "readable" and not has_kernels(backend):
            expected.remove("kerasrnn-fast")
            assert "no fused kernels" in report["skipped"]["LSTM kerasrnn-fast"]
        assert set(rows) == expected, backend
        for impl, row in rows.items():
            assert row["path"] == KEEP_PATH.get(impl, row["path"])
            assert row["kind"] == "lstm" and row["timed_steps"] == 3
            assert row["train_ms"] > 0 and row["infer_ms"] > 0
            # Both ratios were taken in this one process, from its medians.
            for what in ("train", "infer"):
                torch_ms = rows["torch"][f"{what}_ms"]
                keras_ms = rows["keras"][f"{what}_ms"]
                assert row[f"{what}_ratio_torch"] == pytest.approx(
                    row[f"{what}_ms"] / torch_ms, rel=1e-9
                )
                assert row[f"{what}_ratio"] == pytest.approx(
                    row[f"{what}_ms"] / keras_ms, rel=1e-9
                )
        assert rows["keras"]["train_ratio"] == 1.0
        assert rows["torch"]["train_ratio_torch"] == 1.0
        table = stem.with_suffix(".md").read_text()
        assert f"Backend `{backend}`" in table
        assert "matmul-floor: the layer's recurrent products" in table
        assert "the layer's last output into Dense(1)" in table
        assert "| LSTM | 12 | 16 | kerasrnn |" in table
        assert "| LSTM | 12 | 16 | torch | native |" in table
        assert table.count("\n| LSTM |") == len(expected)


def test_several_timing_processes_are_merged(tmp_path):
    backend = run_benchmark(
        tmp_path, "--quick", "--kinds", "gru", "--impls", "keras,kerasrnn",
        "--threads", "1", "--timing-processes", "2",
    )  # fmt: skip
    report = json.loads((tmp_path / f"{backend}-cpu-quick.json").read_text())
    rows = {r["implementation"]: r for r in report["results"]}
    assert set(rows) == {"keras", "kerasrnn"}
    for row in rows.values():
        assert row["timed_steps"] == 2 * 3
        assert len(row["train_ms_processes"]) == 2
        assert len(row["infer_ratio_processes"]) == 2
        assert row["train_ratio_torch"] is None  # torch.nn was not asked for
    assert rows["keras"]["train_ratio"] == 1.0
    table = (tmp_path / f"{backend}-cpu-quick.md").read_text()
    assert "in each of 2 fresh processes" in table


def test_flush_denormals_reaches_the_workers_and_the_header(tmp_path):
    # Each worker calls kerasrnn.fast.torch.denormals.flush_denormals before
    # it builds anything (a failure there fails the run); the report says so.
    run_benchmark(
        tmp_path, "--quick", "--backend", "torch", "--kinds", "gru",
        "--impls", "keras,kerasrnn,torch", "--threads", "1", "--flush-denormals",
    )  # fmt: skip
    report = json.loads((tmp_path / "torch-cpu-quick.json").read_text())
    assert report["machine"]["flush_denormals"] is True
    assert {r["implementation"] for r in report["results"]} == {
        "keras",
        "kerasrnn",
        "torch",
    }
    table = (tmp_path / "torch-cpu-quick.md").read_text()
    assert "subnormal numbers flushed to zero on PyTorch's threads" in table
