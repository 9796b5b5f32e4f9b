"""The timing worker (`benchmarks/bench/timing.py`), in this process on this
test's backend: what each implementation builds, the kernel a built-in
names, and the batch every step reads. No timing is asserted."""

import importlib.util

import keras
import numpy as np
import pytest

import kerasrnn
from benchmarks.bench import configs, timing


def test_builtin_kernel_is_named_only_where_keras_takes_one():
    """The path column names the backend kernel behind a built-in: none on a
    CPU except Keras's JAX GRU, whose kernel is a `lax.scan` on any device,
    and Keras's torch LSTM and GRU, which run a loop of their own off CUDA."""
    args = configs.parse_args(["--quick"])
    backend = keras.backend.backend()
    expected = {
        "tensorflow": {"simple_rnn": None, "lstm": None, "gru": None},
        "jax": {"simple_rnn": None, "lstm": None, "gru": "lax.scan"},
        "torch": {"simple_rnn": None, "lstm": "torch loop", "gru": "torch loop"},
    }[backend]
    for name, kernel in expected.items():
        assert timing.builtin_kernel(configs.kind_of(name), args) == kernel, name


@pytest.mark.parametrize("head", ["dense", "none"])
def test_head_is_what_the_loss_reads(head):
    """`--head dense` (the default) times the layer inside a model, its last
    output into `Dense(1)`; `--head none` puts the loss on the layer's output.
    The torch rows get the same head."""
    flags = ["--quick"] + ([] if head == "dense" else ["--head", head])
    args = configs.parse_args(flags)
    assert args.head == head
    lstm = configs.kind_of("lstm")
    x, y = timing.make_data((12, 16), args)
    width = 1 if head == "dense" else 16
    assert y.shape == (4, width)
    keras_bench, _ = timing.build("keras", lstm, (12, 16), args, x, y)
    assert keras_bench.model.output_shape == (4, width)
    assert isinstance(keras_bench.model.layers[-1], keras.layers.Dense) == (
        head == "dense"
    )
    keras_bench.train()  # the loss's shapes agree
    torch = pytest.importorskip("torch")
    torch_bench, _ = timing.build("torch", lstm, (12, 16), args, x, y)
    if head == "dense":
        assert isinstance(torch_bench.head, torch.nn.Linear)
        assert torch_bench.head.out_features == 1
        trained = [p for g in torch_bench.optimizer.param_groups for p in g["params"]]
        assert any(p is torch_bench.head.weight for p in trained)
    else:
        assert isinstance(torch_bench.head, torch.nn.Identity)
    before = [p.detach().clone() for p in torch_bench.head.parameters()]
    torch_bench.train()
    after = list(torch_bench.head.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(after, before))


def test_the_batch_is_a_backend_tensor_made_once():
    """Every step reads the same backend tensors: none is converted from
    NumPy inside the timed or measured step."""
    args = configs.parse_args(["--quick"])
    x, y = timing.make_data((12, 16), args)
    keras_bench, _ = timing.build(
        "kerasrnn", configs.kind_of("gru"), (12, 16), args, x, y
    )
    batch = keras_bench.batch
    assert len(batch) == 2
    for tensor, array in zip(batch, (x, y)):
        assert not isinstance(tensor, np.ndarray)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(tensor), array)
    keras_bench.train()
    assert keras_bench.batch is batch


def test_an_extra_kind_is_timed_against_the_built_in_it_names(monkeypatch):
    """`min_gru` builds `kerasrnn.MinGRU` (a stand-in here) beside
    `keras.layers.GRU` and `torch.nn.GRU`; the reference row says which
    built-in it is."""
    monkeypatch.setattr(kerasrnn, "MinGRU", kerasrnn.GRU, raising=False)
    args = configs.parse_args(["--quick", "--kinds", "min_gru"])
    kind = configs.kind_of("min_gru")
    x, y = timing.make_data((12, 16), args)
    ours, _ = timing.build("kerasrnn", kind, (12, 16), args, x, y)
    builtin, path = timing.build("keras", kind, (12, 16), args, x, y)
    assert isinstance(ours.model.layers[0], kerasrnn.MinGRU)
    assert type(builtin.model.layers[0]) is keras.layers.GRU
    builtin.train()
    assert path().startswith("built-in GRU")
    torch = pytest.importorskip("torch")
    reference, _ = timing.build("torch", kind, (12, 16), args, x, y)
    assert isinstance(reference.module, torch.nn.GRU)


def test_a_forced_fast_row_is_refused_where_the_backend_has_no_kernels():
    """`kerasrnn-fast` is `fast_path=True`: a `ValueError` that names the
    reason where the backend has no fused kernels (the worker reports it
    and times the other rows), a model where it has."""
    backend = keras.backend.backend()
    has_kernels = importlib.util.find_spec(f"kerasrnn.fast.{backend}") is not None
    args = configs.parse_args(["--quick"])
    lstm = configs.kind_of("lstm")
    x, y = timing.make_data((12, 16), args)
    if not has_kernels:
        with pytest.raises(ValueError, match="no fused kernels"):
            timing.build("kerasrnn-fast", lstm, (12, 16), args, x, y)
    else:
        bench, path = timing.build("kerasrnn-fast", lstm, (12, 16), args, x, y)
        bench.train()
        assert path() == "fast"
