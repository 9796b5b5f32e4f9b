"""A `.keras` file saved on one Keras backend loads on the other two and gives
the same outputs.

The test saves a model holding kerasrnn's three standard layers (behind a
`Masking` layer, fed right-padded sequences) on the backend it runs on, then
starts one process per other backend (`KERAS_BACKEND` set) that loads that
file, computes its outputs, and saves a model of its own, which this process
loads in turn. Every pair of backends is thus covered in both directions on
any one backend's run, so the suite runs it on TensorFlow only (each other
backend's process costs tens of seconds to start). Outputs agree within 1e-5
(float32; the backends' kernels round differently).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasrnn
from tests.utils import BACKEND, assert_all_close, random_weights_like, to_numpy

BACKENDS = ("tensorflow", "jax", "torch")
BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Run in a fresh process for another backend: load the file given, write its
# outputs, then save that backend's own model (the same function as here).
_OTHER_BACKEND = """
import json, sys
import numpy as np
import keras
from tests.layers.test_cross_backend import inputs, make_model, outputs_of

load_path, outputs_path, save_path, weights_seed = sys.argv[1:5]
model = keras.saving.load_model(load_path)
np.save(outputs_path, outputs_of(model))
own = make_model(int(weights_seed))
own.save(save_path)
np.save(save_path + ".npy", outputs_of(own))
print(json.dumps({"backend": keras.backend.backend()}))
"""


def inputs():
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, FEATURES))
    # Right padding (Masking(0.0) hides it): 6, 3 and 1 valid steps.
    lengths = np.array([6, 3, 1])
    return (x * (np.arange(STEPS) < lengths[:, None])[:, :, None]).astype("float32")


def make_model(seed):
    inp = keras.Input((STEPS, FEATURES))
    h = keras.layers.Masking(0.0)(inp)
    h = kerasrnn.LSTM(UNITS, return_sequences=True)(h)
    h = kerasrnn.GRU(UNITS, return_sequences=True, go_backwards=True)(h)
    h = kerasrnn.SimpleRNN(UNITS)(h)
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    model.set_weights(random_weights_like(model, seed=seed))
    return model


def outputs_of(model):
    return to_numpy(model(inputs()))


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="the TensorFlow run covers every pair of backends both ways",
)
@pytest.mark.parametrize("other", [b for b in BACKENDS if b != BACKEND])
def test_keras_file_moves_between_backends(other, tmp_path):
    pytest.importorskip(other)
    here = make_model(seed=1)
    here_path = str(tmp_path / f"saved_on_{BACKEND}.keras")
    here.save(here_path)
    expected_here = outputs_of(here)
    there_path = str(tmp_path / f"saved_on_{other}.keras")
    loaded_outputs = str(tmp_path / "loaded_there.npy")
    env = dict(os.environ, KERAS_BACKEND=other, PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-c", _OTHER_BACKEND]
        + [here_path, loaded_outputs, there_path, "2"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"backend": other}

    # Saved here, loaded there.
    assert_all_close(np.load(loaded_outputs), expected_here, what=f"on {other}")
    # Saved there, loaded here.
    there = keras.saving.load_model(there_path)
    assert [type(layer).__name__ for layer in there.layers[2:5]] == [
        "LSTM",
        "GRU",
        "SimpleRNN",
    ]
    assert isinstance(there.layers[2], kerasrnn.LSTM)
    assert_all_close(
        outputs_of(there), np.load(there_path + ".npy"), what=f"from {other}"
    )
    # Different weights on each side: the comparison could fail.
    assert not np.allclose(outputs_of(there), expected_here)
