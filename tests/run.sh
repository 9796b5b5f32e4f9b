#!/usr/bin/env bash
# Runs kerasrnn's test suite: everything on the TensorFlow backend, then the
# backend-agnostic tests (the library: cells, layers, fast path, callbacks,
# inspection, converters, Keras's own RNN tests with kerasrnn substituted,
# export, and the NumPy teaching code) on JAX and PyTorch.
# Extra arguments go to every pytest run (e.g. -x, -k lstm).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2
echo "== TensorFlow backend: full suite"
KERAS_BACKEND=tensorflow python -m pytest -q "$@"
backend_agnostic=(tests/cells tests/layers tests/fast/test_dispatch.py
  tests/fast/test_linear_recurrence.py tests/test_modern_docstrings.py tests/callbacks
  tests/inspection tests/converters tests/teaching/test_bptt.py
  tests/teaching/test_walkthrough.py tests/conformance tests/export/test_export.py
  tests/export/test_export_modern.py tests/export/test_target.py
  tests/benchmarks/test_side_by_side.py tests/benchmarks/test_floor.py)
echo "== JAX backend: backend-agnostic tests and the JAX kernels"
KERAS_BACKEND=jax python -m pytest -q "${backend_agnostic[@]}" tests/fast/jax "$@"
echo "== PyTorch backend: backend-agnostic tests and the torch kernels"
KERAS_BACKEND=torch python -m pytest -q "${backend_agnostic[@]}" tests/fast/torch "$@"
