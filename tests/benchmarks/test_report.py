"""The report (`benchmarks/bench/report.py`): the rows of several processes
merged into medians of ratios taken within each process, and the table."""

import pytest

from benchmarks.bench import configs, report


def test_markdown_table_lists_every_row():
    args = configs.parse_args(["--quick", "--threads", "2"])
    info = report.machine_info(args, "jax")
    assert info["backend"] == "jax" and info["threads"] == 2
    assert "keras" in info["versions"]
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
        "train_ratio_torch": 4.0,
        "infer_ratio_torch": 5.0,
        "peak_mib": 3.0,
        "memory_ratio": 1.0,
        "memory_method": "TF allocator peak minus resident before",
    }
    table = report.markdown(info, [row, dict(row, implementation="kerasrnn")])
    assert (
        "| GRU | 12 | 16 | keras | built-in | 2.0 | 1.00 | 1.0 | 1.00 | 3.0 | 1.00 "
        "| 4.00 | 5.00 |" in table
    )
    assert "| GRU | 12 | 16 | kerasrnn |" in table
    assert "| train × torch | inference × torch |" in table
    assert "2 threads" in table and "Peak memory: TF allocator" in table
    assert "Backend `jax`" in table
    torch_row = dict(row, implementation="torch", memory_method="VmHWM growth")
    table = report.markdown(info, [row, torch_row])
    assert (
        "Peak memory (a ratio only between rows measured alike): keras: TF "
        "allocator peak minus resident before; torch: VmHWM growth." in table
    )


def test_extra_kinds_and_rows_not_timed_are_said_under_the_table():
    args = configs.parse_args(["--quick"])
    row = {
        "kind": "min_gru",
        "timesteps": 12,
        "units": 16,
        "implementation": "keras",
        "path": "built-in GRU",
        "train_ms": 2.0,
        "infer_ms": 1.0,
        "train_ratio": 1.0,
        "infer_ratio": 1.0,
    }
    table = report.markdown(
        report.machine_info(args),
        [row],
        skipped={"MinGRU kerasrnn-fast": "no fused kernels"},
    )
    assert "| MinGRU | 12 | 16 | keras | built-in GRU | 2.0 |" in table
    assert "References: MinGRU against keras.layers.GRU and torch.nn.GRU." in table
    assert "Not timed: MinGRU kerasrnn-fast: no fused kernels." in table


def test_ratios_of_several_processes_are_their_median_with_range():
    """With `--timing-processes N` each configuration is timed in N fresh
    processes; a ratio is taken within a process (side by side), and the
    table gives the median of the N ratios and their range."""

    def row(impl, train_ms, ratio, path="fast", torch_ratio=None):
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
            "train_ratio_torch": torch_ratio,
            "infer_ratio_torch": torch_ratio,
            "timed_steps": 3,
        }

    runs = [
        [row("keras", 40.0, 1.0, "built-in"), row("kerasrnn", 24.0, 0.60, "fast", 1.2)],
        [row("keras", 33.0, 1.0, "built-in"), row("kerasrnn", 24.4, 0.74, "fast", 1.1)],
        [row("keras", 46.0, 1.0, "built-in"), row("kerasrnn", 28.0, 0.61, "fast", 1.3)],
    ]
    keras_row, ours = report.merge_processes(runs)
    assert ours["train_ratio"] == 0.61  # not 24.4 / 40.0, a cross-process ratio
    assert ours["train_ratio_processes"] == [0.60, 0.74, 0.61]
    assert ours["train_ratio_torch"] == 1.2
    assert ours["train_ratio_torch_processes"] == [1.2, 1.1, 1.3]
    assert keras_row["train_ratio_torch"] is None  # no torch row was timed
    assert ours["train_ms"] == 24.4 and keras_row["train_ms"] == 40.0
    assert ours["timed_steps"] == 9 and ours["path"] == "fast"
    args = configs.parse_args(["--quick", "--timing-processes", "3"])
    table = report.markdown(report.machine_info(args), [keras_row, ours])
    assert "| LSTM | 12 | 16 | kerasrnn | fast | 24.4 | 0.61 (0.60–0.74) |" in table
    assert "| 1.20 (1.10–1.30) | 1.20 (1.10–1.30) |" in table
    assert "in each of 3 fresh processes" in table
    with pytest.raises(RuntimeError, match="different implementations"):
        report.merge_processes([runs[0], runs[1][::-1]])
