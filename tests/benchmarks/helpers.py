"""What the tests of the benchmark suite share: running `benchmarks/run.py`
in a fresh process."""

import os
import subprocess
import sys

import keras

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_script(script, *flags, timeout=600):
    """`script *flags` (a path under `benchmarks/`) in a fresh process on
    this test's backend unless `flags` name another; asserts that it
    succeeded and returns its standard output."""
    env = dict(
        os.environ, KERAS_BACKEND=keras.backend.backend(), TF_CPP_MIN_LOG_LEVEL="2"
    )
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", script), *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def run_benchmark(tmp_path, *flags, timeout=600):
    """`benchmarks/run.py *flags`, writing into `tmp_path` (see
    `run_script`); returns the test's backend's name."""
    run_script("run.py", *flags, "--output", str(tmp_path), timeout=timeout)
    return keras.backend.backend()
