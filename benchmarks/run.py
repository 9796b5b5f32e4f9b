"""Times kerasrnn's SimpleRNN, LSTM and GRU against `keras.layers` and `torch.nn`.

For every configuration (layer kind, timesteps `T`, units `U`) a fresh Python
process builds the same one-layer model with each implementation, warms it
up, then times a training step (forward, backward, SGD update) and an
inference call, alternating between implementations in rounds so that a
change in machine load hits all of them alike. Each time is the median over
all timed steps; ratios are to the Keras built-in timed in the same process.
Peak memory is measured in other fresh processes, the median of three per
implementation (`--memory`, `--memory-processes`). The results go to `results/<backend>-<device>.json`
and a Markdown table `results/<backend>-<device>.md`.

    python benchmarks/run.py                   # the full suite (tens of minutes)
    python benchmarks/run.py --quick           # a smoke run on tiny shapes
    KERAS_BACKEND=jax python benchmarks/run.py --device gpu

Implementations:
    keras               keras.layers.<Kind>, the reference of every ratio.
    kerasrnn            kerasrnn.<Kind>() with the default fast_path="auto";
                        the table says which path it took.
    kerasrnn-fast       kerasrnn.<Kind>(fast_path=True) (TensorFlow; only
                        where "auto" read).
    kerasrnn-readable   kerasrnn.<Kind>(fast_path=False): the readable cell
                        in keras.layers.RNN (TensorFlow; only where "auto"
                        took the fast path).
    torch               torch.nn.RNN/LSTM/GRU (if torch is installed), same
                        thread count or device.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ("simple_rnn", "lstm", "gru")
KERAS_NAMES = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
TORCH_NAMES = {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# (timesteps, units) of the full suite and of --quick.
FULL_SHAPES = ((100, 128), (500, 128), (100, 512))
QUICK_SHAPES = ((12, 16),)
# --head: what the model puts after the layer, as the table header says it.
HEADS = {"dense": "the layer's last output into Dense(1)", "none": "no head"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="comma-separated layer kinds"
    )
    parser.add_argument(
        "--shapes",
        default=None,
        help="comma-separated TxU pairs, e.g. 100x128,500x128 "
        "(default: 100x128,500x128,100x512; --quick: 12x16)",
    )
    parser.add_argument("--batch", type=int, default=None, help="batch size (64)")
    parser.add_argument(
        "--features", type=int, default=None, help="input features (32)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps per implementation (30)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps first (5)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds the timed steps alternate in (5)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for TensorFlow and torch (default: all cores)",
    )
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument(
        "--head",
        choices=("dense", "none"),
        default="dense",
        help="dense: the layer feeds Dense(1) (torch: nn.Linear), the loss is "
        "on its scalar output, as in a model; none: the loss is on the layer's "
        "own output (the suite's model until 2026-11-26). Default: dense",
    )
    parser.add_argument(
        "--impls",
        default="keras,kerasrnn,kerasrnn-fast,kerasrnn-readable,torch",
        help="comma-separated implementations",
    )
    parser.add_argument(
        "--memory",
        choices=("yes", "no", "auto"),
        default="auto",
        help="measure peak training-step memory, in fresh processes per "
        "implementation (auto: yes unless --quick)",
    )
    parser.add_argument(
        "--memory-processes",
        type=int,
        default=3,
        help="fresh processes per implementation whose median peak is "
        "reported (3); one process's reading can move by 1 MiB or more",
    )
    parser.add_argument(
        "--timing-processes",
        type=int,
        default=None,
        help="fresh processes that time each configuration (3; --quick: 1); "
        "the table gives the median and the range of their ratios: the "
        "built-ins' speed moves more between processes than kerasrnn's",
    )
    parser.add_argument("--output", default=os.path.join(HERE, "results"))
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per process")
    # Internal: run one configuration in this process and print its JSON.
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "batch": 4 if quick else 64,
        "features": 3 if quick else 32,
        "steps": 3 if quick else 30,
        "warmup": 1 if quick else 5,
        "rounds": 1 if quick else 5,
        "timing_processes": 1 if quick else 3,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.shapes is None:
        args.shapes = ",".join(
            f"{t}x{u}" for t, u in (QUICK_SHAPES if quick else FULL_SHAPES)
        )
    args.kinds = [k for k in args.kinds.split(",") if k]
    for kind in args.kinds:
        if kind not in KINDS:
            parser.error(f"--kinds: unknown kind {kind!r}; choose from {KINDS}")
    args.impls = [i for i in args.impls.split(",") if i]
    try:
        args.shapes = [
            tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")
        ]
    except ValueError:
        parser.error(
            f"--shapes must look like 100x128,500x128. Received: {args.shapes}"
        )
    if args.memory == "auto":
        args.memory = "no" if quick else "yes"
    if args.timing_processes < 1:
        parser.error(
            f"--timing-processes must be at least 1. Received: {args.timing_processes}"
        )
    if args.memory_processes < 1:
        parser.error(
            f"--memory-processes must be at least 1. Received: {args.memory_processes}"
        )
    if args.threads is None:
        args.threads = os.cpu_count()
    return args


# ---------------------------------------------------------------------------
# Worker side: one configuration, one process.
# ---------------------------------------------------------------------------


def _configure_threads(threads, device):
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        if device == "cpu":
            tf.config.set_visible_devices([], "GPU")


class KerasBench:
    """Train and inference callables for a Keras model on the active backend."""

    def __init__(self, model, x, y):
        import keras

        self.backend = keras.backend.backend()
        self.model, self.x, self.y = model, x, y
        self.optimizer = keras.optimizers.SGD(learning_rate=1e-3)
        self.optimizer.build(model.trainable_variables)
        getattr(self, f"_setup_{self.backend}")()

    def _setup_tensorflow(self):
        import tensorflow as tf

        model, optimizer = self.model, self.optimizer
        # The batch becomes a tensor once, as on the other backends: a NumPy
        # array given to a tf.function is copied in every call (two
        # input-sized buffers in TF 2.21), which is the harness's memory and
        # time, not the layer's.
        self.batch = x, y = tf.constant(self.x), tf.constant(self.y)

        @tf.function
        def train(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        @tf.function
        def infer(x):
            return model(x, training=False)

        self.train = lambda: train(x, y).numpy()
        self.infer = lambda: infer(x).numpy()

    def _setup_jax(self):
        import jax
        import jax.numpy as jnp

        model, optimizer = self.model, self.optimizer

        def loss_fn(trainable, non_trainable, x, y):
            out, non_trainable = model.stateless_call(
                trainable, non_trainable, x, training=True
            )
            return jnp.mean(jnp.square(out - y)), non_trainable

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

        @jax.jit
        def train(trainable, non_trainable, opt_vars, x, y):
            (loss, non_trainable), grads = grad_fn(trainable, non_trainable, x, y)
            trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
            return loss, trainable, non_trainable, opt_vars

        @jax.jit
        def infer(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        state = {
            "t": [v.value for v in model.trainable_variables],
            "n": [v.value for v in model.non_trainable_variables],
            "o": [v.value for v in optimizer.variables],
        }
        self.batch = x, y = jnp.asarray(self.x), jnp.asarray(self.y)

        def run_train():
            loss, state["t"], state["n"], state["o"] = train(
                state["t"], state["n"], state["o"], x, y
            )
            loss.block_until_ready()

        self.train = run_train
        self.infer = lambda: infer(state["t"], state["n"], x).block_until_ready()

    def _setup_torch(self):
        import torch

        model, optimizer = self.model, self.optimizer
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.batch = x, y = (
            torch.as_tensor(self.x, device=device),
            torch.as_tensor(self.y, device=device),
        )
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def train():
            model.zero_grad()
            loss = torch.mean(torch.square(model(x, training=True) - y))
            loss.backward()
            variables = model.trainable_variables
            grads = [v.value.grad for v in variables]
            with torch.no_grad():
                optimizer.apply(grads, variables)
            sync()

        def infer():
            with torch.no_grad():
                model(x, training=False)
            sync()

        self.train, self.infer = train, infer


class TorchBench:
    """The same step with `torch.nn.RNN/LSTM/GRU`."""

    def __init__(self, kind, features, units, x, y, device, threads, head="dense"):
        import torch

        self.device = "cuda" if device == "gpu" else "cpu"
        torch.set_num_threads(threads)
        cls = getattr(torch.nn, TORCH_NAMES[kind])
        torch.manual_seed(0)
        self.module = cls(features, units, batch_first=True).to(self.device)
        self.head = (
            torch.nn.Linear(units, 1).to(self.device)
            if head == "dense"
            else torch.nn.Identity()
        )
        parameters = [*self.module.parameters(), *self.head.parameters()]
        self.optimizer = torch.optim.SGD(parameters, lr=1e-3)
        self.x = torch.as_tensor(x, device=self.device)
        self.y = torch.as_tensor(y, device=self.device)
        self.sync = torch.cuda.synchronize if self.device == "cuda" else (lambda: None)
        self.torch = torch

    def train(self):
        self.optimizer.zero_grad()
        out, _ = self.module(self.x)
        loss = self.torch.mean(self.torch.square(self.head(out[:, -1]) - self.y))
        loss.backward()
        self.optimizer.step()
        self.sync()

    def infer(self):
        with self.torch.no_grad():
            out, _ = self.module(self.x)
            self.head(out[:, -1])
        self.sync()


def _build(impl, kind, shape, args, x, y):
    """`(bench, path)` for one implementation: `bench` has `train()` and
    `infer()`, `path()` names the loop it ran (ask after running it)."""
    timesteps, units = shape
    if impl == "torch":
        bench = TorchBench(
            kind, args.features, units, x, y, args.device, args.threads, args.head
        )
        return bench, lambda: "cuDNN" if args.device == "gpu" else "native"
    import keras

    import kerasrnn

    keras.utils.set_random_seed(0)
    if impl == "keras":
        layer = getattr(keras.layers, KERAS_NAMES[kind])(units)
    elif impl == "kerasrnn":
        layer = getattr(kerasrnn, KERAS_NAMES[kind])(units)
    elif impl == "kerasrnn-readable":
        layer = getattr(kerasrnn, KERAS_NAMES[kind])(units, fast_path=False)
    elif impl == "kerasrnn-fast":
        layer = getattr(kerasrnn, KERAS_NAMES[kind])(units, fast_path=True)
    else:
        raise ValueError(f"Unknown implementation {impl!r}")
    head = [keras.layers.Dense(1)] if args.head == "dense" else []
    model = keras.Sequential(
        [keras.Input((timesteps, args.features), batch_size=args.batch), layer, *head]
    )
    builtin = "built-in"
    if impl == "keras":
        kernel = _builtin_kernel(kind, args)
        builtin += f", {kernel}" if kernel else ""
    return KerasBench(model, x, y), lambda: getattr(layer, "last_path", None) or builtin


def _builtin_kernel(kind, args):
    """The backend kernel that serves the built-in `kind` here, or `None`
    for Keras's generic loop: `use_cudnn=True` fails where the backend has
    no kernel for the layer, and the default `use_cudnn="auto"` takes it
    where it has (unmasked input, as here)."""
    import keras
    import numpy as np

    if kind == "simple_rnn":
        return None  # Keras has no fused SimpleRNN
    layer = getattr(keras.layers, KERAS_NAMES[kind])(4, use_cudnn=True)
    try:
        layer(np.zeros((2, 3, args.features), "float32"))
    except (ValueError, NotImplementedError):
        return None
    if keras.backend.backend() == "jax" and kind == "gru":
        # jax.experimental.rnn has no GRU: Keras's JAX GRU kernel is a
        # lax.scan with the input projection hoisted, on any device.
        return "lax.scan"
    return "cuDNN"


def _available_impls(args):
    impls = list(args.impls)
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        # No fast path: "kerasrnn" reads.
        impls = [i for i in impls if i not in ("kerasrnn-readable", "kerasrnn-fast")]
    if "torch" in impls:
        try:
            import torch  # noqa: F401
        except ImportError:
            impls.remove("torch")
    return impls


def _data(shape, args):
    import numpy as np

    timesteps, units = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, timesteps, args.features)).astype("float32")
    width = 1 if args.head == "dense" else units
    y = rng.standard_normal((args.batch, width)).astype("float32")
    return x, y


def _time(benches, what, args):
    """Median milliseconds of `what` ("train"/"infer") per implementation,
    timed in alternating rounds."""
    times = {name: [] for name in benches}
    for bench in benches.values():
        for _ in range(args.warmup):
            getattr(bench, what)()
    per_round = max(1, args.steps // args.rounds)
    for _ in range(args.rounds):
        for name, bench in benches.items():
            fn = getattr(bench, what)
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}, {
        name: len(t) for name, t in times.items()
    }


def run_worker(args):
    kind = args.worker
    shape = args.shapes[0]
    impls = _available_impls(args)
    if not impls:
        return []
    if impls == ["torch"]:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    else:
        _configure_threads(args.threads, args.device)
    x, y = _data(shape, args)
    benches, paths = {}, {}
    for impl in impls:
        benches[impl], paths[impl] = _build(impl, kind, shape, args, x, y)
    train, steps = _time(benches, "train", args)
    train_paths = {impl: path() for impl, path in paths.items()}
    infer, _ = _time(benches, "infer", args)
    # "train/inference" where the two phases took different loops.
    paths = {
        impl: train_paths[impl]
        if train_paths[impl] == path()
        else f"{train_paths[impl]}/{path()}"
        for impl, path in paths.items()
    }
    # Keep the forced rows only where "auto" did not already take them.
    for impl, taken in (("kerasrnn-readable", "readable"), ("kerasrnn-fast", "fast")):
        if impl in benches and paths.get("kerasrnn") == taken:
            del benches[impl]
    rows = []
    for impl in benches:
        rows.append(
            {
                "kind": kind,
                "timesteps": shape[0],
                "units": shape[1],
                "batch": args.batch,
                "features": args.features,
                "implementation": impl,
                "path": paths[impl],
                "train_ms": train[impl],
                "infer_ms": infer[impl],
                "train_ratio": train[impl] / train["keras"]
                if "keras" in train
                else None,
                "infer_ratio": infer[impl] / infer["keras"]
                if "keras" in infer
                else None,
                "timed_steps": steps[impl],
            }
        )
    return rows


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def _hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


CPU_MEMORY_METHOD = (
    "growth of the resident set's peak (VmHWM) over one training step after "
    "two warm-up steps, median of 3; large allocations mmapped "
    "(MALLOC_MMAP_THRESHOLD_=16384) and oneDNN's caching allocator off, so "
    "freed memory leaves the resident set"
)


def _can_reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _hwm_kib() is not None
    except OSError:
        return False


def _cpu_step_peak_mib(bench, repeats=3):
    """Median growth of the resident set's peak over one training step."""
    for _ in range(2):
        bench.train()
    growth = []
    for _ in range(repeats):
        before = _rss_kib()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS
        bench.train()
        growth.append(_hwm_kib() - before)
    return statistics.median(growth) / 1024


