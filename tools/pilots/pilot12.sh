#!/usr/bin/env bash
# Pilot 12 of issue 22 (resumable: rerun to continue): does direction follow once the ImageLLM locates objects?
# Pilot 7's recipe (direction questions only, answer words, 60% of captions frame by frame, tower frozen) from pilot
# 10's ImageLLM (position 80% at its step 300) instead of pilot-align's (position at chance): 200 steps x 8, held-out
# content accuracy and the last-token probe every 50 steps; afterwards tools/pilots/track_readout.py on its model.
# Pilot 7 for comparison: 17.5 / 32.5% at steps 100 / 200. Two threads (nothing else should run).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
${MAPFLOW:-.venv/bin/mapflow} train smol-videollm --init runs/train/pilot10-image-where-long/model \
  --out runs/train/pilot12-direction-after-where --tasks moving_direction --freeze-vision \
  --probe-task moving_direction --letter-share 0 --eval-format content --track-share 0.6 --caption-share 0.25 \
  --lora-lr 0.001 --lr 0.0003 --steps 200 --minutes 40 --eval-every 50 --eval-n 40 --save-every 10 --threads 2 "$@"
