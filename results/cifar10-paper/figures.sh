#!/bin/sh
# Budget C's figures (docs/results.md, "Figures"), from the runs in the working tree at a step's
# budget: scored on the test split there (test.json, written when a run reaches it) and not
# trained on since (a run on its way to a later budget keeps its earlier test.json). A group of
# simpnet runs is drawn from runs-200/ (BP and BP-H: runs-200-simultaneous/) once every seed of
# it is at its budget there (step 9). python -m figures budget-c chooses the runs of each set.
# Into results/cifar10-paper/figures/.
#  - Figures 4, 5, 6, 7, 10, 11, 16, 17, 18, 19: URFB and FRFB in the paper's order (runs/), with BP
#    and BP-H in the simultaneous order (results/protocol-choice/simultaneous/): in the paper's
#    order softmax BP does not learn (docs/results.md, "BP in the paper's order"). Each sidecar
#    lists every run's order ("The groups drawn differ in protocol choices").
#  - Figures 4, 6, 7 and 18 again with every rule in the simultaneous order, into
#    figures/simultaneous-order/: URFB, BP and BP-H of results/protocol-choice/simultaneous/,
#    FRFB of runs/ (the order does not change FRFB: its R is fixed).
#  - Figures 8 and 9: runs/ alone, every run in the paper's order (tied against untied); Figure 8
#    draws filters from a checkpoint, so it needs the machine that trained the run (the report's
#    Figure 8 numbers come from the homogeneity each untied run logs).
# From the project root:  sh results/cifar10-paper/figures.sh
set -eu
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-results/cifar10-paper/figures}
# Figure 5's CIFAR-100 runs (cifar100.sh; not run on this project's machine: no CIFAR-100 copy)
CIFAR100=${CIFAR100:-results/cifar100}
sets=$(mktemp -d)
trap 'rm -rf "$sets"' EXIT
"$PYTHON" -m figures budget-c --into "$sets"
"$PYTHON" -m figures 4 5 6 7 10 11 16 17 18 19 --runs "$sets/mixed" --out "$OUT"
if [ -d "$CIFAR100" ]; then  # Figure 5 again, with its right half: cifar100.sh's runs
  ln -s "$(CDPATH= cd -- "$CIFAR100" && pwd)" "$sets/mixed/cifar100"
  "$PYTHON" -m figures 5 --runs "$sets/mixed" --out "$OUT"
fi
"$PYTHON" -m figures 8 9 --runs "$sets/paper" --out "$OUT"
"$PYTHON" -m figures 4 6 7 18 --runs "$sets/simultaneous" --out "$OUT/simultaneous-order"
