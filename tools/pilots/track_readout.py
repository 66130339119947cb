"""Pilot 8 of issue 22: does the SmolLM2 VideoLLM know *where* each colour is in each frame?

Teacher-forced frame-by-frame captions (the training's track captions, ``perception.frame_by_frame``, read from the
pixels) of held-out Moving Direction clips: the share of the caption's cell words (``north``, ``southwest``, …) the
model predicts as its top token, and of its colour words, per model folder. If the cell words are right, the model
locates each coloured object in each frame and direction is a comparison it has not learned; if they are at chance,
"where" is the gap (the issue's likely root).

    .venv/bin/python tools/pilots/track_readout.py MODEL_FOLDER [MODEL_FOLDER ...] [--n 40] [--task moving_direction]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--task", default="moving_direction")
    ap.add_argument("--seed", type=int, default=999)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from mapflow_utils import models
    from mapflow_utils.models import smol
    from mapflow_utils.perception import OBJECT_COLORS, frame_by_frame
    from mapflow_utils.synthetic import CELLS, clip_frames
    from mapflow_utils.train import Batches, caption_prompt
    from mapflow_utils.train_smol import CAPTION_FRAMES, SmolBatches, SmolStageConfig

    cell_words, colour_words = set(CELLS), set(OBJECT_COLORS)
    for folder in args.models:
        model, proc, _ = models.load(folder)
        model.eval()
        batches = SmolBatches(proc, SmolStageConfig(stage="smol-videollm"), tokens_per_frame=smol.tokens_per_frame())
        hits = {"cell": [0, 0], "first-frame cell": [0, 0], "cell moved since the previous frame": [0, 0],
                "colour": [0, 0], "copy the previous frame's cell (baseline)": [0, 0]}
        for i in range(args.n):
            _, frames, _ = clip_frames(args.task, args.seed, i)
            target = " " + frame_by_frame(frames)
            b = Batches._collate(batches, [(frames, caption_prompt(proc, CAPTION_FRAMES), target)])
            with torch.no_grad():
                logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                               pixel_values_videos=b["pixel_values_videos"]).logits[0]
            labels = b["labels"][0]
            first = int((labels != -100).nonzero()[0])  # the target's first token
            enc = proc.tokenizer(target, add_special_tokens=False, return_offsets_mapping=True)
            assert enc["input_ids"] == labels[first:first + len(enc["input_ids"])].tolist(), "target tokenised apart"
            pred = logits[first - 1:first - 1 + len(enc["input_ids"])].argmax(-1).tolist()
            ok = [int(p == w) for p, w in zip(pred, enc["input_ids"])]
            last: dict[str, str] = {}
            pos = 1  # walk the caption's words with their character offsets
            for frame in target[1:].split(" . "):
                words = frame.strip(" .").split(" ")
                k, rest = words[0], " ".join(words[1:])
                pos = target.index(k, pos) + len(k)
                for item in rest.split(" , "):
                    parts = item.split(" ")
                    for w in parts:
                        start = target.index(w, pos)
                        end, pos = start + len(w), start + len(w)
                        toks = [j for j, (a, z) in enumerate(enc["offset_mapping"]) if a < end and z > start]
                        hit = int(all(ok[j] for j in toks))
                        if w in colour_words:
                            hits["colour"][0] += hit
                            hits["colour"][1] += 1
                        elif w in cell_words:
                            colour = parts[0]
                            kinds = ["cell"] + (["first-frame cell"] if colour not in last else [])
                            if colour in last:
                                base = hits["copy the previous frame's cell (baseline)"]
                                base[0] += int(last[colour] == w)
                                base[1] += 1
                                if last[colour] != w:
                                    kinds.append("cell moved since the previous frame")
                            for kk in kinds:
                                hits[kk][0] += hit
                                hits[kk][1] += 1
                            last[colour] = w
        print(json.dumps({"model": folder, "task": args.task, "clips": args.n,
                          **{k: round(h / max(1, n), 4) for k, (h, n) in hits.items()},
                          "tokens": {k: n for k, (_, n) in hits.items()}}), flush=True)


if __name__ == "__main__":
    main()
