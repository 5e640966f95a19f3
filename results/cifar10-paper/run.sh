#!/bin/sh
# Issue 20's evidence runs on a CPU: the paper's protocol (sequential order of Remark 1, no
# biases, plain SGD, batch 500, step 0.1, hinge loss but for BP), CIFAR-10 (JPEG re-encoding),
# 45,000 training and 5,000 validation images (split seed 0), seeds 0-2, --precision auto (bf16
# held the paired check of step 1 on the CPU; auto is fp32 on a CPU without AMX, and a resumed
# run keeps its own precision).
#
# The whole queue, in priority order. Every step is idempotent and resumes exactly: rerun the
# same command after an interruption (a session's end, say) and it goes on where it stopped.
# Runs of a step advance together, 10 epochs at a time (25 on the way to 200), two at once with
# one thread each, so that an interrupted step leaves the runs of a comparison at (nearly) the
# same epoch.
# From step 6 on, one unit at a time instead: each unit (one seed's runs of a group) finishes
# within a 3-hour session, since the machine has been rebuilt between sessions (2026-12-04 and
# -05) and its checkpoints went with it. A run that is not committed and has lost its
# checkpoint cannot resume (deepnets.train refuses a log without one): the queue removes it
# first and trains it again from epoch 0 (same settings and seed).
# Each run's test error (the weights of its validation-chosen epoch, test.json) is written when
# the run reaches its step's budget. From the project root:
#   nice sh results/cifar10-paper/run.sh
#
#  1. results/bf16-paired/run.sh to 100 epochs, 20 at a time: the bf16 paired check (issue 18).
#     Its fp32 runs are this grid's simpnet URFB and FRFB runs (results/bf16-paired/
#     <rule>-fp32-s<seed> link here), scored on the test split when they reach 100.
#  2. What the protocol choices change (issue 20, part 1): simpnet URFB and FRFB with the
#     simultaneous order, and with biases, 50 epochs, in results/protocol-choice/<choice>/;
#     their pairs are the paper-protocol runs of this grid (results/protocol-choice/paper links
#     here, the layout python -m figures.report reads). Before the long runs below, since
#     the code behind the paper's figures may have used the simultaneous order (docs/results.md).
#  3. simpnet BP and BP-H to 50 epochs, beside URFB and FRFB (Figures 4, 5, 10; claims 1, 6).
#  From here on BP and BP-H run in the simultaneous order, in $SIM (results/protocol-choice/
#  simultaneous/), beside URFB and FRFB in the paper's order: in the paper's order softmax BP
#  does not learn simpnet at all (chance in all 3 seeds at 50 epochs) and BP-H learns slowly,
#  and the author's code cannot run BP in that order, so the paper's BP was most likely run in
#  the simultaneous one (docs/results.md, "BP in the paper's order"). In step 5 the two
#  groups advance together, stage by stage; from step 6 on, one after the other (see the top).
#  3b. simpnet BP and BP-H in the simultaneous order, 50 epochs, paired by seed with step 3's.
#  3c. those to 100 epochs, beside URFB and FRFB at 100 (claims 1, 2).
#  Then one step per claim that has no budget-C run yet, before any run goes past 100:
#  4. untied simpnet BP-H, URFB and FRFB, 50 epochs, the paper's order (claim 4, Figures 8-9),
#     paired with the tied runs above at the same epochs; untied layers start replicated (one
#     conv filter bank at every location), as the author's code starts them.
#  4b. untied simpnet URFB with every location drawn apart (--untied-init independent), 50
#     epochs, in results/protocol-choice/untied-independent/ (Figure 8: does the homogeneity
#     come from the data or from the start? Each untied run's log.jsonl records it per epoch).
#  5. deepernet URFB and FRFB, with BP and BP-H in the simultaneous order, 50 epochs (claim 3,
#     Figures 6 right, 7).
#  5b. deepernet URFB in the simultaneous order, 50 epochs, in $SIM: in the paper's order its
#     full layer saturated (sigma' = 0 for all its units in seeds 1 and 2 from epoch 9, which
#     then stopped learning; for 92-99.9% in seed 0, which learns slowly); this tells the
#     order's part from the rest. FRFB's R is fixed, so the order does not change FRFB.
#  6. deepnet URFB and FRFB, then BP in the simultaneous order, seed 0, 50 epochs (Figure 6
#     left); deepnet URFB in the simultaneous order too, beside BP (as step 5b for deepernet;
#     it uses the core BP alone would leave idle).
#  7. deepnet_s URFB and FRFB, Section 4.1's tied-then-untied protocol: 5 tied epochs (the
#     paper's tenth), then 50 untied (Figure 11).
#  8. simpnet URFB-50 and FRFB-50, 100 epochs.
#  9. simpnet URFB and FRFB, with BP and BP-H in the simultaneous order, 200 epochs, trained
#     from epoch 0 into $LONG and $LONG_SIM: the checkpoints of their 100-epoch runs went with
#     an earlier machine (2026-12-04) and a run does not resume from its log alone. Same
#     settings and seeds as the 100-epoch runs, on another machine: replicates, not copies
#     (python -m figures same-runs compares their first 100 epochs).
#  10. (runs after step 6) untied simpnet BP-H and FRFB of step 4 again, each with
#     deepnets.train --same-as its committed run (one thread, as the suite's --jobs 2 trained
#     it), into $RERUN: Figure 8's homogeneity, which those runs' logs predate. They were
#     trained on an earlier machine, and runs repeat bit for bit only on one machine: these are
#     replicates (same settings and seeds); python -m figures same-runs $RUNS $RERUN shows how
#     close.
#  11. deepernet URFB and FRFB in the paper's order, with the error sent down as the author's
#     code after April 2019 sends it: R g, without the layer's sigma' (--no-sigma-prime-down),
#     50 epochs, in results/protocol-choice/no-sigma-prime-down/: does the author's code train
#     deepernet in the paper's order, where ours saturates URFB's full layer (step 5)? Leaving
#     sigma' out leaves out its slope s = 0.5 too: the lower layers' errors are up to 2 times
#     larger per layer above (docs/results.md), so this is not sigma's part alone.
#  12. simpnet URFB-50 and FRFB-50 with R's mask equal to W's (--shared-masks), 100 epochs, in
#     results/protocol-choice/shared-masks/, paired by seed with step 8's runs (masks drawn
#     apart, as Section 4): under URFB-50 the output layer's R grows on the entries whose W
#     connection is masked (docs/results.md, claim 2); with shared masks it has none. Do the
#     hidden layers' growth and saturation, and the 50% advantage, stay without them?
set -eu
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../.."
# the data from the environment (names of their own: a generic TRAIN or TEST must not move it)
TRAIN=${URFB_TRAIN:-../shared/data/cifar10-jpeg/train.zip}
TEST=${URFB_TEST:-../shared/data/cifar10-jpeg/test.zip}
PYTHON=${PYTHON:-.venv/bin/python}
STAGE=10
failed=0
RUNS=results/cifar10-paper/runs
# BP and BP-H from step 3b on (see above)
SIM=results/protocol-choice/simultaneous
# step 9: simpnet to 200 epochs, URFB and FRFB in the paper's order, BP and BP-H simultaneous
LONG=results/cifar10-paper/runs-200
LONG_SIM=results/cifar10-paper/runs-200-simultaneous
# step 10 (figures.report's HOMOGENEITY_RERUN_FOLDER) and its runs' epochs
RERUN=results/cifar10-paper/homogeneity-rerun
RERUN_EPOCHS=50

