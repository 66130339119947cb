#!/usr/bin/env bash
# Pilot 10 of issue 22 (resumable: rerun to continue): pilot 9 continued — how many image samples until the ImageLLM
# on the new tower names position and colour at >= 90% (the issue's ImageLLM target)? From pilot 9's model (tower
# frozen, the same LoRA), answer words, no facts written in the questions, 40% captions, no scene questions (pilot 9:
# 100%), 600 steps x 8 (stopped at 440 for pilot 12: 94% at step 400), held-out image accuracy by kind (120 questions)
# every 100 steps. Two threads (nothing else should run; write 1 to runs/train/pilot10-image-where-long/threads to
# drop to one: train_smol.THREADS_FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
${MAPFLOW:-.venv/bin/mapflow} train smol-imagellm --init runs/train/pilot9-image-where/model \
  --out runs/train/pilot10-image-where-long --freeze-vision --letter-share 0 --described-share 0 --caption-share 0.4 \
  --image-kinds color,position,count --eval-format content --eval-n 120 --eval-every 100 --steps 600 --warmup 10 \
  --minutes 60 --save-every 10 --threads 2 "$@"
