#!/usr/bin/env bash
# Pilot 13 of issue 22 (resumable: rerun to continue): answer words first, then letters — how fast does direction bind
# to its option letter once the words work? From pilot 12's model (direction 51% by words, 16% by letter on the cards'
# split), the same recipe with half the questions in the letter format, 150 steps x 8, held-out letter accuracy and
# the last-token probe every 50 steps; afterwards tools/pilots/direction_controls.py on its model. Two threads.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
${MAPFLOW:-.venv/bin/mapflow} train smol-videollm --init runs/train/pilot12-direction-after-where/model \
  --out runs/train/pilot13-direction-letters --tasks moving_direction --freeze-vision \
  --probe-task moving_direction --letter-share 0.5 --eval-format letter --track-share 0.6 --caption-share 0.25 \
  --lora-lr 0.001 --lr 0.0003 --steps 150 --warmup 10 --minutes 30 --eval-every 50 --eval-n 40 --save-every 10 \
  --threads 2 "$@"
