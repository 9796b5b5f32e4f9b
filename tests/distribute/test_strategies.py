"""Tests of kerasrnn.distribute: strategies by name, TF_CONFIG checks, batch
splitting, and real data-parallel training of kerasrnn layers.

The training tests run in subprocesses, because TensorFlow's devices and
collective ops, and JAX's device count, are fixed when the library starts:

- two `MultiWorkerMirroredStrategy` workers on 127.0.0.1 ports train the same
  tiny model; their weights must be identical, and equal (rtol 1e-5,
  atol 1e-6) to one process trained with the same global batch and seed;
- `MirroredStrategy` over two logical CPU devices against one device, with
  the gradient and gate callbacks and `.keras` / SavedModel exports;
- JAX `keras.distribution.DataParallel` over two host devices
  (`XLA_FLAGS=--xla_force_host_platform_device_count=2`) against one device.

Each subprocess test runs once, in the TensorFlow session; this file doubles
as the script those subprocesses run (`python tests/distribute/test_strategies.py`).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest

TIMEOUT_S = 240  # a hang guard for each subprocess, not a timing check
RTOL, ATOL = 1e-5, 1e-6
SEED = 1234
SAMPLES, TIMESTEPS, FEATURES = 32, 5, 3
GLOBAL_BATCH = 8  # 4 per replica with 2 replicas; 32 samples = 4 steps/epoch
EPOCHS = 2

# --------------------------------------------------------------------------
# The training run shared by every subprocess.
# --------------------------------------------------------------------------


def _data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((SAMPLES, TIMESTEPS, FEATURES)).astype("float32")
    y = (x[:, -1, :1] - x[:, 0, 1:2]).astype("float32")
    return x, y


def _train(strategy, output_dir):
    """Trains an LSTM -> GRU model under `strategy`; returns arrays to compare."""
    import keras

    import kerasrnn
    from kerasrnn import distribute
    from kerasrnn.callbacks import GateActivationHistory, GradientNormHistory
    from kerasrnn.teaching import experiment

    keras.utils.set_random_seed(SEED)
    x, y = _data()
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((TIMESTEPS, FEATURES)),
                kerasrnn.LSTM(4, return_sequences=True, name="lstm"),
                kerasrnn.GRU(3, name="gru"),
                keras.layers.Dense(1),
            ]
        )
        # A threshold small enough that every step clips: the clipped full
        # gradient must be the same on one device and on several.
        optimizer = keras.optimizers.Adam(0.05, clipnorm=0.1)
        model.compile(distribute.clip_after_all_reduce(optimizer), "mse")
    gradients = GradientNormHistory(x[:8], y[:8], layer="lstm")
    gates = GateActivationHistory(x[:8], layer="gru")
    callbacks = experiment.training_callbacks(output_dir, "model", [gradients, gates])
    history = model.fit(
        x,
        y,
        batch_size=GLOBAL_BATCH,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    result = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    result["loss"] = np.array(history.history["loss"])
    for key in ("h", "c"):
        result[f"gradient_norm_{key}"] = np.asarray(gradients.history[key])
    for key in ("update_gate_mean", "reset_gate_mean"):
        result[f"gates_{key}"] = np.asarray(gates.history[key])
    result.update(_check_exports(model, x, output_dir))
    if keras.backend.backend() == "jax":
        # How many devices hold a copy of the LSTM's kernel.
        kernel = model.get_layer("lstm").cell.kernel
        result["kernel_devices"] = len(kernel.value.sharding.device_set)
    return result


def _check_exports(model, x, output_dir):
    """Saves the model as `.keras` (and a SavedModel on TensorFlow), reloads
    both and returns the largest difference from the model's predictions."""
    import keras

    expected = model.predict(x, verbose=0)
    path = os.path.join(output_dir, "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    found = {
        "keras_reload_diff": np.abs(reloaded.predict(x, verbose=0) - expected).max()
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        export_dir = os.path.join(output_dir, "saved_model")
        model.export(export_dir, verbose=False)
        loaded = tf.saved_model.load(export_dir)  # keep it alive while serving
        served = loaded.serve(x).numpy()
        found["saved_model_diff"] = np.abs(served - expected).max()
    return found


def _save(result, path):
    np.savez(path, **result)


def _worker_main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["single", "multi-worker", "mirrored", "jax"])
    parser.add_argument("output_dir")
    args = parser.parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)

    if args.mode == "mirrored":
        import tensorflow as tf

        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    from kerasrnn import distribute

    if args.mode == "multi-worker":
        strategy = distribute.make_strategy("multi-worker")
        out = distribute.worker_output_dir(args.output_dir)
        os.makedirs(out, exist_ok=True)
        result = _train(strategy, out)
        result["replicas"] = distribute.num_replicas(strategy)
        _save(result, os.path.join(out, "result.npz"))
    elif args.mode == "single":
        result = _train(distribute.make_strategy("none"), args.output_dir)
        _save(result, os.path.join(args.output_dir, "result.npz"))
    elif args.mode == "mirrored":
        one = os.path.join(args.output_dir, "one_device")
        two = os.path.join(args.output_dir, "two_devices")
        _save(
            _train(distribute.make_strategy("none"), one),
            os.path.join(one, "result.npz"),
        )
        strategy = distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
        result = _train(strategy, two)
        result["replicas"] = distribute.num_replicas(strategy)
        _save(result, os.path.join(two, "result.npz"))
    else:
        import jax

        one = os.path.join(args.output_dir, "one_device")
        two = os.path.join(args.output_dir, "two_devices")
        _save(
            _train(distribute.make_strategy("none"), one),
            os.path.join(one, "result.npz"),
        )
        strategy = distribute.make_strategy("mirrored")  # DataParallel on JAX
        result = _train(strategy, two)
        result["replicas"] = distribute.num_replicas(strategy)
        result["devices"] = len(jax.devices())
        _save(result, os.path.join(two, "result.npz"))


