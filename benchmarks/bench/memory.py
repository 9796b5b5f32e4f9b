"""Peak memory of a training step: one implementation alone in a fresh
process (the parent runs several and reports their median)."""

import statistics

from . import configs
from .timing import build, configure_threads, make_data

CPU_MEMORY_METHOD = (
    "growth of the resident set's peak (VmHWM) over one training step after "
    "two warm-up steps, median of 3; large allocations mmapped "
    "(MALLOC_MMAP_THRESHOLD_=16384) and oneDNN's caching allocator off, so "
    "freed memory leaves the resident set"
)
# The environment of a CPU memory process (see CPU_MEMORY_METHOD): every
# allocation of 16 KiB or more gets its own mapping, returned to the system
# when freed.
CPU_MEMORY_ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": "16384",
    "MALLOC_TRIM_THRESHOLD_": "0",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


XLA_MEMORY_METHOD = (
    "XLA's buffer assignment for the compiled training step: the temporary "
    "buffers it plans (memory_analysis().temp_size_in_bytes), the peak of "
    "what the step allocates beside its arguments and outputs; XLA:CPU "
    "keeps a warm step's arena, so the resident set cannot show it"
)


def xla_step_mib(bench):
    """The temporary memory XLA plans for `bench`'s compiled training step
    (JAX), MiB."""
    compiled = bench.jax_train.lower(*bench.jax_train_args()).compile()
    return compiled.memory_analysis().temp_size_in_bytes / 2**20


def _proc_status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


def rss_kib():
    """The resident set of this process, KiB."""
    return _proc_status_kib("VmRSS")


def hwm_kib():
    """The peak of the resident set of this process (high-water mark), KiB."""
    return _proc_status_kib("VmHWM")


def _reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current VmRSS


def can_reset_peak_rss():
    """Whether this system lets a process reset its peak resident set."""
    try:
        _reset_peak_rss()
        return hwm_kib() is not None
    except OSError:
        return False


def cpu_step_peak_mib(bench, repeats=3):
    """Median growth of the resident set's peak over one training step."""
    for _ in range(2):
        bench.train()
    growth = []
    for _ in range(repeats):
        before = rss_kib()
        _reset_peak_rss()
        bench.train()
        growth.append(hwm_kib() - before)
    return statistics.median(growth) / 1024


def run_memory_worker(args):
    """Peak memory of training steps of one implementation (`--memory-of`),
    alone in this process. Returns `(MiB, method)`."""
    kind, impl, shape = configs.kind_of(args.worker), args.memory_of, args.shapes[0]
    backend = configs.default_backend()
    configure_threads(args.threads, args.device, args.flush_denormals)
    x, y = make_data(shape, args)
    if impl != "torch" and backend == "jax" and args.device == "cpu":
        bench, _ = build(impl, kind, shape, args, x, y)
        bench.train()
        return xla_step_mib(bench), XLA_MEMORY_METHOD
    if args.device == "cpu" and can_reset_peak_rss():
        # TensorFlow's allocator statistics (oneDNN's allocator) miss most of
        # the small per-step tensors of a while loop: Keras's LSTM read
        # 1.8 MiB at T=100 and 8.5 MiB at T=500, less than its saved states.
        bench, _ = build(impl, kind, shape, args, x, y)
        return cpu_step_peak_mib(bench), CPU_MEMORY_METHOD
    if impl != "torch" and backend == "tensorflow":
        import tensorflow as tf

        bench, _ = build(impl, kind, shape, args, x, y)
        bench.train()  # compiles; what compilation allocates is not counted
        tf.config.experimental.reset_memory_stats("CPU:0")
        base = tf.config.experimental.get_memory_info("CPU:0")["current"]
        for _ in range(2):
            bench.train()
        peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
        return (peak - base) / 2**20, (
            "TensorFlow allocator (BFC) peak during two training steps after "
            "a first one, minus memory in use before them"
        )
    if args.device == "gpu":
        if impl == "torch" or backend == "torch":
            import torch

            bench, _ = build(impl, kind, shape, args, x, y)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            for _ in range(2):
                bench.train()
            return (
                torch.cuda.max_memory_allocated() - base
            ) / 2**20, "CUDA allocator peak minus resident before"
        import jax

        bench, _ = build(impl, kind, shape, args, x, y)
        stats = jax.devices()[0].memory_stats() or {}
        base = stats.get("bytes_in_use", 0)
        for _ in range(2):
            bench.train()
        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" not in stats:
            return None, "unavailable"
        return (stats["peak_bytes_in_use"] - base) / 2**20, "device peak minus before"
    # CPU without allocator statistics: growth of the resident set's peak.
    base = rss_kib()
    bench, _ = build(impl, kind, shape, args, x, y)
    for _ in range(2):
        bench.train()
    return (hwm_kib() - base) / 1024, "peak RSS growth (includes compilation)"
