"""Pilot 12's check: a model's Moving Direction accuracy on the held-out split against its frame controls.

The evaluation split the cards use (``data/synthetic``, ``n`` questions of one task), answer words and letters, every
frame control of ``evaluate.FRAME_MODES`` (a single frame repeated, or the frames shuffled): direction read from one
frame, or from frames out of order, is not reading time.

    .venv/bin/python tools/pilots/direction_controls.py MODEL_FOLDER [--n 100] [--task moving_direction]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--task", default="moving_direction")
    ap.add_argument("--formats", default="content,letter")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    from mapflow_utils import evaluate, models, paths
    from mapflow_utils.data import load_tvbench

    _, _, ad = models.load(args.model)
    samples = load_tvbench(paths.SYNTHETIC, tasks=[args.task], n_per_task=args.n, seed=0)  # as the cards
    rec = {"model": args.model, "task": args.task, "questions": len(samples)}
    for fmt in args.formats.split(","):
        for mode in evaluate.FRAME_MODES:
            (hit, n), = evaluate.accuracy(ad, samples, fmt, mode).values()
            rec[f"{fmt} {mode}"] = round(hit / n, 3)
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
