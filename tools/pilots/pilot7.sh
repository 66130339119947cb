#!/usr/bin/env bash
# Pilot 7 of issue 22 (resumable: rerun to continue): does the SmolLM2 VideoLLM learn Moving Direction from thousands
# of clips? Pilot 6 found one attention layer reads the direction from the perception tower's tokens at 55% from 560
# clips but 86% from 2,100 (the generator's truth: 57.5% / 90%); the shipped pair saw ~350 per task. Tower frozen,
# projector from pilot-align, direction questions only (answer words), 600 steps x 8 = 4,800 clips, evaluated on 40
# held-out questions with the last-token probe every 100 steps. One thread. Its checkpoint (every 10 steps) and
# log live in runs/train/pilot7-direction-long/; a copy of the log at the session's stop is in
# tools/pilots/results/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
${MAPFLOW:-.venv/bin/mapflow} train smol-videollm --init runs/train/pilot-align/model \
  --adapter-from data/models/smol-imagellm --out runs/train/pilot7-direction-long --tasks moving_direction \
  --freeze-vision --probe-task moving_direction --letter-share 0 --eval-format content --track-share 0.6 \
  --caption-share 0.25 --lora-lr 0.001 --lr 0.0003 --steps 600 --minutes 600 --eval-every 100 --eval-n 40 \
  --save-every 10 "$@"
