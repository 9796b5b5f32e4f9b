"""The notebooks: generated from the tutorial scripts, never stale, and each
runs top to bottom in its quick mode as a reader would run it (nbclient, a
fresh Jupyter kernel, the flags set through KERASRNN_NOTEBOOK_ARGS).

A stale notebook fails `test_notebook_matches_its_script`; regenerate with
`python docs/_tools/make_notebooks.py`.
"""

import glob
import json
import os
import shlex

import nbformat
import pytest

from tests.docs.tools import ROOT, make_notebooks, tutobook
from tests.utils import tensorflow_only

SCRIPTS = make_notebooks.tutorial_scripts()


def name_of(script):
    return os.path.splitext(os.path.basename(script))[0]


SMALL_SCRIPT = '''"""
Title: A small tutorial
Author: someone
Description: Two lines of
    description.
Accelerator: None
"""

"""
## Introduction

Some *prose*:

    h_t = tanh(x_t @ W + h_tm1 @ U + b)
"""

import os

X = 1  # a constant
DEFAULTS = dict(output_dir="runs/small")

"""
## Conclusion
"""

if __name__ == "__main__":
    print(X, "saved.png")
'''


def test_prose_strings_become_markdown_and_the_code_between_them_code():
    script = tutobook.read_script(SMALL_SCRIPT)
    assert script.header == {
        "Title": "A small tutorial",
        "Author": "someone",
        "Description": "Two lines of description.",
        "Accelerator": "None",
    }
    assert [(b.kind, b.text) for b in script.blocks] == [
        (
            "markdown",
            "## Introduction\n\nSome *prose*:\n\n    h_t = tanh(x_t @ W + h_tm1 @ U + b)",
        ),
        (
            "code",
            'import os\n\nX = 1  # a constant\nDEFAULTS = dict(output_dir="runs/small")',
        ),
        ("markdown", "## Conclusion"),
        ("code", 'if __name__ == "__main__":\n    print(X, "saved.png")'),
    ]


def test_a_script_without_a_tutobook_header_is_refused():
    with pytest.raises(ValueError, match="starts with its header"):
        tutobook.read_script("import os\n")
    with pytest.raises(ValueError, match="Title"):
        tutobook.read_script('"""\nAuthor: someone\n"""\n')


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """make_notebooks pointed at a scratch `tutorials/` and `notebooks/`."""
    tutorials, notebooks = tmp_path / "tutorials", tmp_path / "notebooks"
    tutorials.mkdir()
    monkeypatch.setattr(make_notebooks, "TUTORIALS", str(tutorials))
    monkeypatch.setattr(make_notebooks, "NOTEBOOKS", str(notebooks))
    return tutorials, notebooks


def test_the_notebook_has_the_scripts_cells_between_its_own(sandbox):
    tutorials, notebooks = sandbox
    (tutorials / "small.py").write_text(SMALL_SCRIPT)
    assert make_notebooks.update_all() == [str(notebooks / "small.ipynb")]
    cells = make_notebooks.read(str(notebooks / "small.ipynb")).cells
    kinds = [c.cell_type for c in cells]
    assert kinds == ["markdown", "code"] + ["markdown", "code"] * 2 + [
        "markdown",
        "code",
    ]
    assert cells[0].source.startswith("# A small tutorial\n\n**Author:** someone<br>")
    assert "KERASRNN_NOTEBOOK_ARGS" in cells[1].source
    assert cells[3].source.startswith("import os\n\nX = 1  # a constant\n")
    assert cells[-2].source == "## The figures of this run"
    assert all(not c.get("outputs") for c in cells if c.cell_type == "code")


