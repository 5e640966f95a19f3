#!/bin/sh
# Issue 18's paired check at convergence scale: is bf16 as good as fp32 for learning?
# simpnet, URFB and FRFB (hinge loss, the paper's protocol: sequential order, no biases),
# seeds 0-2, fp32 and bf16 with the same seed (same W, R, data order and dropout masks),
# CIFAR-10 (JPEG re-encoding), 45,000 training and 5,000 validation images (split seed 0),
# PAIRED_EPOCHS epochs (default 100), the alignment probe every epoch. Validation and the probe run in
# fp32 for both precisions (--eval-precision fp32), so that only training differs.
#
# The 12 runs advance together, PAIRED_STAGE epochs at a time (default 10), two at once with one
# thread each (the slower bf16 runs first), so that an interrupted check leaves paired runs at
# (nearly) the same epoch. Rerun the same command to continue: every run resumes exactly from
# its last checkpoint (GNU xargs and ln, as on Linux; paths without spaces). From the project
# root:
#   nice sh results/bf16-paired/run.sh
# Outputs: results/bf16-paired/<rule>-<precision>-s<seed>/ (config.json, log.jsonl, checkpoints).
# The fp32 runs are also the simpnet URFB and FRFB runs of issue 20's grid: they live in
# PAIRED_GRID (results/cifar10-paper/runs/simpnet-cifar10-<rule>-s<seed>, the suite's names;
# results/cifar10-paper/run.sh trains their 200-epoch replicates in runs-200/) and
# <rule>-fp32-s<seed> links there.
set -eu
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../.."
# Settings from the environment, each with its own prefix (a generic OUT or EPOCHS set for
# something else must not move the runs): PAIRED_EPOCHS, PAIRED_STAGE (whole numbers >= 1),
# PAIRED_DATA, PAIRED_OUT, PAIRED_GRID, PAIRED_EXTRA (more flags of a new run), PYTHON.
EPOCHS=${PAIRED_EPOCHS:-100}
STAGE=${PAIRED_STAGE:-10}
DATA=${PAIRED_DATA:-../shared/data/cifar10-jpeg/train.zip}
OUT=${PAIRED_OUT:-results/bf16-paired}
GRID=${PAIRED_GRID:-results/cifar10-paper/runs}
PYTHON=${PYTHON:-.venv/bin/python}
EXTRA=${PAIRED_EXTRA:-}
export OMP_NUM_THREADS=1
for value in "$EPOCHS" "$STAGE"; do
  case $value in
    '' | *[!0-9]* | 0 | 0*) echo "$0: PAIRED_EPOCHS and PAIRED_STAGE must be whole numbers >= 1" \
      "(got '$EPOCHS' and '$STAGE')" >&2; exit 2 ;;
  esac
done

epochs_done() {  # finished epochs of run folder $1 (0 when it does not exist yet)
  if [ -f "$1/log.jsonl" ]; then grep -c . "$1/log.jsonl" || true; else echo 0; fi
}

train() {  # $1 run folder, $2 rule, $3 precision, $4 seed, $5 target epochs
  done_=$(epochs_done "$1")
  [ "$done_" -ge "$5" ] && return 0
  if [ -f "$1/config.json" ]; then
    "$PYTHON" -m deepnets.train --resume --out "$1" --epochs "$5" --device cpu --quiet
  else
    # shellcheck disable=SC2086
    "$PYTHON" -m deepnets.train --arch simpnet --method "$2" --loss hinge --precision "$3" \
      --seed "$4" --data imagefolder --data-dir "$DATA" \
      --dataset-label "CIFAR-10 (JPEG re-encoding)" --epochs "$5" --device cpu --quiet \
      --eval-precision fp32 --out "$1" $EXTRA
  fi
}

if [ "${1:-}" = one ]; then  # one run's stage, as the pool below calls it: one <args of train>
  shift
  train "$@"
  exit
fi

jobs=$(mktemp)
trap 'rm -f "$jobs"' EXIT
trap 'exit 130' INT TERM  # the EXIT trap then removes the job list
failed=0
target=0
while [ "$target" -lt "$EPOCHS" ]; do
  target=$((target + STAGE))
  [ "$target" -gt "$EPOCHS" ] && target=$EPOCHS
  : > "$jobs"
  for precision in bf16 fp32; do
    for rule in urfb frfb; do
      for seed in 0 1 2; do
        if [ "$precision" = bf16 ]; then
          echo "$OUT/$rule-bf16-s$seed $rule bf16 $seed $target" >> "$jobs"
        else
          link="$OUT/$rule-fp32-s$seed"
          mkdir -p "$GRID"
          [ -e "$link" ] || [ -L "$link" ] || ln -sr "$GRID/simpnet-cifar10-$rule-s$seed" "$link"
          echo "$GRID/simpnet-cifar10-$rule-s$seed $rule fp32 $seed $target" >> "$jobs"
        fi
      done
    done
  done
  # a run that fails (diverged, say) is reported by deepnets.train; the others go on
  xargs -L 1 -P 2 sh "$SELF" one < "$jobs" || failed=1
done
if [ "$failed" -ne 0 ]; then
  echo "bf16 paired check: some runs failed (see above); the others are at $EPOCHS epochs" >&2
  exit 1
fi
echo "bf16 paired check: all 12 runs at $EPOCHS epochs in $OUT"
