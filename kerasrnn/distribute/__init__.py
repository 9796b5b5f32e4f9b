"""Data-parallel training of kerasrnn models on several devices or machines:
strategies chosen by name (`none`, `mirrored`, `multi-worker`) on the
TensorFlow and JAX backends. See `kerasrnn.distribute.strategies`."""

from kerasrnn.distribute.strategies import (
    STRATEGIES,
    add_strategy_argument,
    clip_after_all_reduce,
    data_parallel,
    is_chief,
    make_strategy,
    num_replicas,
    parse_tf_config,
    per_replica_batch_size,
    worker_output_dir,
)

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
