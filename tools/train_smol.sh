#!/usr/bin/env bash
# Train the SmolLM2 pair (LLaVA's stages, with a text-only letter warm-up) on one CPU thread; every stage resumes
# from its checkpoint, so rerunning this after an interruption continues where it stopped. Runs land in
# runs/train/smol-*-s$SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${SEED:-0}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
MAPFLOW=${MAPFLOW:-.venv/bin/mapflow}
for stage in smol-align smol-mcq smol-imagellm smol-videollm; do
  "$MAPFLOW" train "$stage" --seed "$SEED" "$@"
done
