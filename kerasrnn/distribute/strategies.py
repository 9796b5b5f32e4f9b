"""Data-parallel training of kerasrnn models on several devices or machines.

A strategy is chosen by name, so that every tutorial takes the same
`--strategy` flag:

| name           | TensorFlow backend                          | JAX backend                              |
|----------------|---------------------------------------------|------------------------------------------|
| `none`         | the default strategy (one device)           | no distribution (one device)             |
| `mirrored`     | `tf.distribute.MirroredStrategy`: every     | `keras.distribution.DataParallel` over   |
|                | local GPU (or the given devices)            | every local device                       |
| `multi-worker` | `tf.distribute.MultiWorkerMirroredStrategy` | not supported: see the README            |
|                | over the machines listed in `TF_CONFIG`     |                                          |

In every case the model is built and compiled under `strategy.scope()` and
`model.fit` is given the *global* batch size: each of the
`num_replicas(strategy)` replicas computes the gradient of its share,
`global_batch_size / num_replicas`, the gradients are summed across replicas
(the loss of each replica is already divided by the number of replicas), and
every replica applies the same update, so the weights stay identical
everywhere. A run with the same global batch on one device takes the same
steps, up to the order of floating-point sums.

Example:

>>> strategy = make_strategy("none")
>>> per_replica_batch_size(32, strategy)
32
>>> with strategy.scope():
...     model = keras.Sequential([keras.Input((5, 3)), kerasrnn.LSTM(4)])
"""

import contextlib
import json
import os

import keras

from kerasrnn._utils.validation import is_integer

__all__ = [
    "STRATEGIES",
    "add_strategy_argument",
    "clip_after_all_reduce",
    "data_parallel",
    "is_chief",
    "make_strategy",
    "num_replicas",
    "parse_tf_config",
    "per_replica_batch_size",
    "worker_output_dir",
]

STRATEGIES = ("none", "mirrored", "multi-worker")
# Task types of a TF_CONFIG that train (an "evaluator" only evaluates, a "ps"
# serves ParameterServerStrategy, which kerasrnn does not use).
_TRAINING_TASK_TYPES = ("chief", "worker")


def add_strategy_argument(parser, default="none"):
    """Adds `--strategy none|mirrored|multi-worker` to an argparse parser."""
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=default,
        help="none: one device; mirrored: all local GPUs (JAX: all local "
        "devices) with tf.distribute.MirroredStrategy or "
        "keras.distribution.DataParallel; multi-worker: the machines listed in "
        "the TF_CONFIG environment variable (TensorFlow only). --batch-size is "
        f"the global batch, split across replicas. Default: {default}",
    )
    return parser


class _NoDistribution:
    """Stands in for a strategy on backends without `tf.distribute`."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()

    def __repr__(self):
        return "NoDistribution()"


def make_strategy(name="none", devices=None):
    """Returns the distribution strategy called `name` for the current backend.

    Call it at the start of the program, before any model or tensor is made:
    `MultiWorkerMirroredStrategy` configures TensorFlow's collective ops,
    which is only possible before TensorFlow initialises its devices.

    Args:
        name: One of `"none"`, `"mirrored"`, `"multi-worker"`. Default: `"none"`.
        devices: Optional list of device names for `"mirrored"`, e.g.
            `["/cpu:0", "/cpu:1"]` on TensorFlow or a number of devices on
            JAX. Default: `None` (every local GPU, or the CPU when there is
            none, on TensorFlow; every local device on JAX).

    Returns:
        An object with `scope()` (build and compile the model inside it) and
        `num_replicas_in_sync`: a `tf.distribute.Strategy` on TensorFlow; the
        `keras.distribution.DataParallel` that is now the global distribution
        (with `num_replicas_in_sync` added) for `"mirrored"` on JAX; a no-op
        stand-in for `"none"` on other backends.

    Raises:
        ValueError: if `name` is unknown, the backend cannot run it, or
            `TF_CONFIG` is missing or malformed for `"multi-worker"`.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}"
        )
    if devices is not None and name != "mirrored":
        raise ValueError(
            "devices can only be given with strategy='mirrored'. Received: "
            f"strategy={name!r}, devices={devices!r}"
        )
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_strategy(name, devices)
    if name == "none":
        return _NoDistribution()
    if backend == "jax" and name == "mirrored":
        return data_parallel(devices)
    raise ValueError(
        f"strategy={name!r} is not available on the {backend} backend: use "
        "KERAS_BACKEND=tensorflow"
        + (
            " (or strategy='mirrored' on JAX for the local devices)"
            if backend == "jax"
            else ""
        )
        + f". Received: strategy={name!r} with backend={backend!r}"
    )


def _tensorflow_strategy(name, devices):
    import tensorflow as tf

    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    parse_tf_config()
    try:
        return _multi_worker_strategy_class()()
    except RuntimeError as error:
        raise ValueError(
            "strategy='multi-worker' must be created at the start of the "
            "program, before any model, tensor or other strategy. TensorFlow "
            f"said: {error}"
        ) from error


