"""When a torch kernel may run Python of its own in its backward pass.

kerasrnn's hand-written pieces of autograd on the torch backend (the
subnormal flags of `denormals`, the SimpleRNN's backward pass of
`simple_rnn`) run eagerly, once per backward pass, on a CPU. They step
aside, and PyTorch's own kernels run as they are, where that would be wrong
or useless: on CUDA, without gradients, and wherever the Python would run
once at tracing time instead of at every pass, or under other rules
(`torch.compile`/`torch.export`, a traced graph, `torch.func` transforms).
"""

import torch

__all__ = ["eager_cpu", "eager_cpu_backward"]


def eager_cpu(inputs):
    """Whether a kernel of the tensors `inputs` runs eagerly on a CPU (the
    first of them sets the device): not while a compiled, traced or
    `torch.func` graph is being built."""
    return (
        inputs[0].device.type == "cpu"
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and not _functorch_active()
    )


def eager_cpu_backward(inputs):
    """Whether autograd will run an eager backward pass, on a CPU, through a
    kernel of the tensors `inputs` (the first of them sets the device)."""
    return (
        torch.is_grad_enabled()
        and any(t.requires_grad for t in inputs)
        and eager_cpu(inputs)
    )


def _functorch_active():
    """Whether a `torch.func` transform (`grad`, `vmap`) is tracing: its
    autograd.Function rules differ, and Python in a backward pass would not
    run per pass."""
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active and active())
