"""Generates `notebooks/<name>.ipynb` from every `tutorials/<name>.py`.

The scripts are the source: a notebook is never edited by hand. Each
script's prose strings become Markdown cells and the code between them code
cells (`tutobook.read_script`, assembled by jupytext from the percent
format); the generator adds three cells of its own: a header (title and
header fields), a set-up cell that hands the script its command-line flags
(a kernel's own `sys.argv` would confuse argparse), and, for a script that
draws, a cell that shows the figures the run wrote.

    python docs/_tools/make_notebooks.py              # write the stale notebooks
    python docs/_tools/make_notebooks.py --check      # exit 1 if one is stale
    python docs/_tools/make_notebooks.py --execute vanishing_gradients \\
        --flags "--seed 0"                       # run it, keep the outputs

A notebook whose cells are unchanged keeps its outputs when regenerated, and
so does one whose script changed only in its prose (the same code made
them); one whose code changed is written without outputs (they would belong
to other code) until it is executed again. `--execute` runs the notebook with nbclient in
the repository root (so `runs/...` and `../shared/data` mean what they mean
for the script) and records the flags, the wall time, the date and the
machine in the notebook's metadata under `"kerasrnn"`.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import sys
import time

import jupytext
import nbformat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tutobook  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUTORIALS = os.path.join(ROOT, "tutorials")
NOTEBOOKS = os.path.join(ROOT, "notebooks")
FLAGS_VARIABLE = "KERASRNN_NOTEBOOK_ARGS"

# Flags a notebook starts with when the script cannot run without any.
DEFAULT_FLAGS = {
    "imdb_predict": '"A wonderful, moving film with a brilliant cast." '
    '"Awful. Just awful."',
}

SETUP_CODE = """\
# Notebook set-up (added by the generator, not part of the script): the
# command-line flags the script reads, as after `python tutorials/{script}`.
# Edit FLAGS to change the settings (`--help` lists them, `--quick` runs in
# seconds); the environment variable {variable} replaces them when set.
import os
import shlex
import sys

FLAGS = {default}
FLAGS = os.environ.get("{variable}", FLAGS)
sys.argv = ["{script}", *shlex.split(FLAGS)]
print("python tutorials/{script}", FLAGS)

# The script's docstring: the script's own code may read it as __doc__.
__doc__ = {docstring}"""

FIGURES_CODE = """\
# Show the figures the run wrote into its --output-dir (added by the generator;
# the names are private so that they leave the script's own names alone).
from argparse import ArgumentParser as _ArgumentParser
from glob import glob as _glob

from IPython.display import Image as _Image
from IPython.display import display as _display

_flags = _ArgumentParser(add_help=False)
_flags.add_argument("--output-dir", default="{output_dir}")
_output_dir = _flags.parse_known_args(sys.argv[1:])[0].output_dir
for _path in sorted(_glob(os.path.join(_output_dir, "**", "*.png"), recursive=True)):
    print(_path)
    _display(_Image(filename=_path))"""

HEADER_NOTE = (
    "*This notebook is generated from "
    "[`tutorials/{script}`](../tutorials/{script}) by "
    "`docs/_tools/make_notebooks.py`: edit the script, not the notebook. Run it "
    "from a checkout of kerasrnn, after "
    '`pip install -e ".[plots]"` in the repository root.*'
)


def tutorial_scripts():
    """Every tutorial script, sorted by name."""
    return sorted(glob.glob(os.path.join(TUTORIALS, "*.py")))


def notebook_path(script):
    name = os.path.splitext(os.path.basename(script))[0]
    return os.path.join(NOTEBOOKS, f"{name}.ipynb")


def _default_output_dir(source):
    """The `--output-dir` default the script names: `output_dir="runs/x"` (a
    keyword) or `"output_dir": "runs/x"` (an entry of a defaults dict)."""
    match = re.search(r'output_dir"?\s*[=:]\s*"([^"]+)"', source)
    return match.group(1) if match else None


def _literal(text):
    """A Python string literal of `text`, double-quoted unless it holds `"`."""
    return repr(text) if '"' in text else json.dumps(text)


def _percent_cell(kind, text):
    if kind == "markdown":
        body = "\n".join(f"# {line}" if line else "#" for line in text.splitlines())
        return f"# %% [markdown]\n{body}\n"
    return f"# %%\n{text}\n"


def cells_for(script):
    """`(kind, text)` of every cell of the script's notebook, in order."""
    with open(script, encoding="utf-8") as f:
        source = f.read()
    name = os.path.basename(script)
    parsed = tutobook.read_script(source)
    header = tutobook.header_markdown(parsed)
    cells = [
        ("markdown", f"{header}\n\n{HEADER_NOTE.format(script=name)}"),
        (
            "code",
            SETUP_CODE.format(
                script=name,
                variable=FLAGS_VARIABLE,
                default=_literal(DEFAULT_FLAGS.get(os.path.splitext(name)[0], "")),
                docstring=parsed.docstring_source,
            ),
        ),
    ]
    cells += [(block.kind, block.text) for block in parsed.blocks]
    output_dir = _default_output_dir(source)
    if output_dir and ".png" in source:
        cells += [
            ("markdown", "## The figures of this run"),
            ("code", FIGURES_CODE.format(output_dir=output_dir)),
        ]
    return cells


