"""MkDocs hooks that make the parts of the site that follow the code.

- The API reference: one page per public package of `kerasrnn`
  (`api_reference.py`), added to the nav section "API reference".
- The tutorials: every `tutorials/*.py` has a page. A hand-written
  `docs/tutorials/<name>.md` (results of a real run, figures) includes the
  script's walkthrough where it says `<!-- walkthrough: <name> -->`; a script
  without one gets a page of its walkthrough alone. The notebook and the
  script are published next to the page for download.
- The benchmarks: `<!-- benchmark-results -->` becomes, for every
  `benchmarks/results/<name>.json` of the suite, a plot of the × keras
  ratios and the table of `<name>.md`; `<!-- benchmark-method -->` the
  method of `benchmarks/README.md`; `<!-- callback-overhead -->` the table of
  `benchmarks/results/callback_overhead-*.json`.
- Pages other sessions are writing (`OPTIONAL_PAGES`) may be absent: they
  then leave the nav, table rows that link them are left out and other links
  to them become plain text, until they land.
"""

import glob
import io
import json
import logging
import os
import posixpath
import re
import sys

from mkdocs.structure.files import File

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_reference  # noqa: E402
import make_notebooks as notebooks  # noqa: E402
import tutobook  # noqa: E402

log = logging.getLogger("mkdocs.hooks.kerasrnn")