# --------------------------------------------------------------------------
# Subprocess plumbing.
# --------------------------------------------------------------------------

THIS_FILE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(THIS_FILE)))


def _env(**extra):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _start(mode, output_dir, log_path, **env):
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, THIS_FILE, mode, str(output_dir)],
        cwd=ROOT,
        env=_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    process.log, process.log_path = log, log_path
    return process


def _finish(processes):
    """Waits for all, killing every one still running once one fails or the
    time is up; returns the logs of the failed ones."""
    import signal
    import time

    deadline = time.monotonic() + TIMEOUT_S
    failed = []
    try:
        while any(p.poll() is None for p in processes):
            if time.monotonic() > deadline:
                failed.append("timed out")
                break
            if any(p.poll() not in (None, 0) for p in processes):
                break
            time.sleep(0.1)
    finally:
        for p in processes:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait()
            p.log.close()
    for p in processes:
        if p.returncode != 0:
            with open(p.log_path) as f:
                failed.append(f"{p.args[2]} rc={p.returncode}:\n{f.read()[-4000:]}")
    return failed


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _load(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _assert_same_training(got, want, exact=False):
    keys = [
        k for k in want if k.startswith(("weight_", "loss", "gradient_norm_", "gates_"))
    ]
    assert keys and set(keys) <= set(got)
    for key in keys:
        if exact:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        else:
            np.testing.assert_allclose(
                got[key], want[key], rtol=RTOL, atol=ATOL, err_msg=key
            )


def _assert_exports_reload(result):
    assert result["keras_reload_diff"] <= 1e-6
    if "saved_model_diff" in result:
        assert result["saved_model_diff"] <= 1e-5


def _tensorflow_session():
    import keras

    return keras.backend.backend() == "tensorflow"


subprocess_test = pytest.mark.skipif(
    not _tensorflow_session(),
    reason="the subprocess tests run once, in the TensorFlow session",
)


@pytest.fixture(scope="module")
def tensorflow_runs(tmp_path_factory):
    """Starts together, on TensorFlow: two multi-worker workers on loopback
    and one process that trains on one device, then mirrored on two logical
    CPU devices (the one-device run is also the workers' reference)."""
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("distribute")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [
        _start(
            "multi-worker",
            root / "multi",
            root / f"worker_{index}.log",
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        )
        for index in range(2)
    ]
    mirrored = _start("mirrored", root / "mirrored", root / "mirrored.log")
    failed = _finish([*workers, mirrored])
    return root, failed


@subprocess_test
def test_two_workers_on_loopback_match_each_other_and_one_process(tensorflow_runs):
    root, failed = tensorflow_runs
    assert not failed, "\n".join(failed)
    chief = _load(root / "multi" / "result.npz")
    other = _load(root / "multi" / "workers" / "worker_1" / "result.npz")
    reference = _load(root / "mirrored" / "one_device" / "result.npz")
    assert chief["replicas"] == other["replicas"] == 2
    _assert_same_training(other, chief, exact=True)
    _assert_same_training(chief, reference)
    _assert_exports_reload(chief)
    _assert_exports_reload(other)
    # Each worker kept its own backup folder, removed when training ended.
    assert (root / "multi" / "workers" / "worker_1").is_dir()
    assert not (root / "multi" / "backup" / "model").exists()
    assert not (root / "multi" / "workers" / "worker_1" / "backup" / "model").exists()


@subprocess_test
def test_mirrored_over_two_logical_cpus_matches_one_device(tensorflow_runs):
    root, failed = tensorflow_runs
    assert not failed, "\n".join(failed)
    one = _load(root / "mirrored" / "one_device" / "result.npz")
    two = _load(root / "mirrored" / "two_devices" / "result.npz")
    assert two["replicas"] == 2
    _assert_same_training(two, one)
    _assert_exports_reload(two)


@subprocess_test
def test_jax_data_parallel_over_two_host_devices_matches_one_device(tmp_path):
    pytest.importorskip("jax")
    run = _start(
        "jax",
        tmp_path,
        tmp_path / "jax.log",
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
    )
    failed = _finish([run])
    assert not failed, "\n".join(failed)
    one = _load(tmp_path / "one_device" / "result.npz")
    two = _load(tmp_path / "two_devices" / "result.npz")
    assert two["devices"] == 2 and two["replicas"] == 2
    assert two["kernel_devices"] == 2  # weights replicated on both devices
    _assert_same_training(two, one)
    _assert_exports_reload(two)


# --------------------------------------------------------------------------
# In-process tests: names, TF_CONFIG, batch splitting.
# --------------------------------------------------------------------------


def _tf_config(cluster=None, task=None):
    cluster = (
        {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]} if cluster is None else cluster
    )
    task = {"type": "worker", "index": 0} if task is None else task
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}


