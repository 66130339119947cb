#!/usr/bin/env bash
# Pilot 9 of issue 22 (resumable: rerun to continue): can the LLM learn *where* on single images from the perception
# tower's tokens? Pilot 8 (tools/pilots/track_readout.py) found pilot 7's Video-FT names a moving object's first-frame
# cell at 22.5% (9 cells) and a changed cell at 3%: it copies the previous frame's cell and never locates; pilot-align
# answers image position questions at 26.7% (4 options). Here the ImageLLM stage from pilot-align (tower frozen, the
# ImageLLM's LoRA), answer words, no facts written in the questions, half the items captions (their cells are dense
# supervision of "where"), 200 steps x 8, held-out image accuracy by kind (80 questions) every 50 steps. One thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
${MAPFLOW:-.venv/bin/mapflow} train smol-imagellm --init runs/train/pilot-align/model \
  --adapter-from data/models/smol-imagellm --out runs/train/pilot9-image-where --freeze-vision --letter-share 0 \
  --described-share 0 --caption-share 0.5 --eval-format content --eval-n 80 --eval-every 50 --steps 200 \
  --minutes 30 --save-every 10 "$@"
