"""The parent side: for each backend, each layer kind and shape, fresh
worker processes of `benchmarks/run.py` that time (and, apart, measure the
memory of) every implementation; the results written per backend."""

import json
import os
import statistics
import subprocess
import sys

from . import configs
from .memory import CPU_MEMORY_ENVIRONMENT, run_memory_worker
from .report import fmt, machine_info, markdown, merge_processes
from .timing import run_worker

# The OpenMP wait policy of the worker processes, unless the environment sets one.
OMP_WAIT_POLICY = "PASSIVE"
# The script every worker process runs.
RUN_PY = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "run.py"
)


def child(args, backend, kind, shape, memory_of=None, impls=None):
    """Runs one worker of `benchmarks/run.py` on `backend` and returns what
    it printed: `{"rows", "skipped"}`, or `{"peak_mib", "memory_method"}`
    for the memory of the implementation `memory_of`."""
    cmd = [
        sys.executable,
        RUN_PY,
        "--worker",
        kind,
        "--backend",
        backend,
        "--shapes",
        f"{shape[0]}x{shape[1]}",
        "--batch",
        str(args.batch),
        "--features",
        str(args.features),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--rounds",
        str(args.rounds),
        "--device",
        args.device,
        "--impls",
        ",".join(impls or args.impls),
        "--head",
        args.head,
        "--threads",
        str(args.threads),
    ]
    if memory_of:
        cmd += ["--memory-of", memory_of]
    if args.flush_denormals:
        cmd.append("--flush-denormals")
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # torch.nn shares the process with the backend's runtime, whose threads
    # keep the cores busy; PyTorch's OpenMP threads spin while they wait.
    # Beside TensorFlow on a busy 2-core machine (LSTM, T=100, 128 units)
    # torch's training step took 4600 ms with the default policy and 852 ms
    # with ACTIVE, against 167 and 189 ms with PASSIVE (40 and 160 ms alone).
    # Passive threads sleep instead; the environment's policy wins.
    env.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    if args.device == "gpu":
        # torch.nn shares the process and the GPU: JAX and TensorFlow must
        # not take the whole of its memory up front.
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    if memory_of and args.device == "cpu":
        env.update(CPU_MEMORY_ENVIRONMENT)
    elif memory_of:
        # Allocator statistics need TensorFlow's BFC allocator.
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=args.timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {backend} {kind} {shape} failed:\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_memory(args, backend, kind, shape, impl):
    """The median peak of `--memory-processes` fresh processes, and each."""
    runs = [
        child(args, backend, kind, shape, memory_of=impl)
        for _ in range(args.memory_processes)
    ]
    peaks = [r["peak_mib"] for r in runs]
    method = runs[0]["memory_method"]
    if len(runs) > 1:
        method += f"; median of {len(runs)} fresh processes"
    return {
        "peak_mib": statistics.median(peaks),
        "peak_mib_processes": peaks,
        "memory_method": method,
    }


def _timed(args, backend, kind, shape, impls):
    runs = [
        child(args, backend, kind, shape, impls=impls)
        for _ in range(args.timing_processes)
    ]
    skipped = {}
    for run in runs:
        skipped.update(run["skipped"])
    return merge_processes([run["rows"] for run in runs]), skipped


def timed_rows(args, backend, kind, shape):
    """The rows of every implementation, timed side by side in each of
    `--timing-processes` fresh processes and merged, and the rows that
    could not be built, with why.

    With `--torch-process own`, `torch.nn` is timed in processes of its own
    instead, and the ratios between its row and the others cross processes
    (each row says so in `note`).
    """
    if args.torch_process == "same" or "torch" not in args.impls:
        return _timed(args, backend, kind, shape, args.impls)
    others = [i for i in args.impls if i != "torch"]
    rows, skipped = _timed(args, backend, kind, shape, others) if others else ([], {})
    torch_rows, _ = _timed(args, backend, kind, shape, ["torch"])
    crossing = [  # (rows, the reference they are divided by, ratio key)
        (rows, torch_rows, "ratio_torch"),
        (torch_rows, [r for r in rows if r["implementation"] == "keras"], "ratio"),
    ]
    for ratioed, reference, key in crossing:
        for row in ratioed:
            for what in ("train", "infer"):
                base = reference[0][f"{what}_ms"] if reference else None
                row[f"{what}_{key}"] = row[f"{what}_ms"] / base if base else None
                row.pop(f"{what}_{key}_processes", None)
    for row in rows + torch_rows:
        row["note"] = "torch.nn timed in its own processes: × torch crosses processes"
    return rows + torch_rows, skipped


