"""Smoke test of the benchmark suite (`benchmarks/run.py --quick`): it runs
end to end in fresh processes and writes the JSON and Markdown it promises.
No timing is asserted: only that every implementation was timed."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "run.py")


def run_benchmark(tmp_path, *flags):
    """`benchmarks/run.py *flags` in a fresh process on this test's backend,
    writing into `tmp_path`; returns the backend's name."""
    backend = keras.backend.backend()
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, SCRIPT, *flags, "--output", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return backend


def test_quick_benchmark_writes_table_and_json(tmp_path):
    backend = run_benchmark(
        tmp_path,
        "--quick",
        "--kinds",
        "lstm",
        "--impls",
        "keras,kerasrnn,kerasrnn-readable",
        "--threads",
        "1",
        "--timing-processes",
        "2",
    )
    stem = tmp_path / f"{backend}-cpu-quick"
    report = json.loads(stem.with_suffix(".json").read_text())
    assert report["machine"]["backend"] == backend
    assert report["machine"]["threads"] == 1
    assert report["machine"]["head"] == "dense"
    rows = {r["implementation"]: r for r in report["results"]}
    expected = {"keras", "kerasrnn"}
    if backend == "tensorflow":
        expected.add("kerasrnn-readable")
        assert rows["kerasrnn"]["path"] == "fast"
        assert rows["kerasrnn-readable"]["path"] == "readable"
    else:
        assert rows["kerasrnn"]["path"] == "readable"
    assert set(rows) == expected
    for row in rows.values():
        assert row["kind"] == "lstm" and row["timed_steps"] == 2 * 3
        assert len(row["train_ms_processes"]) == 2
        assert row["train_ms"] > 0 and row["infer_ms"] > 0
    assert rows["keras"]["train_ratio"] == 1.0
    # No cuDNN on a CPU: the built-in LSTM runs Keras's generic loop.
    assert rows["keras"]["path"] == "built-in"
    table = stem.with_suffix(".md").read_text()
    assert "the layer's last output into Dense(1)" in table
    assert "| LSTM | 12 | 16 | kerasrnn |" in table
    assert table.count("\n| LSTM |") == len(expected)


def test_builtin_kernel_is_named_only_where_keras_takes_one():
    """The path column names the backend kernel behind a built-in: none on a
    CPU except Keras's JAX GRU, whose kernel is a `lax.scan` on any device."""
    bench = import_benchmark()
    args = bench.parse_args(["--quick"])
    assert bench._builtin_kernel("simple_rnn", args) is None
    assert bench._builtin_kernel("lstm", args) is None
    expected_gru = "lax.scan" if keras.backend.backend() == "jax" else None
    assert bench._builtin_kernel("gru", args) == expected_gru


def import_benchmark():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import run as bench
    finally:
        sys.path.pop(0)
    return bench


@pytest.mark.parametrize("head", ["dense", "none"])
def test_head_is_what_the_loss_reads(head):
    """`--head dense` (the default) times the layer inside a model, its last
    output into `Dense(1)`; `--head none` puts the loss on the layer's output.
    The torch rows get the same head."""
    bench = import_benchmark()
    flags = ["--quick"] + ([] if head == "dense" else ["--head", head])
    args = bench.parse_args(flags)
    assert args.head == head
    x, y = bench._data((12, 16), args)
    width = 1 if head == "dense" else 16
    assert y.shape == (4, width)
    keras_bench, _ = bench._build("keras", "lstm", (12, 16), args, x, y)
    assert keras_bench.model.output_shape == (4, width)
    assert isinstance(keras_bench.model.layers[-1], keras.layers.Dense) == (
        head == "dense"
    )
    keras_bench.train()  # the loss's shapes agree
    torch = pytest.importorskip("torch")
    torch_bench, _ = bench._build("torch", "lstm", (12, 16), args, x, y)
    if head == "dense":
        assert isinstance(torch_bench.head, torch.nn.Linear)
        assert torch_bench.head.out_features == 1
        trained = [p for g in torch_bench.optimizer.param_groups for p in g["params"]]
        assert any(p is torch_bench.head.weight for p in trained)
    else:
        assert isinstance(torch_bench.head, torch.nn.Identity)
    before = [p.detach().clone() for p in torch_bench.head.parameters()]
    torch_bench.train()
    after = list(torch_bench.head.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(after, before))


