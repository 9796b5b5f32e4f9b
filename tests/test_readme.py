"""The README's Python examples: every block parses, and the first one (drop a
layer into a model, move weights, save and export) runs as written."""

import os
import re

import keras
import numpy as np

from tests.utils import tensorflow_only

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_every_python_block_parses():
    blocks = python_blocks()
    assert len(blocks) >= 5
    for k, block in enumerate(blocks):
        compile(block, f"README.md python block {k}", "exec")


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
