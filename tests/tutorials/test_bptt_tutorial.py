"""Smoke test of tutorials/bptt_from_scratch.py: runs it end to end with
--quick and checks the files it says it writes and the gradient agreement
it reports (1e-5 relative, the issue's tolerance)."""

import importlib.util
import json
import pathlib

import keras
import pytest

TUTORIAL = pathlib.Path(__file__).parents[2] / "tutorials" / "bptt_from_scratch.py"


def load_tutorial():
    spec = importlib.util.spec_from_file_location("bptt_from_scratch", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    keras.backend.backend() not in ("tensorflow", "jax"),
    reason="the tutorial's autodiff comparison covers TensorFlow and JAX",
)
def test_quick_run_writes_its_outputs_and_gradients_agree(tmp_path):
    tutorial = load_tutorial()
    results = tutorial.main(["--quick", "--output-dir", str(tmp_path)])

    for name in ("gradient_check.json", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    for name in ("jacobian_norms.png", "clipping.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"]["quick"] is True
    errors = saved["gradient_check"]["relative_errors"]
    assert set(errors) == {"W_xh", "W_hh", "b_h", "W_hy", "b_y"}
    for name, row in errors.items():
        assert row["vs_finite_differences"] < 1e-5, name
        assert row["vs_kerasrnn_autodiff"] < 1e-5, name
    check = saved["gradient_check"]
    assert check["kerasrnn_loss"] == pytest.approx(check["loss"], rel=1e-12)

    # below radius 1 the product shrinks, above it the linear one grows
    linear = saved["jacobian_norm_at_t0"]["linear"]
    assert linear["0.9"] < 1.0 < linear["1.1"]
    assert saved["jacobian_norm_at_t0"]["tanh"]["0.9"] <= linear["0.9"]
    assert set(saved["clipping"]) == {"no clipping", "clipnorm=1.0"}
    clipped = saved["clipping"]["clipnorm=1.0"]
    assert clipped["diverged_at"] is None
    assert results["seconds"] > 0
