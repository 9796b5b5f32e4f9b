"""Training a character-level language model and reporting it: the
machinery of `tutorials/char_rnn.py`.

`train_char_model` trains one cell on a `CharCorpus` under a fixed budget
(`epochs * steps_per_epoch` updates of `batch_size` random windows), with
the callbacks the tutorial reports from:

- `BitsPerCharacter` adds `bits_per_char` and `val_bits_per_char` (the
  losses in nats divided by ln 2) to the epoch logs;
- `SampleEachEpoch` prints and stores text sampled at several temperatures
  after every epoch;
- `kerasrnn.callbacks.GradientNormHistory` on `last_character_targets`
  probes records ||dL/dh_t|| for the prediction of a window's last
  character, from which `gradient_reach` says how many characters back the
  gradient still arrives.

`PUBLISHED` lists the figures the results are set beside, with their
sources; `comparison_table`, `plot_bits_per_character` and
`plot_gradient_reach` report several cells' runs side by side.
"""

import contextlib
import csv
import dataclasses
import json
import math
import os

import keras
import numpy as np

from kerasrnn.callbacks import GradientNormHistory
from kerasrnn.teaching import experiment
from kerasrnn.teaching.char_generation import CharGenerator, export_generator
from kerasrnn.teaching.char_lm import (
    CharBatches,
    bits_per_character,
    contiguous_windows,
)
from kerasrnn.teaching.char_model import (
    CELL_LABELS,
    CELLS,
    RECURRENT_NAME,
    build_char_model,
    last_character_targets,
)

__all__ = [
    "PUBLISHED",
    "BitsPerCharacter",
    "SampleEachEpoch",
    "Settings",
    "comparison_table",
    "gradient_reach",
    "history_table",
    "load_results",
    "plot_bits_per_character",
    "plot_gradient_reach",
    "published_table",
    "reach_table",
    "train_char_model",
]

_LN2 = math.log(2.0)

# Published validation figures to set a run beside. Losses are given as
# published (nanoGPT's in nats, Graves's in bits) and converted to bits.
PUBLISHED = (
    {
        "source": "Karpathy, nanoGPT README, `config/train_shakespeare_char.py`",
        "data": "Tiny Shakespeare, the same 90/10 split as here",
        "model": "6-layer Transformer, 384 channels, 6 heads, context 256, "
        "dropout 0.2, 10.65 M parameters; 5,000 steps of 64 x 256 "
        "characters (about 3 minutes on an A100)",
        "published": "best validation loss 1.4697 nats",
        "bits": 1.4697 / _LN2,
    },
    {
        "source": "Karpathy, nanoGPT README, its CPU ('macbook') settings",
        "data": "Tiny Shakespeare, the same 90/10 split as here",
        "model": "4-layer Transformer, 128 channels, 4 heads, context 64, "
        "no dropout, about 0.80 M parameters (our count); 2,000 steps of "
        "12 x 64 characters (about 3 minutes on a CPU)",
        "published": "validation loss 1.88 nats",
        "bits": 1.88 / _LN2,
    },
    {
        "source": "Graves 2013, 'Generating Sequences With Recurrent Neural "
        "Networks', Table 2",
        "data": "Hutter Prize Wikipedia (enwik8): other data, with XML "
        "markup, 100 M characters; not comparable with Tiny Shakespeare",
        "model": "a deep stacked LSTM, much larger than ours",
        "published": "validation 1.67 bits/char (1.33 with dynamic evaluation)",
        "bits": 1.67,
    },
)


