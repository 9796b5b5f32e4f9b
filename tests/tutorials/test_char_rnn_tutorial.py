"""Smoke test of `tutorials/char_rnn.py --quick`: it trains, prints and
writes what it claims (bits per character per epoch, the published
figures, the gradient reach, samples, the comparison table), the step-by-step generator agrees with the whole-prefix
model, and on TensorFlow the command it prints runs the exported generator
in a Python where `import kerasrnn` fails."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import keras
import pytest

TUTORIAL = pathlib.Path(__file__).resolve().parents[2] / "tutorials" / "char_rnn.py"
PNG = b"\x89PNG\r\n\x1a\n"


def load_tutorial():
    spec = importlib.util.spec_from_file_location("char_rnn_tutorial", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run(tmp_path, capsys):
    tutorial = load_tutorial()
    out = tmp_path / "runs"
    results = tutorial.main(["--quick", "--output-dir", str(out)])
    printed = capsys.readouterr().out

    assert results["cell"] == "lstm"
    assert results["flags"]["quick"] is True
    assert len(results["val_bits_per_char"]) == 2  # one per epoch
    assert len(results["stepwise_difference"]) == 2
    assert max(results["stepwise_difference"].values()) < 1e-5
    assert "| epoch | updates | train bits/char | validation bits/char |" in printed
    assert "nanoGPT README" in printed and "1.4697 nats" in printed
    assert "| after epoch | 1 back | 10 back | reach |" in printed  # h, c
    assert "||dL/dh||" in printed and "||dL/dc||" in printed
    assert "Step by step vs the whole prefix at once" in printed
    for temperature in ("0.5", "0.8", "1"):
        assert f"--- temperature {temperature}\nShall I " in printed
    cell_dir = out / "lstm"
    written = json.loads((cell_dir / "results.json").read_text())
    assert written["stepwise_difference"] == results["stepwise_difference"]
    assert written["settings"]["units"] == tutorial.QUICK["units"]
    assert (cell_dir / "samples.md").read_text().count("## epoch") == 2
    for png in ("bits_per_character.png", "gradient_reach.png"):
        assert (out / png).read_bytes()[:8] == PNG
    assert (cell_dir / "gradient_norms.png").read_bytes()[:8] == PNG

    comparison = (out / "comparison.md").read_text()
    assert comparison.count("| LSTM | 16 x 1 |") == 1

    if keras.backend.backend() == "tensorflow":
        check_export_command(results["export_command"], results["alphabet"], tmp_path)
    else:
        assert results["export_command"] is None


def check_export_command(command, alphabet, tmp_path):
    """Runs the printed command with a `kerasrnn` package first on the path
    whose import fails, from a folder where the real one is not found."""
    blocker = tmp_path / "blocker" / "kerasrnn"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("kerasrnn is blocked")\n')
    check = subprocess.run(
        [sys.executable, "-c", "import kerasrnn"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(blocker.parent), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert "kerasrnn is blocked" in check.stderr
    assert command.startswith('python -c "')
    code = command[len('python -c "') : -1]
    served = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={
            "PYTHONPATH": str(blocker.parent),
            "PATH": "/usr/bin:/bin",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    text = served.stdout[:-1]  # print's newline
    assert len(text) == 300 and set(text) <= set(alphabet)


def test_bad_flags_are_refused(tmp_path):
    tutorial = load_tutorial()
    with pytest.raises(SystemExit):
        tutorial.parse_args(["--cell", "transformer", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        tutorial.parse_args(["--units", "0", "--output-dir", str(tmp_path)])
    args, settings = tutorial.parse_args(["--output-dir", str(tmp_path)])
    assert settings.steps == tutorial.EPOCHS * tutorial.STEPS_PER_EPOCH
    assert (
        settings.clipnorm == tutorial.CLIPNORM
        and args.prompt == tutorial.BUILTIN_PROMPT
    )
