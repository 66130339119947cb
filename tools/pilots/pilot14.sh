#!/usr/bin/env bash
# Pilot 14 of issue 22 (resumable: rerun to continue): are letters cheap at the image stage? From pilot 10's ImageLLM
# (94% by answer words), the ImageLLM stage with 85% of questions in the letter format (a third with the facts also
# written in the question, as the default stage: letter binding learnable from text), 100 steps x 8, held-out image
# letter accuracy by kind (120 questions) every 50 steps. Two threads.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
${MAPFLOW:-.venv/bin/mapflow} train smol-imagellm --init runs/train/pilot10-image-where-long/model \
  --out runs/train/pilot14-image-letters --freeze-vision --letter-share 0.85 --described-share 0.3 \
  --caption-share 0.3 --eval-format letter --eval-n 120 --eval-every 50 --steps 100 --warmup 10 --minutes 14 \
  --save-every 10 --threads 2 "$@"