suite() {  # $1 runs folder, $2 epochs, then the suite's own arguments
  out=$1
  epochs=$2
  shift 2
  # the caller's arguments come last, so that theirs win (--seeds 0, say)
  "$PYTHON" -m deepnets.suite --out "$out" --epochs "$epochs" --seeds 0 1 2 \
    --data imagefolder --data-dir "$TRAIN" --dataset-label "CIFAR-10 (JPEG re-encoding)" \
    --device cpu --jobs 2 --estimate-steps 0 --precision auto --quiet "$@"
}

step() {  # a step that fails (a diverged run, say) is reported, and the queue goes on
  "$@" || { echo "results/cifar10-paper/run.sh: a step failed: $*" >&2; failed=1; }
}

staged() {  # $1 runs folder, $2 epochs, then the suite's own arguments
  out=$1
  final=$2
  shift 2
  target=0
  while [ "$target" -lt "$final" ]; do
    target=$((target + STAGE))
    [ "$target" -gt "$final" ] && target=$final
    step suite "$out" "$target" "$@"
  done
  step suite "$out" "$final" "$@" --evaluate-test "$TEST"
}

pair_step() {  # $1 the paper-order runs folder, $2 the simultaneous-order one, $3 epochs,
  # $4 figure, $5 the paper-order protocols, $6 those BP runs in the simultaneous order
  # (space-separated lists), then the suite's own arguments
  p_runs=$1
  p_sim=$2
  p_epochs=$3
  p_figure=$4
  p_paper=$5
  p_simultaneous=$6
  shift 6
  # shellcheck disable=SC2086
  step suite "$p_runs" "$p_epochs" "$p_figure" --protocols $p_paper "$@"
  # shellcheck disable=SC2086
  step suite "$p_sim" "$p_epochs" "$p_figure" --protocols $p_simultaneous \
    --update-order simultaneous "$@"
}