def generate(script):
    """The script's notebook (no outputs), assembled by jupytext."""
    cells = cells_for(script)
    text = "\n".join(_percent_cell(kind, body) for kind, body in cells)
    notebook = jupytext.reads(text, fmt="py:percent")
    got = [(cell.cell_type, cell.source) for cell in notebook.cells]
    if got != cells:
        raise RuntimeError(f"jupytext did not keep the cells of {script} as written")
    notebook.metadata = {
        "kernelspec": {
            "display_name": "Python 3",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
    }
    for cell in notebook.cells:
        cell.metadata = {}
    return nbformat.from_dict(notebook)


def sources(notebook):
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def read(path):
    with open(path, encoding="utf-8") as f:
        return nbformat.read(f, as_version=4)


def write(notebook, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nbformat.validate(notebook)
    with open(path, "w", encoding="utf-8") as f:
        nbformat.write(notebook, f)


def stale_notebooks():
    """Paths of notebooks missing or out of date with their script, and of
    notebooks that no script generates."""
    stale = []
    expected = set()
    for script in tutorial_scripts():
        path = notebook_path(script)
        expected.add(path)
        if not os.path.exists(path) or sources(read(path)) != sources(generate(script)):
            stale.append(path)
    orphans = set(glob.glob(os.path.join(NOTEBOOKS, "*.ipynb"))) - expected
    return stale + sorted(orphans)


def _code_sources(notebook):
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def _keep_outputs(old, fresh):
    """`fresh` with the outputs (and execution record) of `old` when only
    their prose differs: the same code in the same order produced them."""
    if _code_sources(old) != _code_sources(fresh):
        return fresh
    old_code = [cell for cell in old.cells if cell.cell_type == "code"]
    fresh_code = [cell for cell in fresh.cells if cell.cell_type == "code"]
    for before, after in zip(old_code, fresh_code):
        after.outputs = before.get("outputs", [])
        after.execution_count = before.get("execution_count")
    if "kerasrnn" in old.metadata:
        fresh.metadata["kerasrnn"] = old.metadata["kerasrnn"]
    return fresh


def update_all():
    """Writes every stale notebook; returns the paths written. A notebook
    whose script changed only in its prose keeps its outputs."""
    written = []
    for script in tutorial_scripts():
        path = notebook_path(script)
        fresh = generate(script)
        if os.path.exists(path):
            old = read(path)
            if sources(old) == sources(fresh):
                continue
            fresh = _keep_outputs(old, fresh)
        write(fresh, path)
        written.append(path)
    return written


def _as_displayed(text):
    """`text` as a terminal (or Jupyter) shows it: a carriage return sends the
    cursor back to the line's start and a backspace one character back, so a
    progress bar redrawn in place leaves only its last state."""
    lines = []
    for raw in text.split("\n"):
        line, cursor = [], 0
        for char in raw:
            if char == "\r":
                cursor = 0
            elif char == "\b":
                cursor = max(0, cursor - 1)
            else:
                if cursor < len(line):
                    line[cursor] = char
                else:
                    line.append(char)
                cursor += 1
        lines.append("".join(line))
    return "\n".join(lines)


def clean_outputs(notebook):
    """Joins each cell's consecutive stream outputs of one stream and keeps
    them as displayed (`_as_displayed`): a progress bar is stored as its
    last state, not as every redraw."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.outputs:
            if (
                output.output_type == "stream"
                and merged
                and merged[-1].output_type == "stream"
                and merged[-1].name == output.name
            ):
                merged[-1].text += output.text
            else:
                merged.append(output)
        for output in merged:
            if output.output_type == "stream":
                output.text = _as_displayed(output.text)
        cell.outputs = merged
    return notebook


def execute(name, flags, timeout=None, cwd=ROOT):
    """Runs `notebooks/<name>.ipynb` top to bottom with `flags` and writes it
    back with its outputs. Returns the wall time in seconds."""
    from nbclient import NotebookClient

    path = os.path.join(NOTEBOOKS, f"{name}.ipynb")
    notebook = read(path)
    # the kernel inherits the environment: the flags, and TensorFlow's C++
    # logging kept to errors so that the outputs show what the script prints
    saved = {k: os.environ.get(k) for k in (FLAGS_VARIABLE, "TF_CPP_MIN_LOG_LEVEL")}
    os.environ[FLAGS_VARIABLE] = flags
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    load_before = os.getloadavg()[0]
    try:
        start = time.perf_counter()
        NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": cwd}},
        ).execute()
        seconds = time.perf_counter() - start
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    notebook.metadata["kerasrnn"] = {
        "flags": flags,
        "wall_seconds": round(seconds),
        "executed": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }
    write(clean_outputs(notebook), path)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Only report.")
    parser.add_argument("--execute", metavar="NAME", help="Run notebooks/NAME.ipynb.")
    parser.add_argument("--flags", default="", help="The script's flags (--execute).")
    args = parser.parse_args(argv)
    if args.execute:
        seconds = execute(args.execute, args.flags)
        print(f"executed {args.execute} in {seconds:.0f} s")
        return 0
    if args.check:
        stale = stale_notebooks()
        for path in stale:
            print(f"stale: {os.path.relpath(path, ROOT)}")
        return 1 if stale else 0
    for path in update_all():
        print(f"wrote {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
