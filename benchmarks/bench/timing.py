"""The worker side of the timing: one configuration in one fresh process.

Every implementation of one layer kind and shape is built in this process
(kerasrnn's layers and the backend's `keras.layers` built-in in the same
one-layer model, `torch.nn`'s module beside them), warmed up, then timed in
rounds that alternate between them, so that a change in machine load hits
all of them alike. Ratios are taken within the process: to the `keras` row
(`*_ratio`) and to the `torch` row (`*_ratio_torch`).
"""

import os
import statistics
import time

from . import configs


def configure_threads(threads, device, flush_denormals=False):
    """Caps the backend's CPU threads at `threads`; `device="cpu"` hides any
    GPU from TensorFlow; `flush_denormals` flushes subnormal numbers to zero
    on PyTorch's threads, if PyTorch is installed."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if flush_denormals:
        _flush_torch_denormals()
    if configs.default_backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        if device == "cpu":
            tf.config.set_visible_devices([], "GPU")


def _flush_torch_denormals():
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    from kerasrnn.fast.torch.denormals import flush_denormals

    flush_denormals()


def wait(value, backend):
    """Blocks until the backend has computed `value`, a tensor a timed call
    returned: JAX and CUDA run asynchronously, and a TensorFlow result is
    read back (`.numpy()`), as a caller would."""
    if backend == "jax":
        value.block_until_ready()
    elif backend == "tensorflow":
        value.numpy()
    else:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


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

        self.train = lambda: wait(train(x, y), "tensorflow")
        self.infer = lambda: wait(infer(x), "tensorflow")

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
            wait(loss, "jax")

        self.train = run_train
        self.infer = lambda: wait(infer(state["t"], state["n"], x), "jax")
        # The compiled training step and its current arguments, for XLA's
        # own account of its memory (`memory.xla_step_mib`).
        self.jax_train = train
        self.jax_train_args = lambda: (state["t"], state["n"], state["o"], x, y)

    def _setup_torch(self):
        import torch

        model, optimizer = self.model, self.optimizer
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.batch = x, y = (
            torch.as_tensor(self.x, device=device),
            torch.as_tensor(self.y, device=device),
        )

        def train():
            model.zero_grad()
            loss = torch.mean(torch.square(model(x, training=True) - y))
            loss.backward()
            variables = model.trainable_variables
            grads = [v.value.grad for v in variables]
            with torch.no_grad():
                optimizer.apply(grads, variables)
            wait(loss, "torch")

        def infer():
            with torch.no_grad():
                wait(model(x, training=False), "torch")

        self.train, self.infer = train, infer


class TorchBench:
    """The same step with `torch.nn.<name>` (`RNN`, `LSTM` or `GRU`)."""

    def __init__(self, name, features, units, x, y, device, threads, head="dense"):
        import torch

        self.device = "cuda" if device == "gpu" else "cpu"
        torch.set_num_threads(threads)
        cls = getattr(torch.nn, name)
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


# What each forced kerasrnn row passes as `fast_path`.
_FORCED = {"kerasrnn-fast": True, "kerasrnn-readable": False}


def build(impl, kind, shape, args, x, y):
    """`(bench, path)` for one implementation of `kind` (a `configs.Kind`):
    `bench` has `train()` and `infer()`, `path()` names the loop it ran (ask
    after running it).

    Raises `ValueError` (or `TypeError`) where a forced kerasrnn row cannot
    be built (`fast_path=True` on a backend or layer without fused kernels,
    or a layer without `fast_path`) and for the matmul floor of a layer
    without a dense recurrent product.
    """
    timesteps, units = shape
    if impl == "matmul-floor":
        from .floor import FloorBench

        return FloorBench(kind, shape, x), lambda: "matmuls only"
    if impl == "torch":
        bench = TorchBench(
            kind.torch, args.features, units, x, y, args.device, args.threads, args.head
        )
        return bench, lambda: "cuDNN" if args.device == "gpu" else "native"
    import keras

    import kerasrnn

    keras.utils.set_random_seed(0)
    if impl == "keras":
        layer = getattr(keras.layers, kind.keras)(units)
    elif impl == "kerasrnn":
        layer = getattr(kerasrnn, kind.kerasrnn)(units)
    elif impl in _FORCED:
        layer = getattr(kerasrnn, kind.kerasrnn)(units, fast_path=_FORCED[impl])
    else:
        raise ValueError(f"Unknown implementation {impl!r}")
    model = model_around(layer, timesteps, args)
    builtin = "built-in" if kind.keras == kind.kerasrnn else f"built-in {kind.keras}"
    if impl == "keras":
        kernel = builtin_kernel(kind, args)
        builtin += f", {kernel}" if kernel else ""
    return KerasBench(model, x, y), lambda: getattr(layer, "last_path", None) or builtin


def model_around(layer, timesteps, args):
    """The model every Keras row times: `layer` on a `(timesteps,
    --features)` input of batch `--batch`, into `Dense(1)` unless `--head
    none`."""
    import keras

    head = [keras.layers.Dense(1)] if args.head == "dense" else []
    return keras.Sequential(
        [keras.Input((timesteps, args.features), batch_size=args.batch), layer, *head]
    )


def builtin_kernel(kind, args):
    """The backend kernel that serves the built-in of `kind` here, or `None`
    for Keras's generic loop: `use_cudnn=True` fails where the backend has
    no kernel for the layer, and the default `use_cudnn="auto"` takes it
    where it has (unmasked input, as here). On torch, Keras's LSTM and GRU
    run cuDNN on CUDA and a loop of their own elsewhere ("torch loop")."""
    import keras
    import numpy as np

    if kind.keras == "SimpleRNN":
        return None  # Keras has no fused SimpleRNN
    if keras.backend.backend() == "torch":
        # Keras's torch LSTM and GRU never refuse use_cudnn=True: off CUDA
        # they run a loop of their own (the input projection hoisted).
        import torch

        on_cuda = args.device == "gpu" and torch.cuda.is_available()
        return (
            "cuDNN" if on_cuda and torch.backends.cudnn.is_available() else "torch loop"
        )
    layer = getattr(keras.layers, kind.keras)(4, use_cudnn=True)
    try:
        layer(np.zeros((2, 3, args.features), "float32"))
    except (ValueError, NotImplementedError):
        return None
    if keras.backend.backend() == "jax" and kind.keras == "GRU":
        # jax.experimental.rnn has no GRU: Keras's JAX GRU kernel is a
        # lax.scan with the input projection hoisted, on any device.
        return "lax.scan"
    return "cuDNN"


def available_impls(args):
    """`--impls` less `torch` where PyTorch is not installed."""
    impls = list(args.impls)
    if "torch" in impls:
        try:
            import torch  # noqa: F401
        except ImportError:
            impls.remove("torch")
    return impls


def make_data(shape, args):
    """The fixed batch `(x, y)` every step of every implementation reads."""
    import numpy as np

    timesteps, units = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, timesteps, args.features)).astype("float32")
    width = 1 if args.head == "dense" else units
    y = rng.standard_normal((args.batch, width)).astype("float32")
    return x, y


def time_steps(benches, what, args):
    """Median milliseconds of `what` ("train"/"infer") per implementation,
    timed in alternating rounds, and the number of timed steps of each."""
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


def _ratio(times, impl, reference):
    return times[impl] / times[reference] if reference in times else None


def run_worker(args):
    """Times `--impls` of the kind `--worker` at the first of `--shapes`.

    Returns `{"rows": [...], "skipped": {impl: reason}}`: one row per
    implementation timed, and why a forced kerasrnn row could not be built.
    """
    kind = configs.kind_of(args.worker)
    shape = args.shapes[0]
    impls = available_impls(args)
    if not impls:
        return {"rows": [], "skipped": {}}
    if impls == ["torch"]:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
        if args.flush_denormals:
            _flush_torch_denormals()
    else:
        configure_threads(args.threads, args.device, args.flush_denormals)
    x, y = make_data(shape, args)
    benches, paths, skipped = {}, {}, {}
    for impl in impls:
        try:
            benches[impl], paths[impl] = build(impl, kind, shape, args, x, y)
        except (ValueError, TypeError) as error:
            if impl not in _FORCED and impl != "matmul-floor":
                raise
            skipped[impl] = str(error)
    train, steps = time_steps(benches, "train", args)
    train_paths = {impl: path() for impl, path in paths.items()}
    infer, _ = time_steps(benches, "infer", args)
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
                "kind": kind.name,
                "timesteps": shape[0],
                "units": shape[1],
                "batch": args.batch,
                "features": args.features,
                "implementation": impl,
                "path": paths[impl],
                "train_ms": train[impl],
                "infer_ms": infer[impl],
                "train_ratio": _ratio(train, impl, "keras"),
                "infer_ratio": _ratio(infer, impl, "keras"),
                "train_ratio_torch": _ratio(train, impl, "torch"),
                "infer_ratio_torch": _ratio(infer, impl, "torch"),
                "timed_steps": steps[impl],
            }
        )
    return {"rows": rows, "skipped": skipped}