def test_stale_and_orphan_notebooks_are_reported_and_outputs_kept_when_fresh(
    sandbox,
):
    tutorials, notebooks = sandbox
    script = tutorials / "small.py"
    script.write_text(SMALL_SCRIPT)
    make_notebooks.update_all()
    path = str(notebooks / "small.ipynb")
    assert make_notebooks.stale_notebooks() == []

    # Outputs of an unchanged notebook survive a regeneration.
    notebook = make_notebooks.read(path)
    notebook.cells[1].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="ran\n")
    ]
    make_notebooks.write(notebook, path)
    assert make_notebooks.update_all() == []
    assert make_notebooks.read(path).cells[1].outputs[0].text == "ran\n"

    # Changed prose makes the notebook stale; the unchanged code keeps the
    # outputs it made.
    script.write_text(SMALL_SCRIPT.replace("Some *prose*", "Some more *prose*"))
    assert make_notebooks.stale_notebooks() == [path]
    assert make_notebooks.update_all() == [path]
    reworded = make_notebooks.read(path)
    assert any("Some more *prose*" in c.source for c in reworded.cells)
    assert reworded.cells[1].outputs[0].text == "ran\n"
    assert make_notebooks.stale_notebooks() == []

    # Changed code makes the notebook stale; regenerating drops outputs.
    script.write_text(SMALL_SCRIPT.replace("X = 1", "X = 2"))
    assert make_notebooks.stale_notebooks() == [path]
    assert make_notebooks.main(["--check"]) == 1
    assert make_notebooks.update_all() == [path]
    fresh = make_notebooks.read(path)
    assert "X = 2" in fresh.cells[3].source
    assert fresh.cells[1].outputs == []

    orphan = notebooks / "gone.ipynb"
    orphan.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    assert make_notebooks.stale_notebooks() == [str(orphan)]


def test_every_tutorial_has_a_notebook_and_every_notebook_a_tutorial():
    scripts = {name_of(s) for s in SCRIPTS}
    notebooks = {
        os.path.splitext(os.path.basename(p))[0]
        for p in glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb"))
    }
    assert scripts and scripts == notebooks


@pytest.mark.parametrize("script", SCRIPTS, ids=name_of)
def test_notebook_matches_its_script(script):
    path = make_notebooks.notebook_path(script)
    stored = make_notebooks.sources(make_notebooks.read(path))
    fresh = make_notebooks.sources(make_notebooks.generate(script))
    assert stored == fresh, (
        f"{os.path.relpath(path, ROOT)} is stale: run "
        "python docs/_tools/make_notebooks.py (and --execute it again for outputs)"
    )


