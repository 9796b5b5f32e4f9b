"""Subnormal numbers flushed to zero on PyTorch's CPU threads.

A gradient that decays back through time (the vanishing gradient) passes
through float32's subnormal range, below 1.2e-38, before it rounds to zero.
An x86 CPU multiplies and adds subnormal numbers dozens of times slower than
normal ones, unless the thread's flush-to-zero and denormals-are-zero flags
are set. TensorFlow and XLA set them on their own threads, so the
TensorFlow and JAX backends never pay for subnormals; PyTorch leaves them
off, and `torch.set_flush_denormal(True)` sets them on the calling thread
only, not on the OpenMP threads its kernels already run on.

kerasrnn's fused layers on the torch backend set the flags for the backward
pass of their own kernel (`backward_flushed`), from the moment the gradient
reaches the layer's outputs until the kernel has returned the gradients of
its inputs (at the latest, the end of that backward pass), and put them back
as they were; the rest of a model's computation is left to PyTorch's
setting. `flush_denormals()` sets them for the whole process.

Measured on a 2-core Xeon (torch 2.13, two threads): a training step of
`torch.nn.LSTM` (the kernel behind kerasrnn's LSTM on the torch backend),
B=64, 32 features, 128 units, with the loss on the last output, took
650 ms at T=256 with the flags off, 296 ms with them set on the calling
thread only, and 81 ms with them set on every thread; at T=1024, 928 ms
off and 359 ms on every thread.

Flushing changes results only where a value is below 1.2e-38 in magnitude,
which then counts as zero.
"""

import contextlib
import ctypes
import ctypes.util
import functools
import os
import threading

import torch

from kerasrnn.fast.torch.eager import eager_cpu_backward

__all__ = ["backward_flushed", "flushed", "flush_denormals"]

# OpenMP runtimes that export GCC's `GOMP_parallel` entry point: GCC's own
# (bundled with PyTorch's Linux wheels), LLVM's and Intel's.
_OPENMP_LIBRARIES = ("libgomp", "libomp", "libiomp5")


@torch.compiler.disable
def flush_denormals(enabled=True):
    """Sets (or with `enabled=False` clears) the flush-to-zero and
    denormals-are-zero flags on the calling thread and on every thread of
    PyTorch's OpenMP pool, for the whole process.

    Threads the pool starts later inherit the flags from the calling thread.
    Call it from the thread that runs the model (the main thread in a
    training script), e.g. once at its start:

        from kerasrnn.fast.torch.denormals import flush_denormals

        flush_denormals()

    On a CUDA device it changes nothing that runs there.

    Args:
        enabled: `True` to flush subnormal numbers to zero, `False` to
            compute with them again (PyTorch's default).

    Returns:
        The number of threads given the setting: PyTorch's thread count; 1
        where no OpenMP runtime with `GOMP_parallel` is loaded in the process
        (only the calling thread, as `torch.set_flush_denormal`); 0 where the
        CPU has no such flags.

    Raises:
        ValueError: if `enabled` is not a bool.
    """
    if not isinstance(enabled, bool):
        raise ValueError(
            f"flush_denormals: `enabled` must be True or False. Received: "
            f"enabled={enabled!r}"
        )
    if not torch.set_flush_denormal(enabled):
        return 0
    return _copy_to_pool()


def _calling_thread_flushes():
    """Whether the calling thread treats subnormal inputs as zero now."""
    return float(torch.tensor([1e-39]).mul_(1.0)[0]) == 0.0


def backward_flushed(inputs, kernel):
    """`kernel(*inputs)`, with subnormal numbers flushed to zero on PyTorch's
    CPU threads while autograd runs the kernel's backward pass.

    `inputs` are the tensors the kernel differentiates (the sequence, the
    initial states, the weights); it returns a tuple of tensors. The flags
    are set when the gradient reaches the kernel's outputs, unless the
    calling thread flushes already, and put back once the gradients of the
    inputs that require one are computed, or when that backward pass ends,
    whichever comes first (after a backward pass that raised, at the next
    call on the same thread). On CUDA, without gradients, under `torch.compile`
    or `torch.export`, in a traced graph, inside `torch.func` transforms, or
    where the CPU has no such flags, this is `kernel(*inputs)`.
    """
    if not eager_cpu_backward(inputs) or _State.unsupported:
        return kernel(*inputs)
    _close_stale_regions()
    region = _Region()
    marked = _LeaveRegion.apply(region, *inputs)
    return _EnterRegion.apply(region, *kernel(*marked))


@contextlib.contextmanager
def flushed():
    """Subnormal numbers flushed to zero on the calling thread and PyTorch's
    CPU threads for the block, and the flags put back after it (unless they
    were set before it). For a loop of PyTorch operations inside a backward
    pass, such as the adjoint recurrence of
    `kerasrnn.fast.linear_recurrence`; on CUDA it changes nothing that runs
    there. Outside a backward pass, `flush_denormals()` is the simpler tool.
    """
    if _State.unsupported:
        yield
        return
    region = _Region(safety_net=False)
    region.enter()
    try:
        yield
    finally:
        region.leave()


