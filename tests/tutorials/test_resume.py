"""Resuming after a crash.

- A tutorial killed with SIGKILL mid-training resumes when rerun, from its
  last completed epoch, and ends with the metrics of an uninterrupted run.
  The uninterrupted run and the run to be killed start together (two cores);
  the latter is killed, as a whole process group, as soon as a
  `BackupAndRestore` backup records a completed epoch, and the same command
  is then run again.
- In process, on every backend: with dropout and shuffling, a run resumed
  after a crash repeats the uninterrupted run exactly, thanks to
  `experiment.ReseedEachEpoch` (and only with it).
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUTORIAL = os.path.join(ROOT, "tutorials", "quickstart.py")
# Small but not --quick: enough batches per epoch that the kill lands while
# an epoch is running, not between two models.
ARGS = ["--epochs", "3", "--units", "8", "--seq-len", "10", "--device", "cpu"]
TIMEOUT_S = 600  # per tutorial run; a guard against hangs, not a timing check
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+)\s*$", re.MULTILINE)

tutorial_test = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow" or not os.path.exists(TUTORIAL),
    reason="runs the tutorial once, on TensorFlow, in the TensorFlow session",
)


def _command(output_dir):
    return [sys.executable, TUTORIAL, *ARGS, "--output-dir", str(output_dir)]


def _env():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _start(output_dir, log_path):
    log = open(log_path, "w")
    process = subprocess.Popen(
        _command(output_dir),
        cwd=ROOT,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed as one
    )
    process.log = log
    return process


def _kill_group(process):
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    process.log.close()


def _backups(output_dir):
    """{model name: last completed epoch} of the backups left in output_dir."""
    found = {}
    for path in glob.glob(
        os.path.join(output_dir, "backup", "*", "training_metadata.json")
    ):
        try:
            with open(path) as f:
                found[os.path.basename(os.path.dirname(path))] = json.load(f)["epoch"]
        except (OSError, ValueError, KeyError):
            continue  # being written right now
    return found


def _wait(process, what):
    try:
        process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not finish within {TIMEOUT_S} s")


def _results(output_dir):
    with open(os.path.join(output_dir, "results.json")) as f:
        return json.load(f)["results"]


@tutorial_test
def test_sigkilled_tutorial_resumes_from_last_epoch_with_same_metrics(tmp_path):
    reference_dir, run_dir = tmp_path / "uninterrupted", tmp_path / "interrupted"
    reference = _start(reference_dir, tmp_path / "uninterrupted.log")
    victim = _start(run_dir, tmp_path / "killed.log")
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while victim.poll() is None and time.monotonic() < deadline:
            if any(epoch >= 1 for epoch in _backups(run_dir).values()):
                os.killpg(victim.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        _kill_group(victim)
        assert victim.returncode == -signal.SIGKILL, (
            f"the run ended (rc={victim.returncode}) before it could be killed "
            "mid-training: " + (tmp_path / "killed.log").read_text()[-2000:]
        )
        left = _backups(run_dir)
        assert len(left) == 1, f"expected one interrupted model, found backups {left}"
        ((killed_model, completed),) = left.items()

        rerun = subprocess.run(
            _command(run_dir),
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        _wait(reference, "the uninterrupted run")
        assert reference.returncode == 0, (tmp_path / "uninterrupted.log").read_text()[
            -3000:
        ]
    finally:
        _kill_group(victim)
        _kill_group(reference)

    expected, resumed = _results(reference_dir), _results(run_dir)
    models = list(expected)
    assert killed_model in models and list(resumed) == models

    # The rerun trained every model in order, the killed one from the epoch
    # after its last completed one (Keras counts epochs from 1 in its log).
    epochs = [(int(a), int(b)) for a, b in EPOCH_LINE.findall(rerun.stdout)]
    total = epochs[0][1]
    want = []
    for name in models:
        first = completed + 1 if name == killed_model else 1
        want += [(e, total) for e in range(first, total + 1)]
    assert epochs == want, (
        f"killed {killed_model} after epoch {completed}; rerun ran {epochs}"
    )
    assert _backups(run_dir) == {}, "a finished run leaves no backup behind"

    # Same final metrics as the run that was never interrupted.
    for name in models:
        assert resumed[name]["test_mse"] == pytest.approx(
            expected[name]["test_mse"], rel=1e-6, abs=1e-7
        ), name


class _Crash(keras.callbacks.Callback):
    """Stops training with an exception after `epochs` epochs, as a crash would
    (Keras then skips `on_train_end`, so the backup stays)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise RuntimeError("simulated crash")


def _fit_with_dropout(backup_dir, reseed, crash_after=None):
    """A fresh model and fit, as a rerun of the same command would make them."""
    import numpy as np

    import kerasrnn
    from kerasrnn.teaching import experiment

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((48, 6, 3)).astype("float32")
    y = rng.standard_normal((48, 1)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            kerasrnn.LSTM(4, dropout=0.3, recurrent_dropout=0.3, seed=3),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(0.02), "mse")
    callbacks = [keras.callbacks.BackupAndRestore(str(backup_dir))]
    if reseed:
        callbacks.append(experiment.ReseedEachEpoch(11))
    if crash_after is not None:
        callbacks.append(_Crash(crash_after))
    history = model.fit(
        x, y, batch_size=8, epochs=4, shuffle=True, callbacks=callbacks, verbose=0
    )
    return [w.copy() for w in model.get_weights()], history.history["loss"]


def _resumed_after_a_crash(backup_dir, reseed):
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit_with_dropout(backup_dir, reseed, crash_after=2)
    return _fit_with_dropout(backup_dir, reseed)


def test_reseeding_makes_a_resumed_run_with_dropout_and_shuffling_exact(tmp_path):
    """Dropout masks and shuffled batches are random: only if every epoch's
    randomness depends on the seed and the epoch alone does the run resumed
    at epoch 3 repeat the uninterrupted run's last two epochs exactly."""
    import numpy as np

    weights, losses = _fit_with_dropout(tmp_path / "whole", reseed=True)
    resumed, resumed_losses = _resumed_after_a_crash(tmp_path / "crashed", reseed=True)
    assert len(resumed_losses) == 2  # epochs 3 and 4 only
    np.testing.assert_allclose(resumed_losses, losses[2:], rtol=1e-6)
    for got, want in zip(resumed, weights):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)

    # The comparison is sensitive: without reseeding, Keras restores the
    # weights but not the random generators, and the resumed run drifts.
    weights, _ = _fit_with_dropout(tmp_path / "whole_plain", reseed=False)
    resumed, _ = _resumed_after_a_crash(tmp_path / "crashed_plain", reseed=False)
    assert max(np.abs(a - b).max() for a, b in zip(resumed, weights)) > 1e-4
