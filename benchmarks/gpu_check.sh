#!/usr/bin/env bash
# The GPU check of a lent GPU machine (see benchmarks/gpu_check.py): at most 8 minutes, every
# output under $OUT (7 files); the run folders of the packed grids, checkpoints included, under
# $RUNS (default ${TMPDIR:-/tmp}/urfb-gpu-runs; a rerun with the same $RUNS resumes them).
# Run from the repository root:
#   OUT=/some/folder URFB_DATA=path/to/cifar10-jpeg/train.zip bash benchmarks/gpu_check.sh
# With URFB_TEST=path/to/cifar10-jpeg/test.zip it also scores every run on the test split at the
# end (part (e), in the budget's last minute). A lent machine takes 64 MiB of working tree a
# call, data included: train.zip (52 MiB) fits only with the committed H200 results folders
# (results/*-h200*, about 10 MiB) left out of the working tree for the call (git checkout brings
# them back), and test.zip (10 MiB) does not fit beside it: carry train.zip in a first call that
# also copies it to /tmp, then test.zip in a second, warm call that resumes the runs with
# URFB_DATA=/tmp/train.zip URFB_TEST=<the carried test.zip>.
# It uses the machine's own python3 with torch (no install); the package runs from the tree.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output folder}"
DATA="${URFB_DATA:-../shared/data/cifar10-jpeg/train.zip}"
PY="${PYTHON:-python3}"
for f in "$DATA" ${URFB_TEST:+"$URFB_TEST"}; do  # before the minutes of the tests below
  [ -e "$f" ] || { echo "gpu_check.sh: $f: no such file or folder" >&2; exit 2; }
done
mkdir -p "$OUT"
{
  nvidia-smi -L || true  # the GPU's UUID: tells two lent machines apart
  nvidia-smi || true
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
} > "$OUT/machine.txt" 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# The test suite's CUDA tests: a recorded CUDA graph against the eager step, packed runs against
# the runs alone, two --deterministic runs number for number (at most 2 minutes).
TESTS="cuda_graph_replay or cuda_pack or deterministic_cuda"
timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/deepnets/test_capture.py \
  tests/deepnets/test_pack.py tests/deepnets/test_deterministic.py -k "$TESTS" \
  > "$OUT/pytest_cuda.log" 2>&1
echo "pytest -k '$TESTS': exit $? (log in pytest_cuda.log)" >> "$OUT/machine.txt"
timeout 350 "$PY" benchmarks/gpu_check.py --out "$OUT" ${RUNS:+--runs "$RUNS"} --data "$DATA" \
  --budget-s "${BUDGET_S:-330}" ${URFB_TEST:+--test "$URFB_TEST"} "$@" \
  2>&1 | tee "$OUT/gpu_check.log"