def run_memory_worker(args):
    """Peak memory of training steps of one implementation, alone in this
    process. Returns `(MiB, method)`."""
    kind, impl, shape = args.worker, args.memory_of, args.shapes[0]
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    _configure_threads(args.threads, args.device)
    x, y = _data(shape, args)
    if args.device == "cpu" and _can_reset_peak_rss():
        # TensorFlow's allocator statistics (oneDNN's allocator) miss most of
        # the small per-step tensors of a while loop: Keras's LSTM read
        # 1.8 MiB at T=100 and 8.5 MiB at T=500, less than its saved states.
        bench, _ = _build(impl, kind, shape, args, x, y)
        return _cpu_step_peak_mib(bench), CPU_MEMORY_METHOD
    if impl != "torch" and backend == "tensorflow":
        import tensorflow as tf

        bench, _ = _build(impl, kind, shape, args, x, y)
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

            bench, _ = _build(impl, kind, shape, args, x, y)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            for _ in range(2):
                bench.train()
            return (
                torch.cuda.max_memory_allocated() - base
            ) / 2**20, "CUDA allocator peak minus resident before"
        import jax

        bench, _ = _build(impl, kind, shape, args, x, y)
        stats = jax.devices()[0].memory_stats() or {}
        base = stats.get("bytes_in_use", 0)
        for _ in range(2):
            bench.train()
        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" not in stats:
            return None, "unavailable"
        return (stats["peak_bytes_in_use"] - base) / 2**20, "device peak minus before"
    # CPU without allocator statistics: growth of the resident set's peak.
    base = _rss_kib()
    bench, _ = _build(impl, kind, shape, args, x, y)
    for _ in range(2):
        bench.train()
    return (_hwm_kib() - base) / 1024, "peak RSS growth (includes compilation)"