def add_memory(args, backend, kind, shape, rows):
    """Adds each row's peak training memory and its ratio to the `keras` row."""
    for row in rows:
        if row["implementation"] not in configs.NOT_LAYERS:
            row.update(median_memory(args, backend, kind, shape, row["implementation"]))
    set_memory_ratios(rows)


def set_memory_ratios(rows):
    """Each row's peak memory over the `keras` row's, where both were
    measured the same way (on JAX the Keras rows read XLA's plan and the
    torch row its resident set: their ratio would mean nothing)."""
    base = [r for r in rows if r["implementation"] == "keras"]
    for row in rows:
        row.pop("memory_ratio", None)
        if (
            base
            and base[0].get("peak_mib")
            and row.get("peak_mib") is not None
            and row.get("memory_method") == base[0].get("memory_method")
        ):
            row["memory_ratio"] = row["peak_mib"] / base[0]["peak_mib"]


def run_backend(args, backend):
    """The suite on one backend; writes `<output>/<backend>-<device>[-quick]`
    `.json` and `.md` after every configuration (an interrupted run keeps
    what it measured) and returns that path without its suffix."""
    info = machine_info(args, backend)
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(args.output, f"{backend}-{args.device}")
    if args.quick:
        stem += "-quick"
    rows, skipped = [], {}
    for kind in args.kinds:
        for shape in args.shapes:
            print(f"[benchmark] {backend} {kind} T={shape[0]} U={shape[1]}", flush=True)
            config_rows, config_skipped = timed_rows(args, backend, kind, shape)
            name = configs.kind_of(kind).kerasrnn
            for impl, why in config_skipped.items():
                skipped[f"{name} {impl}"] = why
            if args.memory == "yes":
                add_memory(args, backend, kind, shape, config_rows)
            for row in config_rows:
                print(
                    f"  {row['implementation']:<18} {row['path']:<9} "
                    f"train {row['train_ms']:8.2f} ms ({fmt(row['train_ratio'], 2)}x keras, "
                    f"{fmt(row['train_ratio_torch'], 2)}x torch)  "
                    f"infer {row['infer_ms']:8.2f} ms ({fmt(row['infer_ratio'], 2)}x keras, "
                    f"{fmt(row['infer_ratio_torch'], 2)}x torch)  "
                    f"peak {fmt(row.get('peak_mib'))} MiB",
                    flush=True,
                )
            rows += config_rows
            with open(stem + ".json", "w") as f:
                json.dump(
                    {"machine": info, "results": rows, "skipped": skipped}, f, indent=2
                )
            with open(stem + ".md", "w") as f:
                f.write(markdown(info, rows, skipped))
    print(f"[benchmark] wrote {stem}.md and {stem}.json")
    return stem


def main(argv=None):
    """`benchmarks/run.py`: the suite on each backend of `--backend`, or, in
    a worker process, one configuration. Returns the paths written (without
    their suffix), one per backend."""
    args = configs.parse_args(argv)
    if args.worker:
        if args.memory_of:
            mib, method = run_memory_worker(args)
            print(json.dumps({"peak_mib": mib, "memory_method": method}))
        else:
            print(json.dumps(run_worker(args)))
        return None
    return [run_backend(args, backend) for backend in args.backends]
