"""The parent side (`benchmarks/bench/suite.py`): which processes time
which implementations, and how ratios are formed across them. The worker
processes are replaced by fixed rows here."""

import pytest

from benchmarks.bench import configs, report, suite


def row(impl, train_ms, infer_ms, torch_ms=None):
    """A worker's row: ratios to `keras` (and `torch`) of its own process."""
    return {
        "kind": "lstm",
        "timesteps": 12,
        "units": 16,
        "implementation": impl,
        "path": "native" if impl == "torch" else "built-in",
        "train_ms": train_ms,
        "infer_ms": infer_ms,
        "train_ratio": 1.0 if impl == "keras" else None,
        "infer_ratio": 1.0 if impl == "keras" else None,
        "train_ratio_torch": 1.0 if impl == "torch" else None,
        "infer_ratio_torch": 1.0 if impl == "torch" else None,
        "timed_steps": 3,
    }


@pytest.fixture
def workers(monkeypatch):
    """Records the implementations each worker was asked for; answers with
    fixed times (keras 40/10 ms, kerasrnn 20/4 ms, torch 10/2 ms)."""
    asked = []
    times = {"keras": (40.0, 10.0), "kerasrnn": (20.0, 4.0), "torch": (10.0, 2.0)}

    def child(args, backend, kind, shape, memory_of=None, impls=None):
        asked.append(list(impls))
        return {"rows": [row(i, *times[i]) for i in impls], "skipped": {}}

    monkeypatch.setattr(suite, "child", child)
    return asked


def test_torch_shares_the_processes_by_default(workers):
    args = configs.parse_args(["--quick", "--impls", "keras,kerasrnn,torch"])
    assert args.torch_process == "same"
    suite.timed_rows(args, "jax", "lstm", (12, 16))
    assert workers == [["keras", "kerasrnn", "torch"]]


def test_torch_in_its_own_processes_gets_ratios_across_them(workers):
    args = configs.parse_args(
        ["--quick", "--impls", "keras,kerasrnn,torch", "--torch-process", "own",
         "--timing-processes", "2"]
    )  # fmt: skip
    rows, _ = suite.timed_rows(args, "tensorflow", "lstm", (12, 16))
    assert workers == [["keras", "kerasrnn"]] * 2 + [["torch"]] * 2
    by_impl = {r["implementation"]: r for r in rows}
    assert by_impl["kerasrnn"]["train_ratio_torch"] == 2.0  # 20 / 10 ms
    assert by_impl["kerasrnn"]["infer_ratio_torch"] == 2.0  # 4 / 2 ms
    assert by_impl["torch"]["train_ratio"] == 0.25  # 10 / 40 ms
    assert by_impl["torch"]["infer_ratio"] == 0.2  # 2 / 10 ms
    assert by_impl["torch"]["train_ratio_torch"] == 1.0
    assert all("own processes" in r["note"] for r in rows)
    info = report.machine_info(args, "tensorflow")
    table = report.markdown(info, rows)
    assert "torch.nn in processes of its own" in table


def test_memory_ratios_only_between_rows_measured_alike():
    """On JAX the Keras rows read XLA's plan and the torch row its resident
    set: the torch row gets no memory ratio there, the others do."""
    rows = [
        {"implementation": "keras", "peak_mib": 40.0, "memory_method": "xla"},
        {"implementation": "kerasrnn", "peak_mib": 20.0, "memory_method": "xla"},
        {"implementation": "torch", "peak_mib": 50.0, "memory_method": "VmHWM"},
    ]
    suite.set_memory_ratios(rows)
    ratios = [r.get("memory_ratio") for r in rows]
    assert ratios == [1.0, 0.5, None]