rerun() {  # $1 a run of $RUNS: train it again into $RERUN with its own settings, or resume that
  if [ -f "$RERUN/$1/log.jsonl" ] &&
    [ "$(grep -c . "$RERUN/$1/log.jsonl" || true)" -ge "$RERUN_EPOCHS" ]; then
    return 0  # done (its checkpoint need not be here: a clean clone has none)
  fi
  if [ -f "$RERUN/$1/config.json" ]; then
    set -- --resume --out "$RERUN/$1"
  else
    set -- --same-as "$RUNS/$1" --out "$RERUN/$1"
  fi
  OMP_NUM_THREADS=1 exec "$PYTHON" -m deepnets.train "$@" --epochs "$RERUN_EPOCHS" \
    --data-dir "$TRAIN" --quiet
}

clear_lost() {  # each run folder of this queue that git does not track (no file of it), with
  # epochs logged, no checkpoint and not at its budget (no test.json of its last epoch; step
  # 10's reruns: under $RERUN_EPOCHS epochs): its checkpoint went with an earlier machine;
  # remove it, so that it starts again. Other folders of results/ (a GPU lease's runs, say) are
  # never looked at.
  git ls-files --others --exclude-standard -- "$RUNS" "$RERUN" "$LONG" "$LONG_SIM" \
    results/protocol-choice | grep '/log\.jsonl$' |
    while read -r log; do
      run=${log%/log.jsonl}
      [ -s "$log" ] && [ ! -f "$run/checkpoint.pt" ] && [ ! -L "$run" ] || continue
      [ -z "$(git ls-files -- "$run")" ] || continue  # a committed run, or one inside it
      epochs=$(grep -c . "$log" || true)
      case $run in
        "$RERUN"/*) [ "$epochs" -ge "$RERUN_EPOCHS" ] && continue ;;
        *) if [ -f "$run/test.json" ]; then  # kept unless it names another epoch than the log's
             scored=$(sed -n 's/.*"epochs_done": *\([0-9][0-9]*\).*/\1/p' "$run/test.json")
             [ -z "$scored" ] || [ "$scored" -eq "$epochs" ] && continue
           fi ;;
      esac
      echo "results/cifar10-paper/run.sh: $run lost its checkpoint after $epochs epochs" \
        "(an earlier machine): it starts again" >&2
      rm -r "$run"
    done
}

staged_pair() {  # $1 $2 the two runs folders, $3 epochs, then pair_step's other arguments:
  # both groups, stage by stage
  sp_runs=$1
  sp_sim=$2
  sp_final=$3
  shift 3
  sp_target=0
  while [ "$sp_target" -lt "$sp_final" ]; do
    sp_target=$((sp_target + STAGE))
    [ "$sp_target" -gt "$sp_final" ] && sp_target=$sp_final
    pair_step "$sp_runs" "$sp_sim" "$sp_target" "$@"
  done
  pair_step "$sp_runs" "$sp_sim" "$sp_final" "$@" --evaluate-test "$TEST"
}

