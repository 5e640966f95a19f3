#!/bin/sh
# Issue 20's evidence runs on a CPU: the paper's protocol (sequential order of Remark 1, no
# biases, plain SGD, batch 500, step 0.1, hinge loss but for BP), CIFAR-10 (JPEG re-encoding),
# 45,000 training and 5,000 validation images (split seed 0), seeds 0-2, --precision auto (bf16
# held the paired check of step 1 on the CPU; auto is fp32 on a CPU without AMX, and a resumed
# run keeps its own precision).
#
# The whole queue, in priority order. Every step is idempotent and resumes exactly: rerun the
# same command after an interruption (a session's end, say) and it goes on where it stopped.
# Runs of a step advance together, 10 epochs at a time (25 on the way to 200), two at once with one thread each,
# so that an interrupted step leaves the runs of a comparison at (nearly) the same epoch.
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
#  3b. simpnet BP and BP-H in the simultaneous order, 50 epochs, in
#     results/protocol-choice/simultaneous/: in the paper's order BP (softmax) does not learn
#     simpnet at all (chance through 40 epochs, 3 seeds) and BP-H learns slowly, while the author's
#     code of the paper's first version sent the error down through the old weights
#     (docs/results.md); these are BP as everyone runs it, paired with step 3's runs by seed.
#  3c. simpnet BP and BP-H to 100 epochs in the paper's order.
#  Then one step per claim that has no budget-C run yet, before any run goes past 100:
#  4. untied simpnet BP-H, URFB and FRFB, 50 epochs (claim 4, Figures 8-9), paired with the tied
#     runs above at the same epochs.
#  5. deepernet BP, BP-H, URFB, FRFB, 50 epochs (claim 3, Figures 6 right, 7).
#  6. deepnet BP, URFB, FRFB, seed 0, 50 epochs (Figure 6 left).
#  7. deepnet_s URFB and FRFB, Section 4.1's tied-then-untied protocol: 5 tied epochs (the
#     paper's tenth), then 50 untied (Figure 11).
#  8. simpnet URFB-50 and FRFB-50, 100 epochs.
#  9. simpnet BP, BP-H, URFB, FRFB to 200 epochs.
set -eu
cd "$(dirname "$0")/../.."
# the data from the environment (names of their own: a generic TRAIN or TEST must not move it)
TRAIN=${URFB_TRAIN:-../shared/data/cifar10-jpeg/train.zip}
TEST=${URFB_TEST:-../shared/data/cifar10-jpeg/test.zip}
PYTHON=${PYTHON:-.venv/bin/python}
STAGE=10
failed=0
RUNS=results/cifar10-paper/runs

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

step env PAIRED_EPOCHS=100 PAIRED_STAGE=20 sh results/bf16-paired/run.sh
# the paired check's fp32 runs are this grid's simpnet URFB and FRFB: their test error at 100
step suite "$RUNS" 100 4 --protocols urfb frfb --evaluate-test "$TEST"
for choice in simultaneous bias; do
  if [ "$choice" = simultaneous ]; then flag="--update-order simultaneous"; else flag=--bias; fi
  # shellcheck disable=SC2086
  staged "results/protocol-choice/$choice" 50 4 --protocols urfb frfb $flag
done
staged "$RUNS" 50 4 --protocols bp bp-h
staged results/protocol-choice/simultaneous 50 4 --protocols bp bp-h --update-order simultaneous
staged "$RUNS" 100 4 --protocols bp bp-h
staged "$RUNS" 50 9 --archs simpnet --protocols bp-h urfb frfb
staged "$RUNS" 50 7 --protocols bp bp-h urfb frfb
staged "$RUNS" 50 6 --archs deepnet --protocols bp urfb frfb --seeds 0
staged "$RUNS" 50 11 --pretrain-epochs 5
staged "$RUNS" 100 4 --protocols urfb-50 frfb-50
STAGE=25
staged "$RUNS" 200 4 --protocols bp bp-h urfb frfb
if [ "$failed" -ne 0 ]; then
  echo "issue 20's CPU queue: some steps failed (see above); every other run is at its budget" >&2
  exit 1
fi
echo "issue 20's CPU queue: every run at its budget in $RUNS"