def _close_stale_regions():
    """Leaves the regions this thread entered in a backward pass that is
    over: one that raised after its region was entered runs neither the
    kernel's input gradients nor the engine's end-of-pass callbacks. Called
    on the way forward, outside any backward pass."""
    if not _State.open_regions:
        return
    task = getattr(torch._C, "_current_graph_task_id", None)
    if task is None or task() != -1:
        return
    thread = threading.get_ident()
    for region in [r for r in _State.open_regions if r.thread == thread]:
        region.leave()


class _State:
    """The flags kerasrnn set: `open_regions`, the regions entered and not
    left; `set_by_us` whether the first of them set the flags (else they
    were set already)."""

    lock = threading.Lock()
    open_regions = set()
    set_by_us = False
    unsupported = False


class _Region:
    """One kernel's backward pass, entered and left at most once per pass;
    with `safety_net`, left at the latest when the backward pass ends."""

    def __init__(self, safety_net=True):
        self.thread = None  # the thread that entered it
        self.safety_net = safety_net

    # Under Keras's jit_compile the backward pass runs inside a compiled
    # function's frame: keep Dynamo from tracing the flags' Python.
    @torch.compiler.disable
    def enter(self):
        with _State.lock:
            if self in _State.open_regions:
                return
            self.thread = threading.get_ident()
            if not _State.open_regions:
                _State.set_by_us = not _calling_thread_flushes()
                if _State.set_by_us and flush_denormals(True) == 0:
                    _State.unsupported, _State.set_by_us = True, False
            _State.open_regions.add(self)
        if self.safety_net:
            # A pass that never reaches the kernel's inputs.
            torch.autograd.Variable._execution_engine.queue_callback(self.leave)

    @torch.compiler.disable
    def leave(self):
        with _State.lock:
            if self not in _State.open_regions:
                return
            _State.open_regions.remove(self)
            if not _State.open_regions and _State.set_by_us:
                flush_denormals(False)
                _State.set_by_us = False


class _EnterRegion(torch.autograd.Function):
    """Identity on the kernel's outputs; its backward runs just before the
    kernel's, and sets the flags."""

    @staticmethod
    def forward(ctx, region, *outputs):
        ctx.region = region
        ctx.set_materialize_grads(False)
        return tuple(t.view_as(t) for t in outputs)

    @staticmethod
    def backward(ctx, *grads):
        ctx.region.enter()
        return (None, *grads)


class _LeaveRegion(torch.autograd.Function):
    """Identity on the kernel's inputs; its backward runs once the kernel's
    has returned their gradients, and puts the flags back."""

    @staticmethod
    def forward(ctx, region, *inputs):
        ctx.region = region
        ctx.set_materialize_grads(False)
        outputs = tuple(t.view_as(t) for t in inputs)
        # An input that takes no gradient must not start taking one here.
        ctx.mark_non_differentiable(
            *(out for t, out in zip(inputs, outputs) if not t.requires_grad)
        )
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        ctx.region.leave()
        return (None, *grads)


def _copy_to_pool():
    """Gives every thread of PyTorch's OpenMP pool the calling thread's
    floating-point environment (`fesetenv`, run by each thread in C: no
    Python, no lock); returns how many threads now have it."""
    threads = torch.get_num_threads()
    runtime = _runtime()
    if runtime is None or threads < 2:
        return 1
    parallel, fegetenv, fesetenv = runtime
    environment = ctypes.create_string_buffer(256)  # larger than any fenv_t
    if fegetenv(environment) != 0:
        return 1
    parallel(fesetenv, environment, threads, 0)
    return threads


@functools.cache
def _runtime():
    """`(GOMP_parallel, fegetenv, fesetenv)` of the OpenMP runtime loaded in
    this process (the one under PyTorch's folder first: its wheels bundle the
    runtime its kernels use) and of the C maths library, or `None` where
    either cannot be found."""
    return _find_runtime(os.path.dirname(torch.__file__))


def _find_runtime(torch_dir):
    maps, libm = "/proc/self/maps", ctypes.util.find_library("m")
    if not os.path.exists(maps) or libm is None:
        return None
    with open(maps) as lines:
        paths = {line.split()[-1] for line in lines if "/" in line and ".so" in line}
    libm = ctypes.CDLL(libm)
    fegetenv = getattr(libm, "fegetenv", None)
    fesetenv = getattr(libm, "fesetenv", None)
    if fegetenv is None or fesetenv is None:
        return None
    for path in sorted(paths, key=lambda path: (not path.startswith(torch_dir), path)):
        if not os.path.basename(path).startswith(_OPENMP_LIBRARIES):
            continue
        parallel = getattr(ctypes.CDLL(path), "GOMP_parallel", None)
        if parallel is not None:
            parallel.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_uint] * 2
            parallel.restype = None
            fegetenv.argtypes = [ctypes.c_void_p]
            return parallel, fegetenv, ctypes.cast(fesetenv, ctypes.c_void_p)
    return None