if [ "${1:-}" = rerun ]; then  # one run of step 10, as its pool below calls it: rerun NAME
  rerun "$2"
  exit
fi
if [ "${1:-}" = clear-lost ]; then  # only the clean-up the queue starts with
  clear_lost
  exit
fi

clear_lost
step env PAIRED_EPOCHS=100 PAIRED_STAGE=20 sh results/bf16-paired/run.sh
# the paired check's fp32 runs are this grid's simpnet URFB and FRFB: their test error at 100
step suite "$RUNS" 100 4 --protocols urfb frfb --evaluate-test "$TEST"
for choice in simultaneous bias; do
  if [ "$choice" = simultaneous ]; then flag="--update-order simultaneous"; else flag=--bias; fi
  # shellcheck disable=SC2086
  staged "results/protocol-choice/$choice" 50 4 --protocols urfb frfb $flag
done
staged "$RUNS" 50 4 --protocols bp bp-h
staged "$SIM" 50 4 --protocols bp bp-h --update-order simultaneous
staged "$SIM" 100 4 --protocols bp bp-h --update-order simultaneous
staged "$RUNS" 50 9 --archs simpnet --protocols bp-h urfb frfb
staged results/protocol-choice/untied-independent 50 8 --untied-init independent
staged_pair "$RUNS" "$SIM" 50 7 "urfb frfb" "bp bp-h"
staged "$SIM" 50 7 --protocols urfb --update-order simultaneous
# one group after the other (a group finishes within a session; both together would not on a
# slow machine: 2026-12-05's took 1.7 times as long an epoch as 2026-12-04's)
staged "$RUNS" 50 6 --protocols urfb frfb --archs deepnet --seeds 0
staged "$SIM" 50 6 --protocols bp urfb --update-order simultaneous --archs deepnet --seeds 0
# step 10 here, before step 7: its runs finish two by two, under an hour a pair, so that they
# use the end of a session that a longer unit would not finish in.
# two at a time, one thread each, in the foreground (Ctrl-C reaches them); a failed run is
# reported by deepnets.train, and the others go on
for seed in 0 1 2; do
  echo "simpnet-cifar10-bp-h-untied-s$seed simpnet-cifar10-frfb-untied-s$seed"
done | xargs -n 1 -P 2 sh "$SELF" rerun || {
  echo "results/cifar10-paper/run.sh: a rerun of step 10 failed (see above)" >&2
  failed=1
}
# from here on, one seed at a time (see the top)
for seed in 0 1 2; do
  staged "$RUNS" 50 11 --pretrain-epochs 5 --seeds "$seed"
done
for seed in 0 1 2; do
  staged "$RUNS" 100 4 --protocols urfb-50 frfb-50 --seeds "$seed"
done
STAGE=25
# fp32 as the 100-epoch runs (auto would choose bf16 on a CPU with AMX)
for seed in 0 1 2; do
  staged "$LONG" 200 4 --protocols urfb frfb --precision fp32 --seeds "$seed"
  staged "$LONG_SIM" 200 4 --protocols bp bp-h --update-order simultaneous --precision fp32 \
    --seeds "$seed"
done
STAGE=10
# step 12 before step 11: its units (simpnet, about 50 minutes a seed) finish at the end of a
# session that step 11's (deepernet, about 1.5 hours a seed) would not finish in
for seed in 0 1 2; do
  staged results/protocol-choice/shared-masks 100 4 --protocols urfb-50 frfb-50 \
    --shared-masks --precision fp32 --seeds "$seed"  # fp32 as step 8's runs, its pairs
done
for seed in 0 1 2; do
  staged results/protocol-choice/no-sigma-prime-down 50 7 --protocols urfb frfb \
    --no-sigma-prime-down --seeds "$seed"
done
if [ "$failed" -ne 0 ]; then
  echo "issue 20's CPU queue: some steps failed (see above); every other run is at its budget" >&2
  exit 1
fi
echo "issue 20's CPU queue: every run at its budget in $RUNS, $SIM, $RERUN, $LONG," \
  "$LONG_SIM and results/protocol-choice/"