@dataclasses.dataclass
class Settings:
    """One training run's settings (every one has a tutorial flag).

    `epochs * steps_per_epoch` updates of `batch_size` windows of `seq_len`
    characters is the budget; `learning_rate` decays along a cosine to
    `final_learning_rate` over it.
    """

    cell: str = "lstm"
    units: int = 256
    num_layers: int = 1
    embedding_dim: int = 64
    seq_len: int = 100
    batch_size: int = 128
    steps_per_epoch: int = 200
    epochs: int = 15
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-4
    clipnorm: float = 5.0
    dropout: float = 0.2
    validation_fraction: float = 0.1
    prompt: str = "ROMEO:\n"
    sample_chars: int = 300
    temperatures: tuple = (0.5, 0.8, 1.0)
    top_k: int = None
    probe_windows: int = 32
    reach_threshold: float = 1e-3
    seed: int = 0

    @property
    def steps(self):
        return self.epochs * self.steps_per_epoch

    def check(self):
        """Raises `ValueError` naming the first bad setting."""
        if self.cell not in CELLS:
            raise ValueError(
                f"cell must be one of {tuple(CELLS)}. Received: cell={self.cell!r}"
            )
        for name in (
            "units",
            "num_layers",
            "embedding_dim",
            "seq_len",
            "batch_size",
            "steps_per_epoch",
            "epochs",
            "probe_windows",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{name} must be a positive integer. Received: {name}={value!r}"
                )
        if not 0 < self.final_learning_rate <= self.learning_rate:
            raise ValueError(
                "final_learning_rate must lie in (0, learning_rate]. Received: "
                f"learning_rate={self.learning_rate!r}, "
                f"final_learning_rate={self.final_learning_rate!r}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(
                f"dropout must lie in [0, 1). Received: dropout={self.dropout!r}"
            )
        if not 0 < self.reach_threshold < 1:
            raise ValueError(
                "reach_threshold must lie in (0, 1). "
                f"Received: reach_threshold={self.reach_threshold!r}"
            )
        return self


class BitsPerCharacter(keras.callbacks.Callback):
    """Adds `bits_per_char` and `val_bits_per_char`, the epoch's losses in
    bits (nats / ln 2), to the logs. List it before `CSVLogger`."""

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        for key in ("loss", "val_loss"):
            if key in logs:
                prefix = "val_" if key.startswith("val_") else ""
                logs[f"{prefix}bits_per_char"] = bits_per_character(logs[key])


class SampleEachEpoch(keras.callbacks.Callback):
    """Samples text after every epoch, prints it and appends it to a file.

    Args:
        generator: A `CharGenerator` of the model being trained.
        prompt: The text each sample continues.
        num_chars: Characters per sample.
        temperatures: One sample per temperature.
        top_k: As in `CharGenerator.generate`. Default: `None`.
        seed: Seed of the draws; epoch `e` samples with `(seed, e)`.
            Default: 0.
        path: A Markdown file the samples are appended to, or `None`.
            Default: `None`.
        baseline: Unigram bits per character, printed beside the epoch's
            validation figure, or `None`. Default: `None`.
        verbose: Print the samples. Default: `True`.
    """

    def __init__(
        self,
        generator,
        prompt,
        num_chars,
        temperatures,
        top_k=None,
        seed=0,
        path=None,
        baseline=None,
        verbose=True,
    ):
        super().__init__()
        self.generator = generator
        self.prompt = prompt
        self.num_chars = num_chars
        self.temperatures = tuple(temperatures)
        self.top_k = top_k
        self.seed = seed
        self.path = path
        self.baseline = baseline
        self.verbose = verbose

    def samples(self, epoch):
        texts = self.generator.generate_many(
            self.prompt,
            self.num_chars,
            self.temperatures,
            top_k=self.top_k,
            seed=[self.seed, epoch],
        )
        return dict(zip(self.temperatures, texts))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        samples = self.samples(epoch)
        bits = logs.get("val_bits_per_char")
        header = f"epoch {epoch + 1}"
        if bits is not None:
            header += f": validation {bits:.3f} bits/char"
            if self.baseline is not None:
                header += f" (unigram baseline {self.baseline:.3f})"
        text = "\n".join(
            f"--- temperature {t:g}\n{self.prompt}{s}" for t, s in samples.items()
        )
        if self.verbose:
            print(f"\n== {header}\n{text}\n", flush=True)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"## {header}\n\n```\n{text}\n```\n\n")


