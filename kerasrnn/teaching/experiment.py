"""Plumbing shared by the tutorials: common flags, device choice, callbacks
that make a run resumable, and results written next to the outputs.

Tutorial scripts stay thin: they parse flags with `add_common_arguments`,
call `configure_device`, build their model, and train it with
`training_callbacks(...)` so that an interrupted run resumes from its last
completed epoch when the same command is run again.
"""

import json
import os
import platform
import random
import time

import keras

from kerasrnn import distribute

__all__ = [
    "DEVICES",
    "ClipFullGradient",
    "ReseedEachEpoch",
    "Stopwatch",
    "add_common_arguments",
    "configure_device",
    "machine_description",
    "make_strategy",
    "training_callbacks",
    "write_json",
]

DEVICES = ("auto", "cpu", "gpu")


def add_common_arguments(parser, output_dir):
    """Adds the flags every tutorial shares to an `argparse.ArgumentParser`."""
    parser.add_argument(
        "--output-dir",
        default=output_dir,
        help="Folder for results, plots, checkpoints and the backup that lets "
        f"an interrupted run resume. Default: {output_dir}",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Random seed for data and weights. Default: 0",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="cpu hides any GPU; gpu fails if none is visible; auto uses what is "
        "there. Default: auto",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Tiny settings that finish in seconds (smoke tests).",
    )
    parser.add_argument(
        "--clipnorm",
        type=float,
        default=None,
        help="Clip each gradient to this global norm (against exploding "
        "gradients). Default: no clipping",
    )
    parser.add_argument(
        "--check-numerics",
        action="store_true",
        help="Scan the training data for NaN and Inf before training and stop "
        "with an error naming the first bad sample (kerasrnn.inspection.numerics).",
    )
    distribute.add_strategy_argument(parser)
    return parser


def make_strategy(args):
    """The distribution strategy named by `args.strategy` (`--strategy`).

    Call it after `configure_device` and before building any model; build
    and compile the model under `strategy.scope()`. In a multi-worker run it
    also points `args.output_dir` of every worker but the chief at a folder
    of its own (`kerasrnn.distribute.worker_output_dir`), so that workers
    sharing a disk never write the same backup or result file, and it checks
    that `args.batch_size`, the global batch, splits evenly across replicas.
    """
    strategy = distribute.make_strategy(args.strategy)
    if args.strategy == "multi-worker":
        args.output_dir = distribute.worker_output_dir(args.output_dir)
    if getattr(args, "batch_size", None) is not None:
        distribute.per_replica_batch_size(args.batch_size, strategy)
    return strategy


def configure_device(device):
    """Makes the run use the CPU or a GPU, before any tensor is created.

    Returns a short description of the devices in use.
    """
    if device not in DEVICES:
        raise ValueError(
            f"device must be one of {DEVICES}. Received: device={device!r}"
        )
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if device == "cpu" and gpus:
            tf.config.set_visible_devices([], "GPU")
            gpus = []
        if device == "gpu" and not gpus:
            raise ValueError("device='gpu' was asked for but TensorFlow sees no GPU.")
        return f"tensorflow on {f'GPU x{len(gpus)}' if gpus else 'CPU'}"
    if backend == "jax":
        import jax

        kinds = {d.platform for d in jax.devices()}
        if device == "gpu" and "gpu" not in kinds:
            raise ValueError("device='gpu' was asked for but JAX sees no GPU.")
        if device == "cpu" and "gpu" in kinds:
            jax.config.update("jax_platforms", "cpu")
        return f"jax on {sorted(kinds)}"
    if backend == "torch":
        import torch

        if device == "gpu" and not torch.cuda.is_available():
            raise ValueError("device='gpu' was asked for but torch sees no GPU.")
        return f"torch on {'cuda' if torch.cuda.is_available() and device != 'cpu' else 'cpu'}"
    return backend


def training_callbacks(output_dir, name="model", extra=()):
    """`BackupAndRestore` (resume after a crash), `ReseedEachEpoch` (the same
    result whether or not the run was interrupted), `TerminateOnNaN`, and
    `ClipFullGradient` (with `--strategy`, clip as on one device).

    The backup lives in `output_dir/backup/name` and is deleted by Keras when
    training ends normally, so a rerun of a finished command starts afresh
    while a rerun of an interrupted one resumes.
    """
    backup_dir = os.path.join(output_dir, "backup", name)
    return [
        keras.callbacks.BackupAndRestore(backup_dir),
        ReseedEachEpoch(random.randrange(2**31 - 1)),
        keras.callbacks.TerminateOnNaN(),
        ClipFullGradient(),
        *extra,
    ]


class ClipFullGradient(keras.callbacks.Callback):
    """Applies `kerasrnn.distribute.clip_after_all_reduce` to the model's
    optimizer, so that `clipnorm` clips the full gradient under a
    multi-replica `tf.distribute` strategy, as it does on one device.
    Does nothing without clipping, on one replica, or on JAX."""

    def set_model(self, model):
        super().set_model(model)
        if getattr(model, "optimizer", None) is not None:
            distribute.clip_after_all_reduce(model.optimizer)


class ReseedEachEpoch(keras.callbacks.Callback):
    """Makes every epoch's randomness depend only on `seed` and the epoch.

    `BackupAndRestore` restores the weights and the optimizer, but not the
    state of the random generators: a resumed run would shuffle the data and
    drop units differently from an uninterrupted one. Reseeding Python,
    NumPy and the backend, and every `keras.random.SeedGenerator` of the
    model (dropout's), at the start of each epoch from `(seed, epoch)` makes
    the run resumed at epoch `k` take exactly the steps the uninterrupted run
    took from epoch `k` on.

    Args:
        seed: Integer base seed. Default: required.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        logs = logs or {}
        epoch_seed = (self.seed * 1_000_003 + epoch) % (2**31 - 1)
        keras.utils.set_random_seed(epoch_seed)
        generators = [
            value
            for layer in self.model._flatten_layers()
            for value in vars(layer).values()
            if isinstance(value, keras.random.SeedGenerator)
        ]
        for k, generator in enumerate(generators):
            state = [(epoch_seed + k) % (2**31 - 1), 0]
            generator.state.assign(keras.ops.cast(state, generator.state.dtype))


def machine_description():
    """A one-line description of the machine, for results files."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, Keras {keras.__version__} "
        f"({keras.backend.backend()} backend)"
    )


def write_json(path, payload):
    """Writes `payload` as indented JSON, creating parent folders."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=_to_builtin)
    os.replace(tmp, path)


def _to_builtin(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class Stopwatch:
    """Measures wall time: `with Stopwatch() as sw: ...; sw.seconds`."""

    def __enter__(self):
        self._start = time.perf_counter()
        self.seconds = None
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        return False
