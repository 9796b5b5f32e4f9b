"""The memory worker (`benchmarks/bench/memory.py`), through the suite in
fresh processes on this test's backend: the peak counts what a training
step holds, and nothing of the harness's."""

import json
import sys

import keras
import pytest

from tests.benchmarks.helpers import run_benchmark


def test_peak_memory_counts_the_states_kept_for_backprop(tmp_path):
    """The memory column must count what a training step holds: an LSTM
    keeps at least every hidden state for its backward pass, T*B*U floats
    (3.1 MiB here). TensorFlow's allocator statistics read less than that.
    On JAX the measure is XLA's plan for the compiled step (the resident
    set of a warm XLA:CPU step does not grow: its arena is kept)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the CPU memory method reads /proc/self")
    backend = run_benchmark(
        tmp_path,
        "--kinds", "lstm", "--shapes", "200x64", "--impls", "keras",
        "--steps", "2", "--warmup", "1", "--rounds", "1",
        "--memory", "yes", "--memory-processes", "2",
    )  # fmt: skip
    report = json.loads((tmp_path / f"{backend}-cpu.json").read_text())
    (row,) = report["results"]
    states_mib = 200 * 64 * 64 * 4 / 2**20
    # The reported peak is the median of the two processes' readings.
    assert len(row["peak_mib_processes"]) == 2, row
    assert min(row["peak_mib_processes"]) >= states_mib, row
    assert row["peak_mib"] == sum(row["peak_mib_processes"]) / 2
    method = "temp_size_in_bytes" if backend == "jax" else "VmHWM"
    assert method in row["memory_method"]
    assert "median of 2 fresh processes" in row["memory_method"]


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the TensorFlow fast path"
)
def test_peak_memory_holds_no_copy_of_the_input_batch(tmp_path):
    """With 4 units and 256 input features the input (12.5 MiB) dwarfs the
    states the fast path keeps (0.2 MiB) and the fast path reads the input
    in place; feeding the step NumPy made two copies of it (25 MiB)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the CPU memory method reads /proc/self")
    backend = run_benchmark(
        tmp_path,
        "--kinds", "simple_rnn", "--shapes", "200x4", "--impls", "kerasrnn",
        "--batch", "64", "--features", "256", "--steps", "2", "--warmup", "1",
        "--rounds", "1", "--memory", "yes", "--memory-processes", "1",
    )  # fmt: skip
    report = json.loads((tmp_path / f"{backend}-cpu.json").read_text())
    (row,) = report["results"]
    input_mib = 64 * 200 * 256 * 4 / 2**20
    assert row["peak_mib"] < input_mib / 2, row