def gradient_reach(profile, threshold=0.01):
    """How far back in the text the gradient of a last-character prediction
    arrives.

    Args:
        profile: `(timesteps,)` norms ||dL/dh_t|| for the loss of the last
            step's prediction (`GradientNormHistory` on
            `last_character_targets` probes).
        threshold: The ratio to the last step's norm that counts as
            "arrived". Default: 0.01.

    Returns:
        A dict: `ratios`, the norms divided by the last step's, indexed by
        the distance back (`ratios[d]` for `d` characters before the
        predicted one's predecessor); `reach`, the largest distance before
        the ratio first drops below `threshold` (`timesteps - 1` if it never
        does); `capped`, whether it never dropped.

    Example:

    >>> r = gradient_reach([0.001, 0.01, 0.1, 1.0], threshold=0.05)
    >>> r["ratios"].tolist(), r["reach"], r["capped"]
    ([1.0, 0.1, 0.01, 0.001], 1, False)
    """
    profile = np.asarray(profile, dtype=np.float64)
    if profile.ndim != 1 or profile.size < 1 or not profile[-1] > 0:
        raise ValueError(
            "profile must be 1-D with a positive last entry. Received: "
            f"shape {profile.shape}, last {profile[-1] if profile.size else None}"
        )
    ratios = profile[::-1] / profile[-1]
    below = np.flatnonzero(ratios < threshold)
    reach = int(below[0] - 1) if below.size else int(profile.size - 1)
    return {"ratios": ratios, "reach": reach, "capped": not below.size}


def _read_csv_history(path):
    """Per-epoch logs from a CSVLogger file; a repeated epoch (after a
    resume) keeps its last row."""
    rows = {}
    if os.path.exists(path):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                rows[int(row["epoch"])] = {
                    k: float(v) for k, v in row.items() if k != "epoch" and v != ""
                }
    return [rows[e] for e in sorted(rows)]


class _SaveNorms(keras.callbacks.Callback):
    """Writes the gradient-norm history after every epoch, so that a
    resumed run keeps the records made before the interruption."""

    def __init__(self, norms, path):
        super().__init__()
        self.norms = norms
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.norms.save(self.path)


def _restore_norms(norms, path):
    saved = np.load(f"{path}.npz")
    norms.history = {"epoch": [int(e) for e in saved["epoch"]]}
    for key in saved.files:
        if key != "epoch":
            norms.history[key] = saved[key]
    norms._epochs_done = norms.history["epoch"][-1]