# ---------------------------------------------------------------------------
# Parent side: one fresh process per configuration, then the report.
# ---------------------------------------------------------------------------


def _child(args, kind, shape, memory_of=None, impls=None):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        kind,
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
    ]
    cmd += ["--threads", str(args.threads)]
    if memory_of:
        cmd += ["--memory-of", memory_of]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if memory_of and args.device == "cpu":
        # See CPU_MEMORY_METHOD: every allocation of 16 KiB or more gets its
        # own mapping, returned to the system when freed.
        env.update(
            MALLOC_MMAP_THRESHOLD_="16384",
            MALLOC_TRIM_THRESHOLD_="0",
            TF_ENABLE_ONEDNN_OPTS="0",
        )
    elif memory_of:
        # Allocator statistics need TensorFlow's BFC allocator.
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=args.timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {kind} {shape} failed:\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_memory(args, kind, shape, impl):
    """The median peak of `--memory-processes` fresh processes, and each."""
    runs = [_child(args, kind, shape, impl) for _ in range(args.memory_processes)]
    peaks = [r["peak_mib"] for r in runs]
    method = runs[0]["memory_method"]
    if len(runs) > 1:
        method += f"; median of {len(runs)} fresh processes"
    return {
        "peak_mib": statistics.median(peaks),
        "peak_mib_processes": peaks,
        "memory_method": method,
    }


