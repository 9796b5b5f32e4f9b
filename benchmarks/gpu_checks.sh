#!/usr/bin/env bash
# Every GPU check that issues 20 and 28 ask for, in one run of at most 560 s
# (the steps' limits), for a lent device machine (the `device` tool: PyTorch and JAX
# there, no TensorFlow, no network). Keras and the two packages it needs
# that the machine lacks travel as wheels in `.whl/`, made here with
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl keras==3.15.1 namex optree
#
# then run there with `carry [".whl"]`, `timeout_s 600` and the command
# `bash benchmarks/gpu_checks.sh`. What comes back is under $OUT: `log.txt`
# (the machine, the tests on CUDA, the side-by-side tables) and the suite's
# tables `torch-gpu.{md,json}` and `jax-gpu.{md,json}`, five files (the
# tool returns eight at most). Each step has a time limit of its own, so a
# step that hangs costs its limit and the rest still run.
#
# `--dry-run` runs the same steps on tiny shapes on a CPU, to check the
# script before device time is spent on it (`PYTHON` names the interpreter;
# default python3):
#
#   PYTHON=.venv/bin/python OUT=/tmp/gpu_checks bash benchmarks/gpu_checks.sh --dry-run
set -uo pipefail
cd "$(dirname "$0")/.."
dry_run=0
[ "${1:-}" = "--dry-run" ] && dry_run=1
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
log="$OUT/log.txt"
: > "$log"
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2
python=${PYTHON:-python3}
if [ -d .whl ]; then
  $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl >> "$log" 2>&1 || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"

step() {  # step NAME SECONDS COMMAND...: runs it, its output into the log
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit} s): $*" >> "$log"
  local start=$SECONDS
  timeout "$limit" "$@" >> "$log" 2>&1
  echo "== $name: exit $?, $((SECONDS - start)) s" >> "$log"
}

if [ $dry_run = 1 ]; then
  suite_shapes=12x16 suite_steps=(--steps 1 --warmup 1 --rounds 1) side_shapes=16
  device=cpu
else
  suite_shapes=100x128,500x128,100x512 suite_steps=(--steps 10 --warmup 3 --rounds 2)
  side_shapes=1024,4096 device=gpu
fi

step machine 30 env KERAS_BACKEND=jax bash -c "nvidia-smi -L 2>/dev/null || echo 'no GPU'; $python -c '
import jax, keras, torch
print(\"keras\", keras.__version__, \"jax\", jax.__version__, jax.devices(),
      \"torch\", torch.__version__, \"cuda\", torch.cuda.is_available())'"

# Correctness on the device: kerasrnn's torch layers through cuDNN and the
# minimal layers' scan, against the readable loop and the NumPy references.
step tests-torch 60 env KERAS_BACKEND=torch $python -m pytest -q -x -p no:cacheprovider \
  tests/fast/torch/test_parity.py tests/layers/test_min_gru.py
step tests-jax 100 env KERAS_BACKEND=jax $python -m pytest -q -x -p no:cacheprovider \
  tests/layers/test_min_gru.py tests/fast/jax/test_parity.py -k "min_gru or equals_readable"

# Issue 20: the suite's table per backend, against keras.layers and torch.nn
# (cuDNN), the GRU at 512 units included.
# Without the readable loop and the matmul floor, which the CPU tables have.
for backend in torch jax; do
  step "suite-$backend" 125 env KERAS_BACKEND=$backend $python benchmarks/run.py \
    --backend $backend --device $device --kinds simple_rnn,lstm,gru \
    --impls keras,kerasrnn,torch --shapes $suite_shapes "${suite_steps[@]}" \
    --memory no --output "$OUT"
done

# Issue 28: the scan against the sequential loop at T = 1024 and 4096, and
# the MinGRU against kerasrnn's GRU.
for backend in torch jax; do
  step "side-by-side-$backend" 70 env KERAS_BACKEND=$backend $python \
    benchmarks/side_by_side.py --shapes $side_shapes \
    --pairs min_gru@sequential:min_gru@scan,gru:min_gru --steps 5 --rounds 1 --warmup 2
done
ls -l "$OUT" >> "$log"