def test_add_strategy_argument_accepts_the_three_names():
    from kerasrnn import distribute

    parser = distribute.add_strategy_argument(argparse.ArgumentParser())
    assert parser.parse_args([]).strategy == "none"
    for name in ("none", "mirrored", "multi-worker"):
        assert parser.parse_args(["--strategy", name]).strategy == name
    with pytest.raises(SystemExit):
        parser.parse_args(["--strategy", "tpu"])


@pytest.mark.parametrize("name", ["tpu", "Mirrored", "", None, 2])
def test_make_strategy_rejects_unknown_names(name):
    from kerasrnn import distribute

    with pytest.raises(
        ValueError, match=r"strategy must be one of .* Received: strategy="
    ):
        distribute.make_strategy(name)


def test_make_strategy_takes_devices_only_for_mirrored():
    from kerasrnn import distribute

    with pytest.raises(
        ValueError, match="devices can only be given with strategy='mirrored'"
    ):
        distribute.make_strategy("none", devices=["/cpu:0"])


def test_none_strategy_trains_a_kerasrnn_model_on_one_replica():
    import keras

    import kerasrnn
    from kerasrnn import distribute

    strategy = distribute.make_strategy("none")
    assert distribute.num_replicas(strategy) == 1
    x, y = _data()
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((TIMESTEPS, FEATURES)),
                kerasrnn.SimpleRNN(2),
                keras.layers.Dense(1),
            ]
        )
        model.compile("sgd", "mse")
    history = model.fit(
        x,
        y,
        batch_size=distribute.per_replica_batch_size(GLOBAL_BATCH, strategy),
        epochs=1,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"]).all()


def test_multi_worker_without_tf_config_names_it(monkeypatch):
    import keras

    from kerasrnn import distribute

    monkeypatch.delenv("TF_CONFIG", raising=False)
    match = "TF_CONFIG" if keras.backend.backend() == "tensorflow" else "backend"
    with pytest.raises(ValueError, match=match):
        distribute.make_strategy("multi-worker")


def test_backends_without_tf_distribute_say_which_backend():
    import keras

    from kerasrnn import distribute

    backend = keras.backend.backend()
    if backend == "tensorflow":
        with pytest.raises(ValueError, match="backend='tensorflow'"):
            distribute.data_parallel()
    else:
        with pytest.raises(ValueError, match=f"backend={backend!r}"):
            distribute.make_strategy("multi-worker")


@pytest.mark.parametrize(
    "environ, fragment",
    [
        ({}, "needs the TF_CONFIG environment variable"),
        ({"TF_CONFIG": "{not json"}, "must be valid JSON"),
        ({"TF_CONFIG": "[1, 2]"}, "must be a JSON object"),
        (_tf_config(cluster={}), 'must list the workers in "cluster"'),
        (_tf_config(cluster={"worker": []}), 'must list the workers in "cluster"'),
        (_tf_config(cluster={"worker": ["localhost"]}), "host:port"),
        (_tf_config(cluster={"worker": ["h:99999"]}), "host:port"),
        (_tf_config(cluster={"worker": "h:1"}), "host:port"),
        (_tf_config(cluster={"worker": ["h:1", "h:1"]}), "its own host:port"),
        ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["h:1"]}})}, "which task"),
        (_tf_config(task={"type": "ps", "index": 0}), "task type must be one of"),
        (_tf_config(task={"type": "chief", "index": 0}), "task type must be one of"),
        (
            _tf_config(task={"type": "worker", "index": 2}),
            r"index must be an integer in \[0, 2\)",
        ),
        (_tf_config(task={"type": "worker", "index": -1}), "index must be"),
        (_tf_config(task={"type": "worker", "index": True}), "index must be"),
        (_tf_config(task={"type": "worker"}), "index must be"),
    ],
    ids=[
        "unset",
        "bad-json",
        "not-object",
        "no-cluster",
        "no-workers",
        "no-port",
        "port-range",
        "not-list",
        "duplicate",
        "no-task",
        "ps-task",
        "chief-not-in-cluster",
        "index-too-big",
        "index-negative",
        "index-bool",
        "index-missing",
    ],
)
def test_parse_tf_config_names_what_is_wrong(environ, fragment):
    from kerasrnn import distribute

    with pytest.raises(ValueError, match=fragment) as info:
        distribute.parse_tf_config(environ)
    assert "TF_CONFIG" in str(info.value)