def _merge_processes(runs):
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
        for key in ("train_ms", "infer_ms", "train_ratio", "infer_ratio"):
            values = [r[key] for r in rows]
            if None in values:
                continue
            row[key] = statistics.median(values)
            if len(rows) > 1:
                row[f"{key}_processes"] = values
        merged.append(row)
    return merged


def _timed_rows(args, kind, shape, impls):
    """The rows of `impls`, timed in `--timing-processes` fresh processes."""
    runs = [
        _child(args, kind, shape, impls=impls) for _ in range(args.timing_processes)
    ]
    return _merge_processes(runs)


def _torch_rows(args, kind, shape, keras_rows):
    rows = _timed_rows(args, kind, shape, ["torch"])
    base = {r["implementation"]: r for r in keras_rows}.get("keras")
    for row in rows:
        for what in ("train", "infer"):
            ratio = row[f"{what}_ms"] / base[f"{what}_ms"] if base else None
            row[f"{what}_ratio"] = ratio
        row["note"] = "own processes"
    return rows


def machine_info(args):
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
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
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
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    }
    versions = {}
    for module in ("keras", "tensorflow", "jax", "torch"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    info["versions"] = versions
    if args.device == "gpu":
        try:
            import subprocess as sp

            info["gpu"] = sp.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        except OSError:
            info["gpu"] = "unknown"
    return info


def _fmt(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def _processes_note(info):
    processes = info.get("timing_processes", 1)
    if processes == 1:
        return ""
    return (
        f", in each of {processes} fresh processes (times: the median of the "
        "processes'; × keras: the median of the ratios measured within each "
        "process, their range in brackets)"
    )


def _ratio(row, what):
    """The ratio, with the range over processes where there were several."""
    text = _fmt(row[f"{what}_ratio"], 2)
    each = row.get(f"{what}_ratio_processes")
    if each and min(each) != max(each):  # the reference row reads 1 in each
        text += f" ({min(each):.2f}–{max(each):.2f})"
    return text


def markdown(info, rows):
    device = info.get("gpu") if info["device"] == "gpu" else info["cpu"]
    lines = [
        f"Backend `{info['backend']}` on {device} "
        f"({info['threads']} threads, {info['cpu_count']} cores), "
        f"batch {info['batch']}, {info['features']} input features, "
        f"{HEADS[info.get('head', 'none')]}, "
        f"median of {info['timed_steps']} steps after {info['warmup_steps']} "
        f"warm-up steps{_processes_note(info)}; OMP_WAIT_POLICY {info.get('omp_wait_policy', 'default')}; "
        f"{info['date']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + ".",
        "",
        "| layer | T | units | implementation | path | train ms | × keras "
        "| inference ms | × keras | peak train MiB | × keras |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {KERAS_NAMES[r['kind']]} | {r['timesteps']} | {r['units']} "
            f"| {r['implementation']} | {r['path']} | {_fmt(r['train_ms'])} "
            f"| {_ratio(r, 'train')} | {_fmt(r['infer_ms'])} "
            f"| {_ratio(r, 'infer')} | {_fmt(r.get('peak_mib'))} "
            f"| {_fmt(r.get('memory_ratio'), 2)} |"
        )
    methods = sorted({r["memory_method"] for r in rows if r.get("memory_method")})
    if methods:
        lines += ["", "Peak memory: " + "; ".join(methods) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        if args.memory_of:
            mib, method = run_memory_worker(args)
            print(json.dumps({"peak_mib": mib, "memory_method": method}))
        else:
            print(json.dumps(run_worker(args)))
        return None
    info = machine_info(args)
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(args.output, f"{info['backend']}-{args.device}")
    if args.quick:
        stem += "-quick"
    rows = []
    for kind in args.kinds:
        for shape in args.shapes:
            print(f"[benchmark] {kind} T={shape[0]} U={shape[1]}", flush=True)
            keras_impls = [i for i in args.impls if i != "torch"]
            config_rows = _timed_rows(args, kind, shape, keras_impls)
            if "torch" in args.impls:
                # PyTorch runs alone: sharing a process with TensorFlow's
                # thread pools slows both (their idle threads spin).
                config_rows += _torch_rows(args, kind, shape, config_rows)
            if args.memory == "yes":
                for row in config_rows:
                    row.update(_median_memory(args, kind, shape, row["implementation"]))
                base = [r for r in config_rows if r["implementation"] == "keras"]
                for row in config_rows:
                    if (
                        base
                        and base[0].get("peak_mib")
                        and row.get("peak_mib") is not None
                    ):
                        row["memory_ratio"] = row["peak_mib"] / base[0]["peak_mib"]
            for row in config_rows:
                print(
                    f"  {row['implementation']:<18} {row['path']:<9} "
                    f"train {row['train_ms']:8.2f} ms ({_fmt(row['train_ratio'], 2)}x)  "
                    f"infer {row['infer_ms']:8.2f} ms ({_fmt(row['infer_ratio'], 2)}x)  "
                    f"peak {_fmt(row.get('peak_mib'))} MiB",
                    flush=True,
                )
            rows += config_rows
            # Written after every configuration, so an interrupted run keeps
            # what it measured.
            with open(stem + ".json", "w") as f:
                json.dump({"machine": info, "results": rows}, f, indent=2)
            with open(stem + ".md", "w") as f:
                f.write(markdown(info, rows))
    print(f"[benchmark] wrote {stem}.md and {stem}.json")
    return stem


if __name__ == "__main__":
    main()
