#!/bin/sh
# Budget C's figures (docs/results.md, "Figures"), from the runs in the working tree at a step's
# budget: scored on the test split there (test.json, written when a run reaches it) and not
# trained on since (a run on its way to a later budget keeps its earlier test.json).
# Into results/cifar10-paper/figures/.
#  - Figures 4, 5, 6, 7, 10, 11, 16, 17, 18: URFB and FRFB in the paper's order (runs/), with BP
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
mixed=$(mktemp -d)
paper=$(mktemp -d)
simultaneous=$(mktemp -d)
trap 'rm -rf "$mixed" "$paper" "$simultaneous"' EXIT
at_budget() {  # $1 a run folder: its test.json scores the last epoch of its log
  "$PYTHON" -c 'import json, sys; from pathlib import Path
run = Path(sys.argv[1])
scored = json.loads((run / "test.json").read_text()).get("epochs_done")
logged = sum(1 for line in (run / "log.jsonl").read_text().splitlines() if line.strip())
sys.exit(scored != logged)' "$1"
}
for run in results/cifar10-paper/runs/* results/protocol-choice/simultaneous/*; do
  [ -f "$run/test.json" ] && at_budget "$run" || continue
  case $run in
    results/cifar10-paper/runs/*) ln -s "$PWD/$run" "$paper/" ;;
  esac
  case $run in
    */*-cifar10-bp-s[0-9]*|*/*-cifar10-bp-h-s[0-9]*)  # BP and BP-H: the simultaneous order
      case $run in results/protocol-choice/simultaneous/*) ln -s "$PWD/$run" "$mixed/" ;; esac ;;
    results/cifar10-paper/runs/*) ln -s "$PWD/$run" "$mixed/" ;;
  esac
  case $run in
    results/cifar10-paper/runs/*-cifar10-frfb-s[0-9]*) ln -s "$PWD/$run" "$simultaneous/" ;;
    results/protocol-choice/simultaneous/*-cifar10-urfb-s[0-9]*|\
    results/protocol-choice/simultaneous/*-cifar10-bp-s[0-9]*|\
    results/protocol-choice/simultaneous/*-cifar10-bp-h-s[0-9]*)
      ln -s "$PWD/$run" "$simultaneous/" ;;
  esac
done
"$PYTHON" -m figures 4 5 6 7 10 11 16 17 18 --runs "$mixed" --out "$OUT"
"$PYTHON" -m figures 8 9 --runs "$paper" --out "$OUT"
"$PYTHON" -m figures 4 6 7 18 --runs "$simultaneous" --out "$OUT/simultaneous-order"