def _parsed_output_dir(script):
    """The `--output-dir` the script itself parses when given no flags."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"_tutorial_{name_of(script)}", script
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parsed = module.parse_args([])
    return (parsed[0] if isinstance(parsed, tuple) else parsed).output_dir


@pytest.mark.parametrize(
    "script",
    [s for s in SCRIPTS if ".png" in open(s, encoding="utf-8").read()],
    ids=name_of,
)
def test_a_tutorial_that_writes_figures_shows_them_from_its_output_dir(script):
    """The generator finds the figures' folder the script really writes to
    (its parsed `--output-dir` default), wherever the script names it."""
    with open(script, encoding="utf-8") as f:
        source = f.read()
    cells = make_notebooks.cells_for(script)
    assert ("markdown", "## The figures of this run") in cells
    found = make_notebooks._default_output_dir(source)
    assert found == _parsed_output_dir(script)
    assert f'default="{found}"' in cells[-1][1]


@pytest.mark.parametrize("script", SCRIPTS, ids=name_of)
def test_recorded_outputs_say_how_they_were_made(script):
    """A notebook with outputs records the flags, time and machine of its run,
    and no cell of it failed."""
    notebook = make_notebooks.read(make_notebooks.notebook_path(script))
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    if not outputs:
        assert "kerasrnn" not in notebook.metadata
        return
    run = notebook.metadata["kerasrnn"]
    assert {"flags", "wall_seconds", "executed", "machine"} <= set(run)
    assert "--quick" not in shlex.split(run["flags"]), "a full notebook ran --quick"
    assert not [o for o in outputs if o.output_type == "error"]


# -- the notebooks run -------------------------------------------------------


def run_notebook(name, flags, cwd, monkeypatch):
    """Executes a copy of `notebooks/<name>.ipynb` in a fresh kernel; returns
    the executed notebook (the stored file is not touched)."""
    from nbclient import NotebookClient

    notebook = make_notebooks.read(os.path.join(ROOT, "notebooks", f"{name}.ipynb"))
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    monkeypatch.setenv(make_notebooks.FLAGS_VARIABLE, flags)
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
    )
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    ).execute()
    return notebook


def outputs_of(notebook, kind):
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if kind == "image" and "image/png" in output.get("data", {}):
                found.append(output)
            if kind == "text" and output.output_type == "stream":
                found.append(output.text)
    return found


def pngs(folder):
    return glob.glob(os.path.join(folder, "**", "*.png"), recursive=True)


# Files a quick run must write into its --output-dir, beyond results.json.
QUICK = {
    "vanishing_gradients": ["gradient_profiles.png"],
    "bptt_from_scratch": ["jacobian_norms.png", "clipping.png"],
    "lstm_step_by_step": ["lstm_gates.png", "memory_units.png"],
    "lstm_variants": ["results.md", "scores.png"],
}
# Where a quick run writes its results.json, if not at its --output-dir's top:
# char_rnn writes one folder per cell (the default cell: lstm).
RESULTS = {"char_rnn": os.path.join("lstm", "results.json")}
# Run by test_imdb_notebooks_train_export_and_serve_in_quick_mode: the second
# serves the model the first exports.
IMDB = ("imdb_sentiment", "imdb_predict")
# Quick runs of a minute or more on the shared 2-core machine (a fresh
# kernel, TensorFlow's import, the tutorial's --quick run): opt-in with
# `pytest -m slow`. The tutorials' own smoke tests (tests/tutorials) run the
# same quick settings as scripts in the default suite.
SLOW = ("vanishing_gradients", "lstm_variants")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
        for name in sorted(name_of(s) for s in SCRIPTS)
        if name not in IMDB
    ],
)
def test_notebook_runs_top_to_bottom_in_quick_mode(name, tmp_path, monkeypatch):
    """Every tutorial's notebook (a new script's too) runs with `--quick` and
    writes its results; the figures cell shows every figure the run wrote."""
    out = tmp_path / "out"
    notebook = run_notebook(name, f"--quick --output-dir {out}", tmp_path, monkeypatch)
    results_file = RESULTS.get(name, "results.json")
    for filename in [results_file, *QUICK.get(name, [])]:
        assert (out / filename).exists(), f"{name} did not write {filename}"
    results = json.loads((out / results_file).read_text())
    assert results, f"{name} wrote an empty results.json"
    written = pngs(str(out))
    if written:
        assert len(outputs_of(notebook, "image")) == len(written)


@pytest.mark.slow
@tensorflow_only
def test_imdb_notebooks_train_export_and_serve_in_quick_mode(tmp_path, monkeypatch):
    from kerasrnn.teaching.datasets.imdb import write_sample_aclimdb

    data = write_sample_aclimdb(tmp_path / "data", reviews_per_class=(24, 10))
    out = tmp_path / "out"
    trained = run_notebook(
        "imdb_sentiment",
        f"--quick --data-dir {data} --cache-dir {tmp_path / 'cache'} --output-dir {out}",
        tmp_path,
        monkeypatch,
    )
    assert (out / "results.json").exists()
    assert (out / "saved_model" / "saved_model.pb").exists()
    # the generator's last cell shows the run's figures (its learning curves)
    assert pngs(str(out)) and outputs_of(trained, "image")
    served = run_notebook(
        "imdb_predict",
        f"--model {out / 'saved_model'} 'a great film' 'an awful film'",
        tmp_path,
        monkeypatch,
    )
    lines = [
        line
        for text in outputs_of(served, "text")
        for line in text.splitlines()
        if line.endswith("film")
    ]
    assert len(lines) == 2
    for line in lines:
        label, probability = line.split()[:2]
        assert label in ("positive", "negative")
        assert 0.0 <= float(probability) <= 1.0


def test_executed_outputs_are_kept_as_displayed():
    """A progress bar redrawn with carriage returns and backspaces is stored
    as its last state, and a cell's consecutive writes to one stream as one
    output."""
    assert make_notebooks._as_displayed("10%\r50%\r100%\ndone\n") == "100%\ndone\n"
    assert make_notebooks._as_displayed("abc\b\bX") == "aXc"
    # a shorter redraw leaves the tail of the longer line, as on a terminal
    assert make_notebooks._as_displayed("12345\rab") == "ab345"
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fit()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="1/3 [=> ]"),
        nbformat.v4.new_output("stream", name="stdout", text="\r3/3 [===]\n"),
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
        nbformat.v4.new_output("stream", name="stdout", text="loss 0.1\n"),
    ]
    notebook.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
    cleaned = make_notebooks.clean_outputs(notebook).cells[1].outputs
    assert [(o.name, o.text) for o in cleaned] == [
        ("stdout", "3/3 [===]\n"),
        ("stderr", "warning\n"),
        ("stdout", "loss 0.1\n"),
    ]
