"""What the tests of the benchmark suite share: running `benchmarks/run.py`
in a fresh process."""

import os
import subprocess
import sys

import keras

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "run.py")


def run_benchmark(tmp_path, *flags, timeout=600):
    """`benchmarks/run.py *flags` in a fresh process, on this test's backend
    unless `flags` name another, writing into `tmp_path`; returns the
    backend's name."""
    backend = keras.backend.backend()
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, SCRIPT, *flags, "--output", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return backend
