"""The suite's command line (`benchmarks/bench/configs.py`): defaults,
`--backend all`, the extra kinds `--kinds` accepts once kerasrnn has them,
and bad values refused with the flag's name."""

import pytest

import kerasrnn
from benchmarks.bench import configs


def test_quick_lowers_every_default_and_flags_still_win():
    args = configs.parse_args(["--quick", "--batch", "8"])
    assert (args.batch, args.features, args.steps, args.warmup) == (8, 3, 3, 1)
    assert args.shapes == [(12, 16)] and args.timing_processes == 1
    assert args.memory == "no" and args.head == "dense"
    full = configs.parse_args([])
    assert full.shapes == [(100, 128), (500, 128), (100, 512)]
    assert full.kinds == ["simple_rnn", "lstm", "gru"]
    assert full.impls == list(configs.IMPLEMENTATIONS) and full.memory == "yes"


@pytest.mark.parametrize(
    "flag, expected",
    [
        ("all", ["tensorflow", "jax", "torch"]),
        ("jax", ["jax"]),
        ("torch", ["torch"]),
    ],
    ids=["all", "jax", "torch"],
)
def test_backend_flag_names_the_backends_run(flag, expected):
    assert configs.parse_args(["--backend", flag]).backends == expected


def test_backend_defaults_to_keras_backend(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert configs.parse_args([]).backends == ["jax"]
    monkeypatch.delenv("KERAS_BACKEND")
    assert configs.parse_args([]).backends == ["tensorflow"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--memory-processes", "0"],
            "--memory-processes must be at least 1. Received: 0",
        ),
        (
            ["--timing-processes", "0"],
            "--timing-processes must be at least 1. Received: 0",
        ),
        (["--kinds", "lstm,transformer"], "--kinds: unknown kind 'transformer'"),
        (["--impls", "keras,flax"], "--impls: unknown implementation 'flax'"),
        (["--shapes", "100by128"], "--shapes must look like 100x128,500x128"),
        (["--backend", "numpy"], "invalid choice: 'numpy'"),
    ],
    ids=["memory-processes", "timing-processes", "kind", "impl", "shape", "backend"],
)
def test_bad_flags_are_refused_with_their_name(capsys, flags, message):
    with pytest.raises(SystemExit) as error:
        configs.parse_args(["--quick", *flags])
    assert error.value.code == 2
    assert message in capsys.readouterr().err


def test_an_extra_kind_is_refused_until_kerasrnn_has_it(capsys, monkeypatch):
    for kind in configs.EXTRA_KINDS.values():
        monkeypatch.delattr(kerasrnn, kind.kerasrnn, raising=False)
    with pytest.raises(SystemExit):
        configs.parse_args(["--kinds", "lstm,min_gru"])
    assert "--kinds: kerasrnn has no MinGRU yet" in capsys.readouterr().err

    # Once kerasrnn exports the class (a stand-in here), the kind is accepted
    # and timed against the built-in it names.
    monkeypatch.setattr(kerasrnn, "MinGRU", kerasrnn.GRU, raising=False)
    args = configs.parse_args(["--kinds", "lstm,min_gru"])
    assert args.kinds == ["lstm", "min_gru"]
    kind = configs.kind_of("min_gru")
    assert (kind.kerasrnn, kind.keras, kind.torch) == ("MinGRU", "GRU", "GRU")


def test_standard_and_extra_kinds_are_apart():
    assert not set(configs.KINDS) & set(configs.EXTRA_KINDS)
    for kind in configs.KINDS.values():
        assert kind.kerasrnn == kind.keras and hasattr(kerasrnn, kind.kerasrnn)
