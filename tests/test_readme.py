"""The README, a landing page: short, its two set-up commands true, its
drop-in example running as written, its links and tutorial table complete."""

import configparser
import glob
import os
import re

import keras
import numpy as np

from tests.utils import tensorflow_only

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_JOB = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[plots]" '
    "&& python tutorials/vanishing_gradients.py"
)
TEST_COMMAND = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" '
    "&& bash tests/run.sh"
)


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def python_blocks():
    return re.findall(r"```python\n(.*?)```", readme(), flags=re.S)


def test_readme_is_a_landing_page_of_at_most_200_lines():
    assert len(readme().splitlines()) <= 200


def test_the_two_set_up_commands_are_there_and_name_what_exists():
    bash = re.findall(r"```bash\n(.*?)```", readme(), flags=re.S)
    assert MAIN_JOB in [block.strip() for block in bash]
    assert TEST_COMMAND in [block.strip() for block in bash]
    assert os.path.isfile(os.path.join(ROOT, "tutorials", "vanishing_gradients.py"))
    assert os.path.isfile(os.path.join(ROOT, "tests", "run.sh"))
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    extras = config["options.extras_require"]
    assert "plots" in extras and "test" in extras
    assert "matplotlib" in extras["plots"]


def test_every_python_block_parses():
    blocks = python_blocks()
    assert blocks
    for k, block in enumerate(blocks):
        compile(block, f"README.md python block {k}", "exec")


def test_every_relative_link_leads_to_a_file_or_folder_of_the_repository():
    links = re.findall(r"\]\(([^)\s]+)\)", readme())
    relative = [
        url.split("#")[0]
        for url in links
        if not re.match(r"[a-z]+:", url) and not url.startswith("#")
    ]
    assert len(relative) >= 10
    missing = [url for url in relative if not os.path.exists(os.path.join(ROOT, url))]
    assert not missing, missing


def test_the_tutorial_table_has_one_row_per_tutorial_script():
    rows = re.findall(
        r"^\| \[`(\w+)\.py`\]\(docs/tutorials/(\w+)\.md\)", readme(), re.M
    )
    assert all(script == page for script, page in rows)
    scripts = {
        os.path.splitext(os.path.basename(p))[0]
        for p in glob.glob(os.path.join(ROOT, "tutorials", "*.py"))
    }
    assert {script for script, _ in rows} == scripts


@tensorflow_only
def test_drop_in_example_runs_and_writes_what_it_says(tmp_path, monkeypatch):
    block = python_blocks()[0]
    assert "model.export(" in block
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md python block 0", "exec"), namespace)
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype("float32")
    ours, builtin = namespace["ours"], namespace["builtin"]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x)),
        keras.ops.convert_to_numpy(builtin(x)),
        atol=1e-5,
        rtol=1e-5,
    )
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(x)),
        keras.ops.convert_to_numpy(namespace["model"](x)),
        atol=1e-5,
        rtol=1e-5,
    )
    assert (tmp_path / "served_model" / "saved_model.pb").exists()


def test_gradient_example_runs_after_the_drop_in_example(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert "GradientNormHistory" in blocks[1]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile("import keras\nimport kerasrnn\n", "imports", "exec"), namespace)
    exec(compile(blocks[1], "README.md python block 1", "exec"), namespace)
    profile = namespace["norms"].history["h"]
    assert profile.shape == (3, 50)
    assert np.all(np.isfinite(profile)) and np.all(profile >= 0)
