#!/bin/sh
# Budget C's figures (docs/results.md, "Figures"), from the runs in the working tree: draw them
# when the runs are at a step's budget, as committed. Into results/cifar10-paper/figures/.
#  - Figures 4, 5, 6, 7, 10, 11, 16, 17, 18: URFB and FRFB in the paper's order (runs/), with BP
#    and BP-H in the simultaneous order (results/protocol-choice/simultaneous/): in the paper's
#    order softmax BP does not learn (docs/results.md, "BP in the paper's order"). Each sidecar
#    lists every run's order ("The groups drawn differ in protocol choices").
#  - Figures 8 and 9: runs/ alone, every run in the paper's order (tied against untied).
# From the project root:  sh results/cifar10-paper/figures.sh
set -eu
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-results/cifar10-paper/figures}
mix=$(mktemp -d)
trap 'rm -rf "$mix"' EXIT
for run in results/cifar10-paper/runs/*; do
  case $(basename "$run") in
    *-cifar10-bp-s[0-9]*|*-cifar10-bp-h-s[0-9]*) ;;  # BP and BP-H from the simultaneous order
    *) ln -s "$PWD/$run" "$mix/" ;;
  esac
done
for run in results/protocol-choice/simultaneous/*-cifar10-bp-s[0-9]* \
           results/protocol-choice/simultaneous/*-cifar10-bp-h-s[0-9]*; do
  [ -e "$run" ] && ln -s "$PWD/$run" "$mix/"
done
"$PYTHON" -m figures 4 5 6 7 10 11 16 17 18 --runs "$mix" --out "$OUT"
"$PYTHON" -m figures 8 9 --runs results/cifar10-paper/runs --out "$OUT"