def test_markdown_table_lists_every_row():
    bench = import_benchmark()
    args = bench.parse_args(["--quick", "--threads", "2"])
    info = bench.machine_info(args)
    row = {
        "kind": "gru",
        "timesteps": 12,
        "units": 16,
        "implementation": "keras",
        "path": "built-in",
        "train_ms": 2.0,
        "infer_ms": 1.0,
        "train_ratio": 1.0,
        "infer_ratio": 1.0,
        "peak_mib": 3.0,
        "memory_ratio": 1.0,
        "memory_method": "TF allocator peak minus resident before",
    }
    table = bench.markdown(info, [row, dict(row, implementation="kerasrnn")])
    assert (
        "| GRU | 12 | 16 | keras | built-in | 2.0 | 1.00 | 1.0 | 1.00 | 3.0 | 1.00 |"
        in table
    )
    assert "| GRU | 12 | 16 | kerasrnn |" in table
    assert "2 threads" in table and "Peak memory: TF allocator" in table


def test_peak_memory_counts_the_states_kept_for_backprop(tmp_path):
    """The memory column must count what a training step holds: an LSTM
    keeps at least every hidden state for its backward pass, T*B*U floats
    (3.1 MiB here). TensorFlow's allocator statistics read less than that."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the CPU memory method reads /proc/self")
    backend = run_benchmark(
        tmp_path,
        "--kinds",
        "lstm",
        "--shapes",
        "200x64",
        "--impls",
        "keras",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--rounds",
        "1",
        "--memory",
        "yes",
        "--memory-processes",
        "2",
    )
    report = json.loads((tmp_path / f"{backend}-cpu.json").read_text())
    (row,) = report["results"]
    states_mib = 200 * 64 * 64 * 4 / 2**20
    # The reported peak is the median of the two processes' readings.
    assert len(row["peak_mib_processes"]) == 2, row
    assert min(row["peak_mib_processes"]) >= states_mib, row
    assert row["peak_mib"] == sum(row["peak_mib_processes"]) / 2
    assert "VmHWM" in row["memory_method"]
    assert "median of 2 fresh processes" in row["memory_method"]


def test_the_batch_is_a_backend_tensor_made_once():
    """Every step reads the same backend tensors: none is converted from
    NumPy inside the timed or measured step."""
    bench = import_benchmark()
    args = bench.parse_args(["--quick"])
    x, y = bench._data((12, 16), args)
    keras_bench, _ = bench._build("kerasrnn", "gru", (12, 16), args, x, y)
    batch = keras_bench.batch
    assert len(batch) == 2
    for tensor, array in zip(batch, (x, y)):
        assert not isinstance(tensor, np.ndarray)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(tensor), array)
    keras_bench.train()
    assert keras_bench.batch is batch


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


def test_ratios_of_several_processes_are_their_median_with_range():
    """With `--timing-processes N` each configuration is timed in N fresh
    processes; a ratio is taken within a process (side by side), and the
    table gives the median of the N ratios and their range."""
    bench = import_benchmark()

    def row(impl, train_ms, ratio, path="fast"):
        return {
            "kind": "lstm",
            "timesteps": 12,
            "units": 16,
            "implementation": impl,
            "path": path,
            "train_ms": train_ms,
            "infer_ms": train_ms / 2,
            "train_ratio": ratio,
            "infer_ratio": ratio,
            "timed_steps": 3,
        }

    runs = [
        [row("keras", 40.0, 1.0, "built-in"), row("kerasrnn", 24.0, 0.60)],
        [row("keras", 33.0, 1.0, "built-in"), row("kerasrnn", 24.4, 0.74)],
        [row("keras", 46.0, 1.0, "built-in"), row("kerasrnn", 28.0, 0.61)],
    ]
    keras_row, ours = bench._merge_processes(runs)
    assert ours["train_ratio"] == 0.61  # not 24.4 / 40.0, a cross-process ratio
    assert ours["train_ratio_processes"] == [0.60, 0.74, 0.61]
    assert ours["train_ms"] == 24.4 and keras_row["train_ms"] == 40.0
    assert ours["timed_steps"] == 9 and ours["path"] == "fast"
    args = bench.parse_args(["--quick", "--timing-processes", "3"])
    table = bench.markdown(bench.machine_info(args), [keras_row, ours])
    assert "| LSTM | 12 | 16 | kerasrnn | fast | 24.4 | 0.61 (0.60–0.74) |" in table
    assert "in each of 3 fresh processes" in table
    with pytest.raises(RuntimeError, match="different implementations"):
        bench._merge_processes([runs[0], runs[1][::-1]])


@pytest.mark.parametrize("flag", ["--memory-processes", "--timing-processes"])
def test_process_counts_must_be_positive(tmp_path, flag):
    backend = keras.backend.backend()
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, SCRIPT, "--quick", flag, "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert f"{flag} must be at least 1. Received: 0" in done.stderr
