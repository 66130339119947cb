#!/usr/bin/env bash
# Train the SmolLM2 pair: every run of mapflow_utils.train_smol.RECIPE in order (align -> letter warm-up -> ImageLLM
# words -> letters -> Video-FT words -> letters, on the committed perception-pretrained tower). Finished runs are
# skipped and an interrupted one resumes from its checkpoint, so rerunning this continues where it stopped. Runs land
# in runs/train/smol-*-s$SEED. THREADS=2 only while nothing else runs on a 2-core machine (write 1 to the current
# run's runs/train/<run>/threads to drop it to one thread without stopping it).
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${SEED:-0}
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
MAPFLOW=${MAPFLOW:-.venv/bin/mapflow}
"$MAPFLOW" train smol-pipeline --seed "$SEED" --threads "$THREADS" "$@"
