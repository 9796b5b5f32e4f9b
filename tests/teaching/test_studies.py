"""The Greff-style study's bookkeeping: hyperparameter draws, summaries,
verdicts, the sign test and the comparison table, on hand-made records
whose expected values are computed here."""

import math

import numpy as np
import pytest

import kerasrnn
from kerasrnn.teaching import studies


def record(task, arch, draw, score, diverged=False):
    return {
        "task": task,
        "architecture": arch,
        "draw": draw,
        "score": score,
        "diverged": diverged,
        "parameters": 100,
        "seconds": 1.0,
    }


def test_draws_are_seeded_and_inside_their_ranges():
    draws = studies.sample_hyperparameters(
        50, seed=3, learning_rate_range=(1e-3, 1e-1), units_range=(8, 64)
    )
    assert draws == studies.sample_hyperparameters(50, 3, (1e-3, 1e-1), (8, 64))
    lrs = np.array([d["learning_rate"] for d in draws])
    units = np.array([d["units"] for d in draws])
    assert lrs.min() >= 1e-3 and lrs.max() <= 1e-1
    assert units.min() >= 8 and units.max() <= 64
    # log-uniform: about half the draws below the geometric midpoint 1e-2
    assert 10 <= np.sum(lrs < 1e-2) <= 40
    assert len({d["seed"] for d in draws}) == 50


@pytest.mark.parametrize(
    "args,message",
    [
        ((0, 0, (1e-3, 1e-2), (4, 8)), "num_draws"),
        ((2, 0, (0.0, 1e-2), (4, 8)), "learning_rate_range"),
        ((2, 0, (1e-3, 1e-2), (8, 4)), "units_range"),
    ],
)
def test_bad_draw_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        studies.sample_hyperparameters(*args)


def test_recurrent_layer_names():
    assert isinstance(studies.recurrent_layer("gru", 8), kerasrnn.GRU)
    layer = studies.recurrent_layer("cifg", 8)
    assert isinstance(layer, kerasrnn.LSTM) and layer.variant == "cifg"
    assert studies.recurrent_layer("clockwork", 10).units == 12
    assert studies.recurrent_layer("depth_gated", 8).depth == 2
    with pytest.raises(ValueError, match="architecture must be"):
        studies.recurrent_layer("transformer", 8)


def test_sign_test_p_values():
    # two-sided binomial(n, 1/2): P(X <= k) * 2
    assert studies._sign_test_p(3, 0) == pytest.approx(2 * 1 / 8)
    assert studies._sign_test_p(5, 0) == pytest.approx(2 / 32)
    assert studies._sign_test_p(4, 1) == pytest.approx(2 * 6 / 32)
    assert studies._sign_test_p(0, 0) == 1.0
    assert studies._sign_test_p(2, 2) == 1.0


def test_summary_ranks_pairs_and_counts_diverged_runs_as_worst():
    records = [
        record("adding", "vanilla", 0, 0.10),
        record("adding", "vanilla", 1, 0.20),
        record("adding", "vanilla", 2, 0.30),
        record("adding", "nfg", 0, 0.50),
        record("adding", "nfg", 1, float("nan"), diverged=True),
        record("adding", "nfg", 2, 0.40),
        record("adding", "cifg", 0, 0.09),
        record("adding", "cifg", 1, 0.195),
        record("adding", "cifg", 2, 0.31),
    ]
    summary = studies.summarize(records)["adding"]
    assert list(summary) == ["cifg", "vanilla", "nfg"]  # by median
    nfg = summary["nfg"]
    assert nfg["best"] == 0.40 and nfg["median"] == 0.50 and nfg["diverged"] == 1
    assert nfg["median_ratio"] == pytest.approx(0.50 / 0.20)
    assert (nfg["worse_draws"], nfg["better_draws"]) == (3, 0)
    assert nfg["sign_test_p"] == pytest.approx(0.25)
    assert studies.verdict(nfg) == "worse"
    cifg = summary["cifg"]
    assert (cifg["worse_draws"], cifg["better_draws"]) == (1, 2)
    assert cifg["median_ratio"] == pytest.approx(0.975)
    assert studies.verdict(cifg) == "similar"  # within the 5% tolerance
    assert [summary[a]["rank"] for a in summary] == [1, 2, 3]


def test_verdict_needs_both_a_large_ratio_and_most_draws():
    entry = {"median_ratio": 0.5, "worse_draws": 2, "better_draws": 1}
    assert studies.verdict(entry) == "similar"
    entry = {"median_ratio": 0.5, "worse_draws": 0, "better_draws": 3}
    assert studies.verdict(entry) == "better"
    entry = {"median_ratio": 1.03, "worse_draws": 3, "better_draws": 0}
    assert studies.verdict(entry) == "similar"
    assert studies.verdict(entry, tolerance=0.01) == "worse"


def test_comparison_table_sets_verdicts_beside_greff():
    records = []
    for d, base in enumerate([0.1, 0.2, 0.3]):
        records += [
            record("adding", "vanilla", d, base),
            record("adding", "nfg", d, base * 3),  # worse: agrees with Greff
            record("adding", "np", d, base / 3),  # better: Greff saw no change
            record("adding", "cifg", d, base * 1.01),  # similar: agrees
        ]
    table = studies.comparison_markdown(studies.summarize(records), {"adding": 1 / 6})
    rows = {
        line.split("|")[1].strip(): line
        for line in table.splitlines()
        if line.startswith("| ")
    }
    assert rows["nfg"].rstrip(" |").endswith("agrees")
    assert "| worse |" in rows["nfg"]
    assert rows["np"].rstrip(" |").endswith("disagrees")
    assert rows["cifg"].rstrip(" |").endswith("agrees")
    assert "Memoryless baseline: 0.1667" in table


def test_history_reader_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n0,1.0,0.9\n1,0.8,0.7\n1,0.8,0.6\n2,0.5,nan\n")
    losses = studies._read_history(str(path))
    assert losses[:2] == [0.9, 0.6] and math.isnan(losses[2])
    assert studies._read_history(str(tmp_path / "none.csv")) == []


def test_run_study_trains_stores_and_reloads(tmp_path):
    task = studies.adding_task(16, 8, seq_len=4, seed=0)
    draws = studies.sample_hyperparameters(1, 0, (1e-2, 1e-2), (3, 3))
    lines = []
    first = studies.run_study(
        [task],
        ["np", "cifg"],
        draws,
        2,
        1,
        8,
        str(tmp_path),
        run_eagerly=True,
        log=lines.append,
    )
    assert [r["architecture"] for r in first] == ["np", "cifg"]
    for r in first:
        assert math.isfinite(r["score"]) and not r["diverged"]
        assert r["score"] == pytest.approx(r["val_losses"][0])
        assert (
            tmp_path / "trials" / f"adding-{r['architecture']}-draw0" / "record.json"
        ).exists()
    again = studies.run_study(
        [task],
        ["np", "cifg"],
        draws,
        2,
        1,
        8,
        str(tmp_path),
        run_eagerly=True,
        log=lines.append,
    )
    assert [r["seconds"] for r in again] == [r["seconds"] for r in first]  # reloaded
    assert len(lines) == 4
