"""`benchmarks/side_by_side.py` runs end to end on the test's backend, in a
fresh process, and its ratios relate its times. No timing is asserted."""

import json

import keras
import pytest

from tests.benchmarks.helpers import run_script


def test_two_layers_and_the_probe_are_timed_in_one_process():
    backend = keras.backend.backend()
    stdout = run_script(
        "side_by_side.py",
        "--shapes", "8", "--units", "4", "--batch", "2", "--features", "3",
        "--steps", "1", "--rounds", "1", "--warmup", "1", "--threads", "1",
        "--probe",
        timeout=300,
    )  # fmt: skip
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert {(r["layer"], r["what"]) for r in rows} == {
        (layer, what)
        for layer in ("gru", "min_gru", "min_gru, no recurrence")
        for what in ("train", "infer")
    }
    assert {r["backend"] for r in rows} == {backend}
    for what in ("train", "infer"):
        by_layer = {r["layer"]: r for r in rows if r["what"] == what}
        assert by_layer["gru"]["x_reference"] == 1.0
        assert by_layer["min_gru"]["x_new"] == 1.0
        assert by_layer["min_gru"]["path"] in ("sequential", "scan")
        assert by_layer["min_gru, no recurrence"]["path"] == _probe_path()
        for r in by_layer.values():
            assert r["ms"] > 0
            ratio = r["ms"] / by_layer["gru"]["ms"]
            assert abs(r["x_reference"] - ratio) <= 0.0006  # rounded to 3 places
    assert "| 8 | min_gru, no recurrence |" in stdout


def test_a_layer_name_can_force_its_form():
    """`min_gru@sequential:min_gru@scan`: the scan against the loop (the GPU
    check of issue 28), each row reporting the path it took."""
    stdout = run_script(
        "side_by_side.py",
        "--shapes", "8", "--units", "4", "--batch", "2", "--features", "3",
        "--steps", "1", "--rounds", "1", "--warmup", "1", "--threads", "1",
        "--pairs", "min_gru@sequential:min_gru@scan",
        timeout=300,
    )  # fmt: skip
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert {(r["layer"], r["path"]) for r in rows} == {
        ("min_gru@sequential", "sequential"),
        ("min_gru@scan", "scan"),
    }


def test_a_bad_pair_or_form_is_refused_by_name(capsys):
    from benchmarks import side_by_side

    for pairs in ("gru:min_gru@parallel", "gru", "gru:tcn"):
        with pytest.raises(SystemExit):
            side_by_side.parse_args(["--pairs", pairs])
        assert "--pairs" in capsys.readouterr().err
    assert side_by_side.parse_args(["--pairs", "min_gru@sequential:min_gru@scan"]).pairs


def _probe_path():
    from benchmarks import side_by_side

    return side_by_side.probe_path()


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="torch.compile is the torch probe's"
)
def test_without_a_cxx_compiler_the_torch_probe_runs_eagerly(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler")
    stdout = run_script(
        "side_by_side.py",
        "--shapes", "8", "--units", "4", "--batch", "2", "--features", "3",
        "--steps", "1", "--rounds", "1", "--warmup", "1", "--threads", "1",
        "--probe",
        timeout=300,
    )  # fmt: skip
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    probes = [r for r in rows if r["layer"] == "min_gru, no recurrence"]
    assert probes and {r["path"] for r in probes} == {"eager"}