def test_parse_tf_config_accepts_a_cluster_with_a_chief():
    from kerasrnn import distribute

    environ = _tf_config(
        cluster={"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222"]},
        task={"type": "chief", "index": 0},
    )
    config = distribute.parse_tf_config(environ)
    assert config["task"] == {"type": "chief", "index": 0}


def test_chief_and_worker_output_dirs():
    from kerasrnn import distribute

    assert (
        distribute.is_chief({})
        and distribute.worker_output_dir("runs/x", {}) == "runs/x"
    )
    first, second = (_tf_config(task={"type": "worker", "index": i}) for i in (0, 1))
    assert distribute.is_chief(first) and not distribute.is_chief(second)
    assert distribute.worker_output_dir("runs/x", first) == "runs/x"
    assert distribute.worker_output_dir("runs/x", second) == os.path.join(
        "runs/x", "workers", "worker_1"
    )
    with_chief = {"chief": ["h:1"], "worker": ["h:2"]}
    assert not distribute.is_chief(
        _tf_config(with_chief, {"type": "worker", "index": 0})
    )
    assert distribute.is_chief(_tf_config(with_chief, {"type": "chief", "index": 0}))


@pytest.mark.parametrize(
    "replicas, batch, expected", [(1, 1, 1), (2, 8, 4), (4, 64, 16)]
)
def test_per_replica_batch_size_splits_the_global_batch(replicas, batch, expected):
    from kerasrnn import distribute

    strategy = types.SimpleNamespace(num_replicas_in_sync=replicas)
    assert distribute.per_replica_batch_size(batch, strategy) == expected


@pytest.mark.parametrize("batch", [7, 0, -8, 8.0, True, "8"])
def test_per_replica_batch_size_refuses_uneven_or_bad_batches(batch):
    from kerasrnn import distribute

    strategy = types.SimpleNamespace(num_replicas_in_sync=2)
    with pytest.raises(
        ValueError, match=r"batch_size .* multiple of the number of replicas, 2"
    ):
        distribute.per_replica_batch_size(batch, strategy)


def test_num_replicas_of_a_keras_distribution_and_of_nonsense():
    from kerasrnn import distribute

    mesh = types.SimpleNamespace(device_mesh=types.SimpleNamespace(shape=(3,)))
    assert distribute.num_replicas(mesh) == 3 and distribute.num_replicas(None) == 1
    with pytest.raises(ValueError, match="strategy must be"):
        distribute.num_replicas("mirrored")


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