ROOT = notebooks.ROOT
OPTIONAL_PAGES = (
    "guide/serving.md",
    "guide/keras_compatibility.md",
    "guide/modern_cells.md",
)
# Reading order of the tutorials (others follow by name).
TUTORIAL_ORDER = (
    "quickstart",
    "vanishing_gradients",
    "bptt_from_scratch",
    "lstm_step_by_step",
    "lstm_variants",
    "imdb_sentiment",
    "imdb_predict",
    "char_rnn",
    "parallel_scan",
)
API_SECTION = "API reference"
TUTORIALS_SECTION = "Tutorials"
_WALKTHROUGH = re.compile(r"^<!-- walkthrough: (\w+) -->$", re.M)
_RESULTS = "<!-- benchmark-results -->"
_METHOD = "<!-- benchmark-method -->"
_OVERHEAD = "<!-- callback-overhead -->"
_MORE_TUTORIALS = "<!-- more-tutorials -->"
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+?\.md)(#[^)\s]*)?\)")

_state = {}


def tutorial_names():
    names = [
        os.path.splitext(os.path.basename(p))[0] for p in notebooks.tutorial_scripts()
    ]
    rank = {name: k for k, name in enumerate(TUTORIAL_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def _docs_path(config, uri):
    return os.path.join(config["docs_dir"], *uri.split("/"))


def _missing_optional(config):
    return {
        uri for uri in OPTIONAL_PAGES if not os.path.exists(_docs_path(config, uri))
    }


def _prune(items, missing):
    """The nav without the entries of absent optional pages."""
    kept = []
    for item in items:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                kept.append({title: _prune(value, missing)})
                continue
            if value in missing:
                log.info("%s is not written yet: left out of the nav", value)
                continue
        elif item in missing:
            log.info("%s is not written yet: left out of the nav", item)
            continue
        kept.append(item)
    return kept


def _extend_section(items, title, extra):
    """Puts `extra` into the nav section `title`, after its first entry (the
    section's index page) and before the others."""
    for item in items:
        if isinstance(item, dict) and title in item:
            value = item[title]
            value = value if isinstance(value, list) else [value]
            item[title] = value[:1] + extra + value[1:]
            return
    raise ValueError(f"mkdocs.yml's nav has no section {title!r} for the hook to fill")


def on_config(config):
    pages, package, homes = api_reference.pages(ROOT)
    _state["api"] = pages
    _state["api_overview"] = api_reference.overview(package, homes, pages)
    _state["missing"] = _missing_optional(config)
    nav = _prune(config["nav"], _state["missing"])
    library = [{p.package: p.uri} for p in pages if not p.is_teaching]
    teaching = [{p.package: p.uri} for p in pages if p.is_teaching]
    _extend_section(
        nav, API_SECTION, [{"The library": library}, {"The teaching package": teaching}]
    )
    _extend_section(
        nav, TUTORIALS_SECTION, [f"tutorials/{n}.md" for n in tutorial_names()]
    )
    config["nav"] = nav
    return config


def _generated(config, uri, content):
    return File.generated(config, uri, content=content)


def _tutorial_stub(name):
    script = os.path.join(notebooks.TUTORIALS, f"{name}.py")
    with open(script, encoding="utf-8") as f:
        parsed = tutobook.read_script(f.read())
    return f"# {parsed.title}\n\n<!-- walkthrough: {name} -->\n"


def on_files(files, config):
    for page in _state["api"]:
        files.append(_generated(config, page.uri, page.markdown))
    files.append(_generated(config, "api/index.md", _state["api_overview"]))
    for name in tutorial_names():
        uri = f"tutorials/{name}.md"
        if files.get_file_from_path(uri) is None:
            files.append(_generated(config, uri, _tutorial_stub(name)))
        with open(os.path.join(notebooks.TUTORIALS, f"{name}.py"), "rb") as f:
            files.append(_generated(config, f"tutorials/{name}.py", f.read()))
        notebook = os.path.join(notebooks.NOTEBOOKS, f"{name}.ipynb")
        if os.path.exists(notebook):
            with open(notebook, "rb") as f:
                files.append(_generated(config, f"notebooks/{name}.ipynb", f.read()))
    for path in benchmark_results():
        if not _is_benchmark_table(path):
            continue
        name = os.path.splitext(os.path.basename(path))[0]
        files.append(
            _generated(config, f"images/benchmarks/{name}.png", plot_ratios(path))
        )
    return files


# -- tutorials ---------------------------------------------------------------


def _execution_note(name):
    path = os.path.join(notebooks.NOTEBOOKS, f"{name}.ipynb")
    run = notebooks.read(path).metadata.get("kerasrnn")
    if not run:
        return " (without outputs: run it to see them)"
    flags = f"`{run['flags']}`" if run["flags"] else "no flags (the default run)"
    load = run.get("load_average_1min")
    busy = f", load average {load[0]} to {load[1]}" if load else ""
    return (
        f", with the outputs and figures of a run with {flags} "
        f"({run['wall_seconds']} s on {run['machine']}{busy}, {run['executed']})"
    )


def _notebook_link(name):
    """The sentence's end about the notebook, if there is one."""
    if not os.path.exists(os.path.join(notebooks.NOTEBOOKS, f"{name}.ipynb")):
        log.info(
            "tutorials/%s.py has no notebook yet: make_notebooks.py makes it", name
        )
        return ""
    return f" or [the notebook](../notebooks/{name}.ipynb){_execution_note(name)}"


def walkthrough(name):
    """The script as a page section: header, downloads, prose and code."""
    with open(os.path.join(notebooks.TUTORIALS, f"{name}.py"), encoding="utf-8") as f:
        parsed = tutobook.read_script(f.read())
    fields = [f for f in tutobook.HEADER_FIELDS[1:] if parsed.header.get(f)]
    lines = [
        '!!! info "Run it"',
        "",
        f"    `python tutorials/{name}.py` (`--quick` for a run of seconds, "
        "`--help` for every flag).",
        f"    Download [the script]({name}.py){_notebook_link(name)}.",
        "",
        "## The tutorial, step by step",
        "",
        "The script, prose and code in its order (the notebook has the same cells).",
        "",
    ]
    lines += [f"- **{f}:** {parsed.header[f]}" for f in fields]
    for block in parsed.blocks:
        lines.append("")
        if block.kind == "markdown":
            lines.append(tutobook.shift_headings(block.text, 1))
        else:
            lines += ["```python", block.text, "```"]
    return "\n".join(lines)


def more_tutorials(index_markdown):
    """Rows for the tutorials the index's table does not link yet: their
    title and description from the script's header."""
    rows = []
    for name in tutorial_names():
        if f"]({name}.md)" in index_markdown:
            continue
        with open(
            os.path.join(notebooks.TUTORIALS, f"{name}.py"), encoding="utf-8"
        ) as f:
            header = tutobook.read_script(f.read()).header
        rows.append(
            f"- [{header['Title']}]({name}.md): {header.get('Description', '')}"
        )
    if not rows:
        return ""
    return "More tutorials:\n\n" + "\n".join(rows)


# -- benchmarks --------------------------------------------------------------


def benchmark_results():
    return sorted(glob.glob(os.path.join(ROOT, "benchmarks", "results", "*.json")))


def _is_benchmark_table(path):
    with open(path, encoding="utf-8") as f:
        results = json.load(f).get("results")
    return isinstance(results, list) and all("implementation" in r for r in results)


LABELS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def plot_ratios(path):
    """A PNG of the × keras ratios (train, inference, memory) of one run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FixedLocator, NullLocator

    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    rows = data["results"]
    configs = list(dict.fromkeys((r["kind"], r["timesteps"], r["units"]) for r in rows))
    implementations = [
        i for i in dict.fromkeys(r["implementation"] for r in rows) if i != "keras"
    ]
    metrics = [("train_ratio", "training step"), ("infer_ratio", "inference")]
    if any(r.get("memory_ratio") is not None for r in rows):
        metrics.append(("memory_ratio", "peak memory in training"))

    def value(config, impl, metric):
        for r in rows:
            if (r["kind"], r["timesteps"], r["units"]) == config and r[
                "implementation"
            ] == impl:
                v = r.get(metric)
                return np.nan if v is None else v
        return np.nan

    values = {
        (impl, metric): [value(c, impl, metric) for c in configs]
        for impl in implementations
        for metric, _ in metrics
    }
    finite = [v for vs in values.values() for v in vs if np.isfinite(v)]
    low = 2.0 ** np.floor(np.log2(min(finite + [1.0]) * 0.9))
    high = 2.0 ** np.ceil(np.log2(max(finite + [1.0]) * 1.1))
    ticks = [2.0**k for k in range(int(np.log2(low)), int(np.log2(high)) + 1)]
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.6 * len(metrics) + 1.6, 0.42 * len(configs) + 1.9),
        sharey=True,
        squeeze=False,
    )
    axes = axes[0]
    width = 0.8 / max(len(implementations), 1)
    ypos = np.arange(len(configs))
    for ax, (metric, title) in zip(axes, metrics):
        for k, impl in enumerate(implementations):
            paths = {r.get("path") for r in rows if r["implementation"] == impl}
            label = impl if len(paths) != 1 else f"{impl} ({paths.pop()})"
            offset = (k - (len(implementations) - 1) / 2) * width
            ax.barh(ypos + offset, values[(impl, metric)], width, label=label)
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:g}" if t >= 1 else f"1/{round(1 / t)}" for t in ticks])
        ax.set_title(f"{title}, × keras", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(
        ypos, [f"{LABELS.get(k, k)} T={t}, {u} units" for k, t, u in configs]
    )
    axes[0].invert_yaxis()
    machine = data.get("machine", {})
    fig.suptitle(
        f"{machine.get('backend', '?')} on {machine.get('device', '?')} "
        f"({machine.get('gpu') or machine.get('cpu') or 'unknown'}, "
        f"{str(machine.get('date', ''))[:10]}): time or memory over keras.layers', "
        "below 1 is faster or smaller",
        fontsize=10,
    )
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def benchmark_sections(page_uri):
    parts = []
    for path in benchmark_results():
        if not _is_benchmark_table(path):
            continue
        name = os.path.splitext(os.path.basename(path))[0]
        image = posixpath.relpath(
            f"images/benchmarks/{name}.png", posixpath.dirname(page_uri)
        )
        parts += [f"### `{name}`", "", f"![× keras ratios, {name}]({image})", ""]
        table = os.path.join(ROOT, "benchmarks", "results", f"{name}.md")
        if os.path.exists(table):
            with open(table, encoding="utf-8") as f:
                parts += [f.read().strip(), ""]
    return "\n".join(parts)


def benchmark_method():
    """`benchmarks/README.md` without its title and its pointer to the
    results (the page shows them), headings one level down."""
    with open(os.path.join(ROOT, "benchmarks", "README.md"), encoding="utf-8") as f:
        text = f.read()
    body = text.split("\n", 1)[1]
    body = re.split(r"^## Latest results$", body, flags=re.M)[0]
    return tutobook.shift_headings(body.strip(), 1)


def callback_overhead_table():
    """The overhead of the two callbacks, from
    `benchmarks/results/callback_overhead-<backend>.json`."""
    lines = [
        "| backend | cell | epoch without (s) | `GradientNormHistory` | "
        "`GateActivationHistory` |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    paths = sorted(
        glob.glob(
            os.path.join(ROOT, "benchmarks", "results", "callback_overhead-*.json")
        )
    )
    for path in paths:
        backend = os.path.basename(path)[len("callback_overhead-") : -len(".json")]
        with open(path, encoding="utf-8") as f:
            results = json.load(f)["results"]
        for cell, r in results.items():
            lines.append(
                f"| {backend} | {cell} | {r['epoch_seconds_without']:.2f} | "
                f"{100 * r['GradientNormHistory']['overhead']:.1f} % | "
                f"{100 * r['GateActivationHistory']['overhead']:.1f} % |"
            )
    return "\n".join(lines)


# -- pages -------------------------------------------------------------------


def _unlink_missing(markdown, page_uri, missing):
    """Drops the table rows that link an absent optional page and turns the
    other links to one into plain text."""

    def target(url):
        return posixpath.normpath(posixpath.join(posixpath.dirname(page_uri), url))

    def replace(match):
        return match.group(1) if target(match.group(2)) in missing else match.group(0)

    lines = []
    for line in markdown.split("\n"):
        linked = {target(m.group(2)) for m in _LINK.finditer(line)}
        if line.lstrip().startswith("|") and linked & missing:
            continue
        lines.append(_LINK.sub(replace, line))
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    uri = page.file.src_uri
    markdown = _WALKTHROUGH.sub(lambda m: walkthrough(m.group(1)), markdown)
    if _MORE_TUTORIALS in markdown:
        markdown = markdown.replace(_MORE_TUTORIALS, more_tutorials(markdown))
    if _RESULTS in markdown:
        markdown = markdown.replace(_RESULTS, benchmark_sections(uri))
    if _METHOD in markdown:
        markdown = markdown.replace(_METHOD, benchmark_method())
    if _OVERHEAD in markdown:
        markdown = markdown.replace(_OVERHEAD, callback_overhead_table())
    if _state["missing"]:
        markdown = _unlink_missing(markdown, uri, _state["missing"])
    return markdown