def train_char_model(
    settings, corpus, output_dir, verbose=2, strategy=None, data="the given text"
):
    """Trains `settings.cell` on `corpus` and writes what the tutorial
    reports into `output_dir`.

    An interrupted run resumes from its last finished epoch when called
    again with the same settings and folder (`keras.callbacks.BackupAndRestore`);
    the per-epoch history, samples and gradient records written before the
    interruption are kept. A finished run is started afresh.

    Writes `history.csv`, `samples.md`, `gradient_norms.{npz,csv,png}`,
    `model.keras`, `generator/` (the SavedModel, TensorFlow only) and
    `results.json`.

    Args:
        settings: A `Settings`.
        corpus: A `kerasrnn.teaching.char_lm.CharCorpus`.
        output_dir: The run's folder.
        verbose: Keras's `fit` verbosity; 0 also silences the samples.
            Default: 2.
        strategy: A `tf.distribute` strategy to build the model under, or
            `None`. Default: `None`.
        data: What the text is, for the reports. Default: `"the given text"`.

    Returns:
        The dict written to `results.json` (see `load_results`).
    """
    settings.check()
    if len(corpus.val_codes) < settings.seq_len + 1:
        raise ValueError(
            f"The validation text ({len(corpus.val_codes)} characters) is shorter "
            f"than one window of seq_len + 1 = {settings.seq_len + 1}: use a "
            f"longer text or a smaller seq_len. Received: seq_len={settings.seq_len}"
        )
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        name: os.path.join(output_dir, name)
        for name in ("history.csv", "samples.md", "gradient_norms", "backup")
    }
    resuming = os.path.isdir(os.path.join(paths["backup"], settings.cell))
    if not resuming:
        for name in ("history.csv", "samples.md"):
            if os.path.exists(paths[name]):
                os.remove(paths[name])

    keras.utils.set_random_seed(settings.seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        settings.learning_rate,
        decay_steps=settings.steps,
        alpha=settings.final_learning_rate / settings.learning_rate,
    )
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_char_model(
            corpus.vocab_size,
            cell=settings.cell,
            units=settings.units,
            num_layers=settings.num_layers,
            embedding_dim=settings.embedding_dim,
            learning_rate=schedule,
            clipnorm=settings.clipnorm,
            dropout=settings.dropout,
        )
    generator = CharGenerator(model, corpus.alphabet)
    batches = CharBatches(
        corpus.train_codes,
        settings.seq_len,
        settings.batch_size,
        settings.steps_per_epoch,
        seed=settings.seed,
    )
    x_val, y_val = contiguous_windows(corpus.val_codes, settings.seq_len)
    x_probe, y_probe = last_character_targets(
        corpus.val_codes, settings.seq_len, settings.probe_windows, seed=settings.seed
    )
    norms = GradientNormHistory(x_probe, y_probe, layer=RECURRENT_NAME)
    if resuming and os.path.exists(f"{paths['gradient_norms']}.npz"):
        _restore_norms(norms, paths["gradient_norms"])
    sampler = SampleEachEpoch(
        generator,
        settings.prompt,
        settings.sample_chars,
        settings.temperatures,
        top_k=settings.top_k,
        seed=settings.seed,
        path=paths["samples.md"],
        baseline=corpus.unigram_bits,
        verbose=verbose > 0,
    )
    callbacks = experiment.training_callbacks(
        output_dir,
        name=settings.cell,
        extra=[
            batches.callback(),
            norms,
            _SaveNorms(norms, paths["gradient_norms"]),
            BitsPerCharacter(),
            sampler,
            keras.callbacks.CSVLogger(paths["history.csv"], append=True),
        ],
    )
    with experiment.Stopwatch() as clock:
        model.fit(
            batches,
            validation_data=(x_val, y_val),
            validation_batch_size=settings.batch_size,
            epochs=settings.epochs,
            callbacks=callbacks,
            verbose=verbose,
        )
    history = _read_csv_history(paths["history.csv"])
    files = [paths["history.csv"], paths["samples.md"]]
    files.extend(norms.save(paths["gradient_norms"]))
    files.append(norms.save_plot(f"{paths['gradient_norms']}.png"))
    files.append(_save_model(model, os.path.join(output_dir, "model.keras")))
    if keras.backend.backend() == "tensorflow":
        files.append(export_generator(generator, os.path.join(output_dir, "generator")))
    final_samples = sampler.samples(settings.epochs)
    # The same validation text read without resetting the state between windows.
    stateful_bits = generator.bits_per_character(
        corpus.val_codes, streams=min(64, len(corpus.val_codes) // 2)
    )
    # Per recorded state: "h", and "c" for an LSTM (its cell state).
    reach_by_state = {
        key: [gradient_reach(p, settings.reach_threshold) for p in norms.history[key]]
        for key in norms.keys
    }
    reach = reach_by_state["h"]
    results = {
        "settings": {**dataclasses.asdict(settings), "steps": settings.steps},
        "cell": settings.cell,
        "label": CELL_LABELS.get(settings.cell, settings.cell),
        "parameters": int(model.count_params()),
        "data": data,
        "alphabet": corpus.alphabet,
        "train_chars": len(corpus.train_codes),
        "val_chars": len(corpus.val_codes),
        "val_windows": len(x_val),
        "unigram_bits": corpus.unigram_bits,
        "history": history,
        "val_bits_per_char": [h.get("val_bits_per_char") for h in history],
        "final_val_bits_per_char": history[-1]["val_bits_per_char"]
        if history
        else None,
        "stateful_val_bits_per_char": stateful_bits,
        "best_val_bits_per_char": min(
            (h["val_bits_per_char"] for h in history), default=None
        ),
        "samples": {f"{t:g}": s for t, s in final_samples.items()},
        "gradient_epochs": list(norms.history["epoch"]),
        "gradient_reach": [r["reach"] for r in reach],
        "gradient_reach_capped": [r["capped"] for r in reach],
        "gradient_ratios": [r["ratios"] for r in reach],
        "gradient_by_state": {
            key: {
                "reach": [r["reach"] for r in records],
                "capped": [r["capped"] for r in records],
                "ratios": [r["ratios"] for r in records],
            }
            for key, records in reach_by_state.items()
        },
        "training_seconds": clock.seconds,
        "seconds_per_step": clock.seconds / settings.steps,
        "backend": keras.backend.backend(),
        "machine": experiment.machine_description(),
        "files": [os.path.basename(f) for f in files],
    }
    experiment.write_json(os.path.join(output_dir, "results.json"), results)
    return results


def _save_model(model, path):
    tmp = f"{path}.partial.keras"
    model.save(tmp)
    os.replace(tmp, path)
    return path


def load_results(output_dir):
    """The `results.json` of every cell trained under `output_dir`
    (`output_dir/<cell>/results.json`), in the order of `CELLS`."""
    found = []
    names = list(CELLS) + sorted(
        set(os.listdir(output_dir)) - set(CELLS) if os.path.isdir(output_dir) else []
    )
    for name in names:
        path = os.path.join(output_dir, name, "results.json")
        if os.path.isfile(path):
            with open(path) as f:
                found.append(json.load(f))
    return found


def history_table(results):
    """Markdown: validation bits per character per epoch of one run."""
    baseline = results["unigram_bits"]
    lines = [
        "| epoch | updates | train bits/char | validation bits/char | vs unigram |",
        "|---|---|---|---|---|",
    ]
    steps = results["settings"]["steps_per_epoch"]
    for k, h in enumerate(results["history"]):
        val = h.get("val_bits_per_char", float("nan"))
        lines.append(
            f"| {k + 1} | {(k + 1) * steps} | {h.get('bits_per_char', float('nan')):.3f} "
            f"| {val:.3f} | {val / baseline:.0%} |"
        )
    return "\n".join(lines)


def published_table(results=None):
    """Markdown: `PUBLISHED`, after the row of a run's `results` if given."""
    lines = [
        "| result | data | model | published | bits/char |",
        "|---|---|---|---|---|",
    ]
    if results is not None:
        s = results["settings"]
        model = (
            f"{results['label']}, {s['units']} units x {s['num_layers']} layer(s), "
            f"{results['parameters']:,} parameters; {s['steps']:,} steps of "
            f"{s['batch_size']} x {s['seq_len']} characters"
        )
        lines.append(
            f"| this run | {results['data']} | {model} | "
            f"| {results['final_val_bits_per_char']:.3f} |"
        )
    for p in PUBLISHED:
        lines.append(
            f"| {p['source']} | {p['data']} | {p['model']} | {p['published']} "
            f"| {p['bits']:.3f} |"
        )
    return "\n".join(lines)


def comparison_table(all_results):
    """Markdown: one row per trained cell."""
    lines = [
        "| cell | units | parameters | updates | time (s) | s/update "
        "| final val bits/char | best | state carried | unigram "
        "| gradient reach (chars) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in all_results:
        s = r["settings"]
        reach = r["gradient_reach"][-1]
        capped = r["gradient_reach_capped"][-1]
        lines.append(
            f"| {r['label']} | {s['units']} x {s['num_layers']} | {r['parameters']:,} "
            f"| {s['steps']} | {r['training_seconds']:.0f} | {r['seconds_per_step']:.3f} "
            f"| {r['final_val_bits_per_char']:.3f} | {r['best_val_bits_per_char']:.3f} "
            f"| {r['stateful_val_bits_per_char']:.3f} | {r['unigram_bits']:.3f} "
            f"| {'>= ' if capped else ''}{reach} |"
        )
    return "\n".join(lines)


def reach_table(results, state="h", distances=(1, 10, 25, 50, 75, 99)):
    """Markdown: for each gradient record of one run, ||dL/d`state`|| `d`
    characters back relative to the last step, and the reach.

    Args:
        results: A run's results (`train_char_model`).
        state: `"h"`, or `"c"` for an LSTM's cell state. Default: `"h"`.
        distances: Characters back to show (those within the window).
            Default: (1, 10, 25, 50, 75, 99).
    """
    by_state = results.get("gradient_by_state") or {
        "h": {
            "ratios": results["gradient_ratios"],
            "reach": results["gradient_reach"],
            "capped": results["gradient_reach_capped"],
        }
    }
    if state not in by_state:
        raise ValueError(
            f"state must be one of {sorted(by_state)} for this run. Received: "
            f"state={state!r}"
        )
    records = by_state[state]
    steps = len(records["ratios"][0])
    distances = [d for d in distances if d < steps]
    lines = [
        f"| after epoch | {' | '.join(f'{d} back' for d in distances)} | reach |",
        "|---|" + "---|" * (len(distances) + 1),
    ]
    for epoch, ratios, reach, capped in zip(
        results["gradient_epochs"],
        records["ratios"],
        records["reach"],
        records["capped"],
    ):
        cells = " | ".join(f"{ratios[d]:.1e}" for d in distances)
        lines.append(f"| {epoch} | {cells} | {'>= ' if capped else ''}{reach} |")
    return "\n".join(lines)


def plot_bits_per_character(all_results, path):
    """Validation bits per character against updates, one line per cell,
    with the unigram baseline and the published Tiny Shakespeare figures."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = figure.subplots()
    for k, r in enumerate(all_results):
        steps = r["settings"]["steps_per_epoch"]
        bits = r["val_bits_per_char"]
        updates = [(e + 1) * steps for e in range(len(bits))]
        ax.plot(updates, bits, marker=".", color=f"C{k}", label=r["label"])
    if all_results:
        ax.axhline(
            all_results[0]["unigram_bits"],
            color="gray",
            linestyle="--",
            label="unigram baseline",
        )
    for p, style in zip(PUBLISHED[:2], (":", "-.")):
        ax.axhline(
            p["bits"],
            color="black",
            linestyle=style,
            linewidth=0.8,
            label=f"nanoGPT, {p['published'].split()[-2]} nats",
        )
    ax.set_xlabel("updates")
    ax.set_ylabel("validation bits per character")
    ax.set_title("Character-level language model, Tiny Shakespeare")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    figure.savefig(path)
    return path


def plot_gradient_reach(all_results, path):
    """||dL/dh_{T-d}|| / ||dL/dh_T|| against the distance d back from the
    predicted character, before (dotted) and after (solid) training."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = figure.subplots()
    for k, r in enumerate(all_results):
        for row, style, when in ((0, ":", "before"), (-1, "-", "after")):
            ratios = np.asarray(r["gradient_ratios"][row])
            shown = ratios > 0
            ax.semilogy(
                np.arange(ratios.size)[shown],
                ratios[shown],
                linestyle=style,
                color=f"C{k}",
                label=f"{r['label']}, {when} training",
            )
    if all_results:
        threshold = all_results[0]["settings"]["reach_threshold"]
        ax.axhline(threshold, color="gray", linewidth=0.8)
    ax.set_xlabel("characters back from the prediction")
    ax.set_ylabel("||dL/dh|| relative to the last step")
    ax.set_title("How far back a prediction's gradient reaches")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    figure.savefig(path)
    return path
