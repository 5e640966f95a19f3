#!/bin/sh
# Figure 5's right half (CIFAR-100; docs/results.md, "Figure 5 as the paper draws it"), trained
# as its CIFAR-10 half was (run.sh, steps 8 and 9): simpnet URFB and FRFB in the paper's order,
# 200 epochs; URFB 50% and FRFB 50% in the paper's order, 100 epochs; BP and BP-H in the
# simultaneous order (softmax BP does not learn in the paper's), 200 epochs; seeds 0-2, fp32.
# Every run is scored once on the archive's own test split at its validation-chosen epoch
# (test.json), and Figure 5's CIFAR-100 panel is drawn from all of them into $OUT/figures/ (its
# CIFAR-10 panel is empty there: results/cifar10-paper/figures.sh draws both halves once
# results/cifar100/ holds these runs).
# From the project root, given the python-version archive (it holds its own test split):
#   sh results/cifar10-paper/cifar100.sh cifar-100-python.tar.gz
# Rerun the same command after an interruption: each run resumes from its last epoch. Arguments
# after the archive go to every python -m deepnets.suite call, after this script's own (the last
# of a flag given twice wins: --seeds 0, say, or --device cuda).
set -eu
if [ $# -lt 1 ]; then
  echo "usage: sh results/cifar10-paper/cifar100.sh CIFAR100_ARCHIVE [SUITE_ARGUMENT ...]" >&2
  exit 2
fi
if [ ! -e "$1" ]; then
  echo "results/cifar10-paper/cifar100.sh: $1: no such file or folder" >&2
  exit 2
fi
# CDPATH= : with CDPATH exported, cd prints the folder, and ARCHIVE would hold it twice
ARCHIVE=$(CDPATH= cd -- "$(dirname -- "$1")" && pwd)/$(basename -- "$1")
shift
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-results/cifar100}

suite() {  # $1 runs folder, $2 epochs, then the suite's own arguments, then this script's
  out=$1
  epochs=$2
  shift 2
  "$PYTHON" -m deepnets.suite 5 --datasets cifar100 --cifar100-dir "$ARCHIVE" --seeds 0 1 2 \
    --precision fp32 --evaluate-test --out "$out" --epochs "$epochs" "$@"
}

suite "$OUT/runs-200" 200 --protocols urfb frfb "$@"
suite "$OUT/runs" 100 --protocols urfb-50 frfb-50 "$@"
suite "$OUT/runs-200-simultaneous" 200 --protocols bp bp-h --update-order simultaneous "$@"
"$PYTHON" -m figures 5 --runs "$OUT" --out "$OUT/figures"