def _multi_worker_strategy_class():
    """`tf.distribute.MultiWorkerMirroredStrategy` with a `reduce` that
    `model.fit` of Keras 3 can use.

    Keras 3 (up to 3.15 at least, keras-team/keras#20585) calls
    `strategy.reduce` on the multi-worker strategy in two ways it does not
    accept: on the whole `(x, y)` batch at once, to build the model, and with
    `axis=0` on the scalar loss and metrics of each step. This subclass reduces
    a nested structure tensor by tensor, as `MirroredStrategy` does, and a
    scalar across replicas (the meaning `axis=0` has for the stacked scalars
    under `MirroredStrategy`). Everything else is TensorFlow's own.
    """
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            if tf.nest.is_nested(value):
                return tf.nest.map_structure(
                    lambda v: self.reduce(reduce_op, v, axis), value
                )
            if axis is not None and _rank(self, value) == 0:
                axis = None
            return super().reduce(reduce_op, value, axis)

    return MultiWorkerMirroredStrategy


def _rank(strategy, value):
    local = strategy.experimental_local_results(value)[0]
    return len(local.shape) if hasattr(local, "shape") else 0


def parse_tf_config(environ=None):
    """Reads and checks the `TF_CONFIG` of a multi-worker run.

    `TF_CONFIG` is JSON with the cluster (the same on every machine) and this
    machine's task, e.g. for the second of two workers:

        {"cluster": {"worker": ["host1:12345", "host2:12345"]},
         "task": {"type": "worker", "index": 1}}

    Args:
        environ: Mapping to read `TF_CONFIG` from. Default: `None`
            (`os.environ`).

    Returns:
        The parsed `TF_CONFIG` as a dict.

    Raises:
        ValueError: naming `TF_CONFIG` and what is wrong with it.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "strategy='multi-worker' needs the TF_CONFIG environment variable, "
            'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", '
            '"host2:12345"]}, "task": {"type": "worker", "index": 0}}\'. '
            f"Received: TF_CONFIG={raw!r}"
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"TF_CONFIG must be valid JSON ({error}). Received: TF_CONFIG={raw!r}"
        ) from error
    if not isinstance(config, dict):
        raise ValueError(
            f"TF_CONFIG must be a JSON object. Received: TF_CONFIG={raw!r}"
        )
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster.get("worker"):
        raise ValueError(
            'TF_CONFIG must list the workers in "cluster": {"worker": '
            f'["host:port", ...]}}. Received: TF_CONFIG={raw!r}'
        )
    for task_type, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
            _is_address(a) for a in addresses
        ):
            raise ValueError(
                f'TF_CONFIG cluster["{task_type}"] must be a list of "host:port" '
                f"strings. Received: TF_CONFIG={raw!r}"
            )
    all_addresses = [a for addresses in cluster.values() for a in addresses]
    if len(set(all_addresses)) != len(all_addresses):
        raise ValueError(
            "Every task in TF_CONFIG's cluster needs its own host:port. "
            f"Received: TF_CONFIG={raw!r}"
        )
    task = config.get("task")
    if not isinstance(task, dict):
        raise ValueError(
            'TF_CONFIG must say which task this process is, e.g. "task": '
            f'{{"type": "worker", "index": 0}}. Received: TF_CONFIG={raw!r}'
        )
    task_type, index = task.get("type"), task.get("index")
    if task_type not in _TRAINING_TASK_TYPES or task_type not in cluster:
        raise ValueError(
            f"TF_CONFIG task type must be one of {_TRAINING_TASK_TYPES} and be "
            f"listed in the cluster. Received: TF_CONFIG={raw!r}"
        )
    if not is_integer(index) or not 0 <= index < len(cluster[task_type]):
        raise ValueError(
            f"TF_CONFIG task index must be an integer in [0, "
            f"{len(cluster[task_type])}) for the {len(cluster[task_type])} "
            f"'{task_type}' task(s). Received: TF_CONFIG={raw!r}"
        )
    return config


def _is_address(address):
    if not isinstance(address, str):
        return False
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def is_chief(environ=None):
    """Whether this process should write the run's results.

    In a multi-worker run every worker trains, but only one, the chief (the
    task of type `"chief"`, or worker 0 when there is none), should write
    results and plots; the others write to a scratch folder. Without
    `TF_CONFIG` the only process is the chief.
    """
    environ = os.environ if environ is None else environ
    if not environ.get("TF_CONFIG"):
        return True
    config = parse_tf_config(environ)
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def worker_output_dir(output_dir, environ=None):
    """The folder this process writes to: `output_dir` for the chief,
    `output_dir/workers/<type>_<index>` for the other workers of a
    multi-worker run, so that workers sharing a file system never write the
    same file (each keeps, for instance, its own `BackupAndRestore` backup)."""
    if is_chief(environ):
        return output_dir
    task = parse_tf_config(environ)["task"]
    return os.path.join(output_dir, "workers", f"{task['type']}_{task['index']}")


def num_replicas(strategy):
    """How many replicas share each global batch under `strategy`."""
    if strategy is None:
        return 1
    if hasattr(strategy, "num_replicas_in_sync"):
        return int(strategy.num_replicas_in_sync)
    mesh = getattr(strategy, "device_mesh", None)
    if mesh is not None:
        return int(mesh.shape[0])
    raise ValueError(
        "strategy must be a tf.distribute.Strategy, a "
        "keras.distribution.DataParallel or None. "
        f"Received: strategy={strategy!r}"
    )


def per_replica_batch_size(global_batch_size, strategy):
    """Returns `global_batch_size / num_replicas(strategy)`.

    `model.fit(..., batch_size=global_batch_size)` splits each batch evenly
    across the replicas; a global batch that does not divide evenly would
    give the replicas different shares (and, with
    `MultiWorkerMirroredStrategy`, some of them none), so it is refused.

    Raises:
        ValueError: if `global_batch_size` is not a positive multiple of the
            number of replicas.
    """
    replicas = num_replicas(strategy)
    if (
        not is_integer(global_batch_size)
        or global_batch_size <= 0
        or global_batch_size % replicas
    ):
        raise ValueError(
            "batch_size (the global batch) must be a positive multiple of the "
            f"number of replicas, {replicas}. Received: "
            f"batch_size={global_batch_size!r}"
        )
    return int(global_batch_size) // replicas


def clip_after_all_reduce(optimizer):
    """Makes `optimizer` clip the full gradient under `tf.distribute`, as on
    one device.

    Keras 3's TensorFlow optimizer applies `clipnorm`, `global_clipnorm` and
    `clipvalue` on each replica to that replica's share of the gradient,
    *before* the shares are summed across replicas: with `N` replicas the
    update can reach `N` times the threshold, and a run with `--clipnorm`
    differs from the same run on one device whenever clipping is active. This
    sums the shares first (one extra all-reduce), clips the full gradient,
    and hands each replica `1/N` of the result, which the optimizer's own
    all-reduce sums back to the clipped full gradient. Elsewhere (one
    replica, no clipping, or the JAX backend, whose `DataParallel` clips the
    full gradient already) the optimizer is returned unchanged.

    The change lives on this optimizer object: apply it again after
    `keras.models.load_model`.

    Args:
        optimizer: A `keras.optimizers.Optimizer`. Default: required.

    Returns:
        `optimizer`.
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "optimizer must be a keras.optimizers.Optimizer instance. "
            f"Received: optimizer={optimizer!r}"
        )
    clips = (optimizer.clipnorm, optimizer.global_clipnorm, optimizer.clipvalue)
    if (
        keras.backend.backend() != "tensorflow"
        or not any(clips)
        or getattr(optimizer, "_clips_full_gradient", False)
    ):
        return optimizer
    import tensorflow as tf

    clip_share = optimizer._clip_gradients

    def clip_full_gradient(grads):
        context = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        present = [i for i, g in enumerate(grads) if g is not None]
        if context is None or replicas == 1 or not present:
            return clip_share(grads)
        summed = context.all_reduce(
            tf.distribute.ReduceOp.SUM, [grads[i] for i in present]
        )
        clipped = clip_share(summed)
        grads = list(grads)
        for i, g in zip(present, clipped):
            grads[i] = _divide(g, replicas)
        return grads

    optimizer._clip_gradients = clip_full_gradient
    optimizer._clips_full_gradient = True  # applying it twice would clip twice
    return optimizer


