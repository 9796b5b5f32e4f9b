#!/usr/bin/env bash
# Runs kerasrnn's test suite: everything on the TensorFlow backend, then the
# backend-agnostic tests (layers, cells, gradients, converters, fuzzing) on JAX.
# Extra arguments go to both pytest runs (e.g. -x, -k lstm).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2
echo "== TensorFlow backend: full suite"
KERAS_BACKEND=tensorflow python -m pytest -q "$@"
echo "== JAX backend: backend-agnostic tests"
jax_tests=(tests/cells tests/layers tests/callbacks tests/test_serialization.py
  tests/test_gradients.py tests/test_gates.py tests/test_converters.py
  tests/test_fuzz_layers.py tests/test_numerics.py tests/test_bptt.py
  tests/test_walkthrough.py)
KERAS_BACKEND=jax python -m pytest -q "${jax_tests[@]}" "$@"
