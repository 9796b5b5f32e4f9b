"""The suite's report: the machine it ran on, the rows of several processes
merged, and the Markdown table written beside the JSON."""

import datetime
import importlib.metadata
import os
import platform
import statistics
import subprocess

from . import configs

# The row keys merged over processes: times, and ratios taken in a process.
RATIO_KEYS = ("train_ratio", "infer_ratio", "train_ratio_torch", "infer_ratio_torch")
TIME_KEYS = ("train_ms", "infer_ms")
# Where each library's version is read from (the first installed one).
_DISTRIBUTIONS = {
    "keras": ("keras",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "jax": ("jax",),
    "torch": ("torch",),
}


def _version(distributions):
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return None


def machine_info(args, backend=None):
    """What the table's header states: the date, backend, device, CPU,
    threads, the suite's settings and the libraries' versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "backend": backend or configs.default_backend(),
        "device": args.device,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "batch": args.batch,
        "features": args.features,
        "timed_steps": args.steps,
        "warmup_steps": args.warmup,
        "timing_processes": args.timing_processes,
        "head": args.head,
        "torch_process": args.torch_process,
        # What the worker processes get (bench.suite.child).
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        "flush_denormals": getattr(args, "flush_denormals", False),
    }
    versions = {}
    for module, distributions in _DISTRIBUTIONS.items():
        version = _version(distributions)
        if version is not None:
            versions[module] = version
    info["versions"] = versions
    if args.device == "gpu":
        try:
            info["gpu"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        except OSError:
            info["gpu"] = "unknown"
    return info


def merge_processes(runs):
    """One row per implementation from the rows of several fresh processes:
    the median time and the median of the ratios (each ratio taken within
    its own process), each process's kept as `*_processes`."""
    merged = []
    for rows in zip(*runs):
        row = dict(rows[0])
        if len({r["implementation"] for r in rows}) != 1:
            raise RuntimeError(f"processes timed different implementations: {rows}")
        paths = sorted({r["path"] for r in rows})
        row["path"] = paths[0] if len(paths) == 1 else "/".join(paths)
        row["timed_steps"] = sum(r["timed_steps"] for r in rows)
        for key in (*TIME_KEYS, *RATIO_KEYS):
            values = [r.get(key) for r in rows]
            if None in values:
                continue
            row[key] = statistics.median(values)
            if len(rows) > 1:
                row[f"{key}_processes"] = values
        merged.append(row)
    return merged


def fmt(value, digits=1):
    """`value` with `digits` decimals, or a dash for `None`."""
    return "–" if value is None else f"{value:.{digits}f}"


def _processes_note(info):
    processes = info.get("timing_processes", 1)
    if processes == 1:
        return ""
    return (
        f", in each of {processes} fresh processes (times: the median of the "
        "processes'; ratios: the median of the ratios measured within each "
        "process, their range in brackets)"
    )


def _together(info):
    if info.get("torch_process", "same") == "same":
        return (
            "every implementation of a configuration timed in the same "
            "processes, in alternating rounds"
        )
    return (
        "the Keras implementations timed in the same processes, in alternating "
        "rounds, torch.nn in processes of its own (the ratios between them "
        "cross processes)"
    )


def _denormals(info):
    if info.get("flush_denormals"):
        return "subnormal numbers flushed to zero on PyTorch's threads; "
    return ""


def _ratio(row, key):
    """The ratio, with the range over processes where there were several."""
    text = fmt(row.get(key), 2)
    each = row.get(f"{key}_processes")
    if each and min(each) != max(each):  # the reference row reads 1 in each
        text += f" ({min(each):.2f}–{max(each):.2f})"
    return text


def markdown(info, rows, skipped=None):
    """The table of `rows`, headed by what `info` says of the run; `skipped`
    maps a row that could not be built (`"LSTM kerasrnn-fast"`) to why."""
    device = info.get("gpu") if info["device"] == "gpu" else info["cpu"]
    lines = [
        f"Backend `{info['backend']}` on {device} "
        f"({info['threads']} threads, {info['cpu_count']} cores), "
        f"batch {info['batch']}, {info['features']} input features, "
        f"{configs.HEADS[info.get('head', 'none')]}, "
        f"median of {info['timed_steps']} steps after {info['warmup_steps']} "
        f"warm-up steps{_processes_note(info)}; {_together(info)}; "
        f"OMP_WAIT_POLICY {info.get('omp_wait_policy', 'default')}; "
        f"{_denormals(info)}"
        f"{info['date']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + ".",
        "",
        "| layer | T | units | implementation | path | train ms | × keras "
        "| inference ms | × keras | peak train MiB | × keras "
        "| train × torch | inference × torch |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {configs.kind_of(r['kind']).kerasrnn} | {r['timesteps']} | {r['units']} "
            f"| {r['implementation']} | {r['path']} | {fmt(r['train_ms'])} "
            f"| {_ratio(r, 'train_ratio')} | {fmt(r['infer_ms'])} "
            f"| {_ratio(r, 'infer_ratio')} | {fmt(r.get('peak_mib'))} "
            f"| {fmt(r.get('memory_ratio'), 2)} "
            f"| {_ratio(r, 'train_ratio_torch')} | {_ratio(r, 'infer_ratio_torch')} |"
        )
    references = sorted(
        {
            f"{kind.kerasrnn} against keras.layers.{kind.keras} and "
            f"torch.nn.{kind.torch}"
            for kind in map(configs.kind_of, {r["kind"] for r in rows})
            if kind.keras != kind.kerasrnn
        }
    )
    if references:
        lines += ["", "References: " + "; ".join(references) + "."]
    if any(r["implementation"] == "matmul-floor" for r in rows):
        lines += [
            "",
            "matmul-floor: the layer's recurrent products `h @ U`, one per step, "
            "and its backward and weight-gradient products, alone, without the "
            "input projection (`benchmarks/bench/floor.py`); its × keras is a "
            "lower bound on the ratio a kernel could reach here with these "
            "matrix products.",
        ]
    if skipped:
        lines += [
            "",
            "Not timed: "
            + "; ".join(f"{row}: {why}" for row, why in sorted(skipped.items()))
            + ".",
        ]
    methods = {}  # method -> the implementations measured by it
    for r in rows:
        if r.get("memory_method"):
            impls = methods.setdefault(r["memory_method"], [])
            if r["implementation"] not in impls:
                impls.append(r["implementation"])
    if len(methods) == 1:
        lines += ["", f"Peak memory: {next(iter(methods))}."]
    elif methods:
        lines += [
            "",
            "Peak memory (a ratio only between rows measured alike): "
            + "; ".join(
                f"{', '.join(impls)}: {method}" for method, impls in methods.items()
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"
