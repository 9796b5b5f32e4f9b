"""What the suite times: the layer kinds, shapes, implementations and
backends, and the command line of `benchmarks/run.py` that chooses them."""

import argparse
import dataclasses
import os

DESCRIPTION = (
    "Times kerasrnn's recurrent layers against the backend's keras.layers and "
    "torch.nn, side by side in the same processes."
)
BACKENDS = ("tensorflow", "jax", "torch")
# Every implementation a row can time; see benchmarks/README.md.
IMPLEMENTATIONS = (
    "keras",
    "kerasrnn",
    "kerasrnn-fast",
    "kerasrnn-readable",
    "torch",
    "matmul-floor",
)
# Rows that are not a layer: timed beside the others, but no memory.
NOT_LAYERS = ("matmul-floor",)
# (timesteps, units) of the full suite and of --quick.
FULL_SHAPES = ((100, 128), (500, 128), (100, 512))
QUICK_SHAPES = ((12, 16),)
# --head: what the model puts after the layer, as the table header says it.
HEADS = {"dense": "the layer's last output into Dense(1)", "none": "no head"}


@dataclasses.dataclass(frozen=True)
class Kind:
    """A layer kind: the kerasrnn class timed and the references beside it.

    `keras` names the `keras.layers` class of the reference row (every
    ratio's denominator) and `torch` the `torch.nn` class timed beside; for
    a kerasrnn layer without a built-in of its own they name the closest one.
    """

    name: str  # the --kinds value
    kerasrnn: str  # class name in kerasrnn
    keras: str  # class name in keras.layers
    torch: str  # class name in torch.nn


def _by_name(*kinds):
    return {kind.name: kind for kind in kinds}


KINDS = _by_name(
    Kind("simple_rnn", "SimpleRNN", keras="SimpleRNN", torch="RNN"),
    Kind("lstm", "LSTM", keras="LSTM", torch="LSTM"),
    Kind("gru", "GRU", keras="GRU", torch="GRU"),
)
# Layers added to kerasrnn after the suite was written, timed against the
# built-in they simplify or extend. `--kinds` accepts one once `kerasrnn`
# exports its class; a new layer is one line here.
EXTRA_KINDS = _by_name(
    Kind("min_gru", "MinGRU", keras="GRU", torch="GRU"),
    Kind("min_lstm", "MinLSTM", keras="LSTM", torch="LSTM"),
    Kind("slstm", "SLSTM", keras="LSTM", torch="LSTM"),
)


def kind_of(name):
    """The `Kind` called `name`, standard or extra."""
    return KINDS.get(name) or EXTRA_KINDS[name]


def default_backend():
    """`$KERAS_BACKEND`, or `"tensorflow"` as Keras defaults to."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def missing_from_kerasrnn(kinds):
    """The extra kinds among `kinds` whose class `kerasrnn` does not export."""
    extra = [k for k in kinds if k in EXTRA_KINDS]
    if not extra:
        return []
    import kerasrnn

    return [k for k in extra if not hasattr(kerasrnn, EXTRA_KINDS[k].kerasrnn)]


def parse_args(argv=None):
    """The suite's settings; `--quick` lowers every default to a smoke run."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument(
        "--backend",
        choices=(*BACKENDS, "all"),
        default=default_backend(),
        help="Keras backend of the kerasrnn and keras.layers rows (torch.nn is "
        "timed beside on each); all: one table per backend, one after the "
        "other. Default: $KERAS_BACKEND or tensorflow",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="comma-separated layer kinds: "
        + ", ".join(KINDS)
        + "; once kerasrnn has them also "
        + ", ".join(EXTRA_KINDS)
        + f". Default: {','.join(KINDS)}",
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
        default=",".join(IMPLEMENTATIONS),
        help="comma-separated implementations",
    )
    parser.add_argument(
        "--torch-process",
        choices=("same", "own"),
        default="same",
        help="same: torch.nn is timed in the same processes as the Keras rows, "
        "in alternating rounds (every ratio side by side); own: in processes "
        "of its own, as the suite did before 2026-12 (its ratios then cross "
        "processes, but the backend's runtime cannot slow it). Default: same",
    )
    parser.add_argument(
        "--flush-denormals",
        action="store_true",
        help="flush subnormal numbers to zero on PyTorch's CPU threads in "
        "every worker (kerasrnn.fast.torch.denormals.flush_denormals), as "
        "TensorFlow and XLA do on theirs; it speeds up the backward pass "
        "of keras.layers and torch.nn through long sequences (kerasrnn's "
        "fused layers flush their own backward pass already)",
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
    parser.add_argument(
        "--output", default=os.path.join(os.path.dirname(__file__), "..", "results")
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per process")
    # Internal: run one configuration in this process and print its JSON.
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.output = os.path.normpath(args.output)
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
    args.backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    args.kinds = [k for k in args.kinds.split(",") if k]
    for kind in args.kinds:
        if kind not in KINDS and kind not in EXTRA_KINDS:
            parser.error(
                f"--kinds: unknown kind {kind!r}; choose from {(*KINDS, *EXTRA_KINDS)}"
            )
    if args.worker is None:  # a worker's parent has checked
        missing = missing_from_kerasrnn(args.kinds)
        if missing:
            parser.error(
                "--kinds: kerasrnn has no "
                + ", ".join(EXTRA_KINDS[k].kerasrnn for k in missing)
                + f" yet (kinds {missing} are timed once it has). "
                f"Received: --kinds {','.join(args.kinds)}"
            )
    args.impls = [i for i in args.impls.split(",") if i]
    for impl in args.impls:
        if impl not in IMPLEMENTATIONS:
            parser.error(
                f"--impls: unknown implementation {impl!r}; choose from "
                f"{IMPLEMENTATIONS}"
            )
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
