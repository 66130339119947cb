"""Pilot 6 of issue 22: is the moving direction readable from what the SmolLM2 VideoLLM's LLM receives?

For held-out Moving Direction clips, one attention layer (``probes.fit_attention_probe``: the asked colour picks
the query, a frame-index embedding stands for RoPE's offsets) is fitted on the video tokens of
(a) the vision tower (pooled, what the projector receives), (b) the projector (= the LLM's layer 0), and, for a
trained model, (c) the LLM's hidden states at its video positions at a few layers. The same read-out without the
frame index is the control (no time: it should fail). ``--oracle`` adds (d) the generator's own truth per token
(each colour's coverage of every 2-px sub-cell, the token's row and column): what the read-out reaches from
perfect features with this many clips, the ceiling the others are judged against. Writes ``out/readout.json``.

    OMP_NUM_THREADS=1 python tools/pilots/direction_readout.py MODEL_PARTS OUT [--n 800] [--layers 4,8,16]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mapflow_utils.models import adapter_for
from mapflow_utils.models.smol import load_parts
from mapflow_utils.perception import GRID, pooled_features, token_targets
from mapflow_utils.probes import fit_attention_probe
from mapflow_utils.prompts import build_prompt
from mapflow_utils.synthetic import COLORS, DIRECTIONS, SynthConfig, clip_frames

TASK = "moving_direction"


def oracle(frames) -> torch.Tensor:
    """The generator's truth per token ``[frames · GRID², 7·SUB² + 2·GRID]``: coverage, row and column one-hot."""
    mask = token_targets(frames)["mask"]  # [T, GRID², 7·SUB²]
    where = torch.cat([torch.eye(GRID).repeat_interleave(GRID, 0), torch.eye(GRID).repeat(GRID, 1)], 1)
    return torch.cat([mask, where[None].expand(len(mask), -1, -1)], -1).flatten(0, 1)


@torch.no_grad()
def features(model, processor, n: int, seed: int, layers: list[int], with_oracle: bool = False):
    ad, cfg = adapter_for(model, processor), SynthConfig()
    video_id = model.config.video_token_index
    out = {"tower": [], "projector": [], **{f"llm_L{k}": [] for k in layers}, "oracle": []}
    colours, answers = [], []
    for i in range(n):
        c, frames, _ = clip_frames(TASK, seed, i, cfg)
        inp = ad.inputs(frames, build_prompt(processor, c.question, c.candidates, "content", task=TASK).text)
        pv = inp["pixel_values_videos"][0]
        out["tower"].append(pooled_features(model.model.vision_tower, pv).flatten(0, 1))
        if with_oracle:
            out["oracle"].append(oracle(frames))
        out["projector"].append(model.model.get_video_features(inp["pixel_values_videos"]).pooler_output[0])
        if layers:
            hs = model(**inp, output_hidden_states=True).hidden_states
            pos = inp["input_ids"][0] == video_id
            for k in layers:
                out[f"llm_L{k}"].append(hs[k][0, pos])
        colours.append(next(j for j, name in enumerate(COLORS) if f" {name} " in c.question))
        answers.append(list(DIRECTIONS).index(c.answer))
    return {k: torch.stack(v) for k, v in out.items() if v}, torch.tensor(colours), torch.tensor(answers)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--seed", type=int, default=5151)
    ap.add_argument("--layers", default="")
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated feature sets to probe (default: all)")
    ap.add_argument("--no-controls", action="store_true", help="skip the no-time controls")
    a = ap.parse_args(argv)
    t0 = time.time()
    model, processor = load_parts(a.model)
    model.eval()
    layers = [int(k) for k in a.layers.split(",") if k]
    feats, q, y = features(model, processor, a.n, a.seed, layers, a.oracle)
    frames = torch.arange(feats["projector"].shape[1]) // (feats["projector"].shape[1] // 8)
    m = int(a.n * 0.7)
    report = {"model": a.model, "n": a.n, "seed": a.seed, "feature_minutes": round((time.time() - t0) / 60, 2),
              "majority": round(float(torch.bincount(y[m:]).max()) / (a.n - m), 4), "readout": {}}
    for name, x in feats.items():
        if a.only and name not in a.only.split(","):
            continue
        report["readout"][name] = {
            "with_frame_index": fit_attention_probe(x[:m], q[:m], y[:m], x[m:], q[m:], y[m:], 4, frame=frames)}
        if not name.startswith("llm_") and not a.no_controls:
            report["readout"][name]["no_time_control"] = fit_attention_probe(x[:m], q[:m], y[:m], x[m:], q[m:],
                                                                             y[m:], 4, frame=None)
        print(name, report["readout"][name], flush=True)
    report["minutes"] = round((time.time() - t0) / 60, 2)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "readout.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
