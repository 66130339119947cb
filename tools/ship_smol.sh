#!/usr/bin/env bash
# Ship the SmolLM2 pair that tools/train_smol.sh trained: each model's parts (the last run of its half of
# mapflow_utils.train_smol.RECIPE) into $DEST/<name>/ (default data/models) with its card (mapflow card: the held-out
# split with its controls, a fresh split, image QA, the targets met or missed). The card's evaluation is cached per
# piece under runs/cards/, so an interrupted ship resumes. SEED as for train_smol.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${SEED:-0}
DEST=${DEST:-data/models}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
MAPFLOW=${MAPFLOW:-.venv/bin/mapflow}
PY=${PY:-.venv/bin/python}
# the recipe's runs up to and including the one that makes each model
runs_until() { "$PY" -c "from mapflow_utils.train_smol import RECIPE as R; r = list(R); \
print(' '.join(f'runs/train/{x}-s$SEED' for x in r[:r.index('$1') + 1]))"; }
ship() {  # ship NAME LAST_RUN TITLE
  local run=runs/train/$2-s$SEED
  [ -f "$run/model/mapflow_parts.json" ] || { echo "ship_smol: $run has no model yet: run tools/train_smol.sh" >&2; exit 1; }
  rm -rf "${DEST:?}/$1" && mkdir -p "$DEST" && cp -r "$run/model" "$DEST/$1"
  "$MAPFLOW" card --model "$DEST/$1" --runs $(runs_until "$2") --title "$3"
}
image() { ship smol-imagellm smol-imagellm "smol-imagellm: the SmolLM2 ImageLLM"; }
video() { ship smol-videollm-ft smol-videollm "smol-videollm-ft: the SmolLM2 Video-FT"; }
case "${1:-both}" in
  imagellm) image ;;
  videollm) video ;;
  both) image; video ;;
  *) echo "usage: tools/ship_smol.sh [imagellm|videollm|both]" >&2; exit 2 ;;
esac
