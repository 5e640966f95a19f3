#!/bin/sh
# Paired check (issue 10): does --precision bf16 change simpnet's error rates beyond seed noise?
# simpnet, urfb, 10,000 training images, 5 epochs, validation 5,000 (split seed 0), seeds 0-2,
# fp32 and bf16 with the same seed (same W, R, data order and dropout masks). Run from the
# project root: sh results/bf16-check/run.sh  (logs: results/bf16-check/<precision>-s<seed>/)
set -e
# one thread: light on the shared 2-core machine (and oneDNN's bf16 weight-gradient kernels stall
# for seconds when one of two threads is descheduled on a loaded machine)
export OMP_NUM_THREADS=1
for seed in 0 1 2; do
  for prec in fp32 bf16; do
    nice -n 10 .venv/bin/python -m deepnets.train --arch simpnet --method urfb \
      --data imagefolder --data-dir ../shared/data/cifar10-jpeg/train.zip \
      --dataset-label "CIFAR-10 (JPEG re-encoding)" \
      --train-size 10000 --val-size 5000 --epochs 5 --seed "$seed" --precision "$prec" \
      --probe-size 0 --device cpu --quiet --out "results/bf16-check/$prec-s$seed"
  done
done