def _divide(gradient, n):
    import tensorflow as tf

    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(
            gradient.values / n, gradient.indices, gradient.dense_shape
        )
    return gradient / n


def data_parallel(devices=None, set_global=True):
    """A `keras.distribution.DataParallel` for the JAX backend.

    Every device holds a copy of the weights and a slice of each batch; JAX
    sums the gradients across devices inside the compiled train step. Use
    `XLA_FLAGS=--xla_force_host_platform_device_count=N` to try it on one
    CPU with `N` devices.

    Args:
        devices: `None` for every device of `keras.distribution.list_devices()`,
            an integer `n` for the first `n` of them, or a list of device
            names. Default: `None`.
        set_global: Also make it Keras's global distribution, so that
            `model.fit` shards its batches. Default: `True`.

    Returns:
        The `DataParallel` distribution, with `num_replicas_in_sync` set.

    Raises:
        ValueError: on a backend other than JAX, or asking for more devices
            than there are.
    """
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(
            "data_parallel() uses keras.distribution, which kerasrnn supports "
            "on the jax backend; on tensorflow use make_strategy('mirrored'). "
            f"Received: backend={backend!r}"
        )
    available = keras.distribution.list_devices()
    if devices is None:
        devices = available
    elif is_integer(devices):
        if not 0 < devices <= len(available):
            raise ValueError(
                f"devices must be between 1 and the {len(available)} available "
                f"device(s) {available}. Received: devices={devices!r}"
            )
        devices = available[:devices]
    elif not isinstance(devices, (list, tuple)) or not devices:
        raise ValueError(
            "devices must be None, a number of devices or a list of device "
            f"names. Received: devices={devices!r}"
        )
    distribution = keras.distribution.DataParallel(devices=list(devices))
    distribution.num_replicas_in_sync = len(devices)
    if set_global:
        keras.distribution.set_distribution(distribution)
    return distribution
