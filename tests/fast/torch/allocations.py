"""Peak memory of a step on the torch backend, counted from the allocation
records of PyTorch's profiler (shared by the tests of the hand-written
torch kernels)."""

import torch


def peak_allocated_bytes(step):
    """The peak of the bytes PyTorch's CPU allocator holds, beyond what it
    held before, while `step()` runs. The records come from the profiler's
    `kineto_results`, which PyTorch's own memory profiler reads too; if they
    move, the assertion below fails rather than a test passing on nothing."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        step()
    records = [
        e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    ]
    assert records, "the profiler recorded no allocation"
    held = peak = 0
    for record in sorted(records, key=lambda e: e.start_ns()):
        held += record.nbytes()
        peak = max(peak, held)
    return peak
