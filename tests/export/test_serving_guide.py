"""The serving guide's commands, run as a new user would: its `export.py`,
then each `serve_*.py` in a Python where kerasrnn and Keras cannot be
imported. The scripts run on the default (TensorFlow) backend, whatever
backend runs the tests."""

import os
import re
import subprocess
import sys

GUIDE = os.path.join(
    os.path.dirname(__file__), "..", "..", "docs", "guide", "serving.md"
)
# A Python that cannot import kerasrnn or Keras, then runs the script named.
BLOCKED = (
    "import runpy, sys\n"
    "sys.modules['kerasrnn'] = sys.modules['keras'] = None\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')\n"
)


def guide_scripts():
    """`{file name: code}` of the guide's Python blocks that start with
    `# <name>.py`, in the guide's order."""
    with open(GUIDE) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    scripts = {}
    for block in blocks:
        first = block.splitlines()[0]
        match = re.fullmatch(r"# (\w+\.py)", first)
        if match:
            scripts[match.group(1)] = block
    return scripts


def _run(args, cwd):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_the_guide_names_its_scripts():
    assert list(guide_scripts()) == [
        "export.py",
        "serve_onnx.py",
        "serve_litert.py",
        "serve_saved_model.py",
    ]


def test_the_guide_commands_run_and_match_predict(tmp_path):
    scripts = guide_scripts()
    for name, code in scripts.items():
        (tmp_path / name).write_text(code)
    _run(["export.py"], tmp_path)
    for name in ("model.onnx", "model.tflite", "model_saved"):
        assert (tmp_path / name).exists(), name
    for name in ("serve_onnx.py", "serve_litert.py", "serve_saved_model.py"):
        out = _run(["-c", BLOCKED, name], tmp_path)
        (difference,) = re.findall(r"max difference from predict: (\S+)", out)
        assert float(difference) <= 1e-5, (name, out)
