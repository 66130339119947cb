"""Perception first, as LLaVA starts from CLIP: the SmolLM2 VideoLLM's vision tower pretrained on our frames.

The tower (a ``CLIPVisionModel``, run per frame: it never sees time) is trained with dense supervision that the
generator's frames give exactly. Every pixel of a synthetic frame is either background (one of six known scene
textures, or black) or one of seven object colours (the six square colours and the white of outlines and flashes),
so per-pixel labels are read from the pixels themselves, with no model in the loop. Per **video token** — a 2×2
pooled patch, 16×16 px, the unit the LLM sees (:data:`GRID` × :data:`GRID` tokens per frame) — the targets are:

* ``mask``: for each object colour, its coverage of each of the token's :data:`SUB` × :data:`SUB` sub-cells
  (2×2 px each): *what* is in the token and *where inside it* (``[tokens, colours * SUB**2]``);
* ``row`` / ``col``: the token's own place in the frame, so a question can find the red square by content and read
  its place from the same token;
* ``scene``: the background (six scenes, or black for fades).

Heads are linear on the pooled features (``[frames, GRID**2, hidden]``), exactly what the LLaVA projector receives
(``vision_feature_layer=-1`` without CLS, then ``LlavaNextVideo``'s 2×2 average pool), so what the heads read is
what the LLM can read. :func:`probe_report` measures it on held-out frames with probes fitted afresh on frozen
features (linear per token; an MLP on frame pairs for movement and on a clip for the count answer).

CLI: ``mapflow train smol-tower --seed S [--steps N] [--minutes M]``.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import PAPER_TASKS
from .probes import fit_probe
from .models.smol import TOWER_FILE
from .models.tiny import clip_vision_config
from .train import pixels
from .synthetic import (CELLS, COLORS, SCENES, WHITE, SynthConfig, clip_frames, generate_clip, image_sample,
                        scene_background)
from . import paths

#: Object colour classes of the per-pixel labels (class 0 is background).
OBJECT_COLORS: tuple[str, ...] = (*COLORS, "white")
#: Video tokens per frame side after 2×2 pooling (64 px / 8-px patches / 2) and sub-cells per token side (2-px
#: sub-cells: Object Count's squares move 6 px between sampled frames, 3 px at the half-way change).
GRID, SUB = 4, 8
#: Scene classes of a frame: the six scenes, then black (the fades).
SCENE_CLASSES: tuple[str, ...] = (*SCENES, "black")


@dataclass(frozen=True)
class TowerConfig:
    """The pretrained tower's sizes (a CLIP vision tower; 64×64 frames, 8-px patches)."""

    image_size: int = 64
    patch_size: int = 8
    hidden: int = 128
    layers: int = 4
    heads: int = 4

    def clip_config(self):
        return clip_vision_config(self.image_size, self.patch_size, self.hidden, self.layers, self.heads)


# ------------------------------------------------------------------------------------------ labels


_PALETTE = np.array([COLORS[c] for c in COLORS] + [WHITE], np.int16)  # [7, 3]
_BACKGROUNDS = None


def pixel_classes(frames: np.ndarray) -> np.ndarray:
    """Per-pixel object class of uint8 frames ``[N, H, W, 3]``: int64 ``[N, H, W]``, 0 = background, ``1 + i`` =
    ``OBJECT_COLORS[i]`` (exact colour match: no scene texture uses an object colour; tested)."""
    eq = (frames[..., None, :].astype(np.int16) == _PALETTE).all(-1)  # [N, H, W, 7]
    return np.where(eq.any(-1), eq.argmax(-1) + 1, 0)


def scene_classes(frames: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
    """Scene of each frame ``[N]`` (index into :data:`SCENE_CLASSES`): the scene texture that matches the most
    background pixels; black when every pixel is black."""
    global _BACKGROUNDS
    size = frames.shape[1]
    if _BACKGROUNDS is None or _BACKGROUNDS.shape[1] != size:
        _BACKGROUNDS = np.stack([scene_background(s, size) for s in SCENES])  # [6, H, W, 3]
    classes = pixel_classes(frames) if classes is None else classes
    bg = classes == 0  # [N, H, W]
    match = (frames[:, None] == _BACKGROUNDS[None]).all(-1) & bg[:, None]  # [N, 6, H, W]
    scene = match.sum((2, 3)).argmax(1)
    black = ~frames.reshape(len(frames), -1).any(1)
    return np.where(black, len(SCENES), scene)


def token_targets(frames: np.ndarray) -> dict[str, torch.Tensor]:
    """Dense targets of uint8 frames ``[N, 64, 64, 3]``: ``mask`` float ``[N, GRID**2, 7 * SUB**2]`` (coverage of each
    colour in each sub-cell, colour-major), ``scene`` int64 ``[N]``. Tokens are in row-major order, as pooled."""
    n, h, w, _ = frames.shape
    cls = pixel_classes(frames)
    onehot = (cls[..., None] == np.arange(1, len(OBJECT_COLORS) + 1)).astype(np.float32)  # [N, H, W, 7]
    px = h // (GRID * SUB)
    m = onehot.reshape(n, GRID, SUB, px, GRID, SUB, px, len(OBJECT_COLORS)).mean((3, 6))  # [N, gr, sr, gc, sc, 7]
    m = m.transpose(0, 1, 3, 5, 2, 4).reshape(n, GRID * GRID, len(OBJECT_COLORS) * SUB * SUB)
    return {"mask": torch.from_numpy(np.ascontiguousarray(m)),
            "scene": torch.from_numpy(scene_classes(frames, cls).astype(np.int64))}


def frame_by_frame(frames: np.ndarray) -> str:
    """A frame-by-frame caption read from the pixels (training data for the LLM, never a question): for each frame,
    each object colour present and the 3×3 cell of its centroid, e.g. ``"1 black . 2 red west , blue center . …"``
    (colours in :data:`OBJECT_COLORS` order; white outlines and flashes are left out)."""
    cls = pixel_classes(frames)
    size = frames.shape[1]
    parts = []
    for k, c in enumerate(cls):
        seen = []
        for i, name in enumerate(OBJECT_COLORS[:-1]):
            ys, xs = np.nonzero(c == i + 1)
            if len(ys):
                cell = int(min(2, ys.mean() * 3 // size) * 3 + min(2, xs.mean() * 3 // size))
                seen.append(f"{name} {CELLS[cell]}")
        what = " , ".join(seen) if seen else ("black" if not frames[k].any() else "nothing")
        parts.append(f"{k + 1} {what} .")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------- model


def pooled_features(tower, pixel_values: torch.Tensor) -> torch.Tensor:
    """What ``LlavaNextVideo`` hands its projector: the last hidden state without CLS, 2×2 average-pooled.
    ``pixel_values [N, 3, 64, 64]`` → ``[N, GRID**2, hidden]`` (tested equal to the model's own path)."""
    h = tower(pixel_values, output_hidden_states=True).hidden_states[-1][:, 1:]  # [N, P, D]
    n, p, d = h.shape
    side = int(math.isqrt(p))
    g = F.avg_pool2d(h.transpose(1, 2).reshape(n, d, side, side), 2)  # [N, D, GRID, GRID]
    return g.flatten(2).transpose(1, 2)


class PerceptionHeads(nn.Module):
    """Linear read-outs of a pooled token: colour coverage per sub-cell, the token's row and column, the scene."""

    def __init__(self, hidden: int):
        super().__init__()
        self.mask = nn.Linear(hidden, len(OBJECT_COLORS) * SUB * SUB)
        self.row = nn.Linear(hidden, GRID)
        self.col = nn.Linear(hidden, GRID)
        self.scene = nn.Linear(hidden, len(SCENE_CLASSES))

    def loss(self, feats: torch.Tensor, targets: dict) -> tuple[torch.Tensor, dict]:
        """``feats [N, GRID**2, D]``; mean of the four losses (BCE on soft coverage, CE on row/col/scene)."""
        n = feats.shape[0]
        rows = torch.arange(GRID).repeat_interleave(GRID).repeat(n)
        cols = torch.arange(GRID).repeat(GRID).repeat(n)
        f = feats.reshape(n * GRID * GRID, -1)
        parts = {
            "mask": F.binary_cross_entropy_with_logits(self.mask(f), targets["mask"].reshape(len(f), -1)) * 10,
            "row": F.cross_entropy(self.row(f), rows),
            "col": F.cross_entropy(self.col(f), cols),
            "scene": F.cross_entropy(self.scene(f), targets["scene"].repeat_interleave(GRID * GRID)),
        }
        return sum(parts.values()) / len(parts), {k: round(v.item(), 4) for k, v in parts.items()}


def new_tower(cfg: TowerConfig = TowerConfig(), seed: int = 0):
    from transformers import CLIPVisionModel

    torch.manual_seed(seed)
    return CLIPVisionModel(cfg.clip_config())


# -------------------------------------------------------------------------------------------- data


def training_frames(seed: int, step: int, clips: int, images: int, cfg: SynthConfig = SynthConfig()) -> np.ndarray:
    """Frames of one tower batch, from ``(seed, step)`` only: every content frame of ``clips`` clips of random tasks
    (not only the sampled ones: more positions per clip) and ``images`` image samples. uint8 ``[N, H, W, 3]``."""
    rng = random.Random(f"{seed}/tower/{step}")
    out = []
    for j in range(clips):
        task = PAPER_TASKS[rng.randrange(len(PAPER_TASKS))]
        c = generate_clip(task, seed, step * clips + j, cfg)
        keep = sorted(rng.sample(range(len(c.frames)), 8))
        out.append(c.frames[keep])
    for j in range(images):
        out.append(image_sample(seed, step * images + j, cfg).image[None])
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------- training


@dataclass
class TowerStageConfig:
    stage: str = "smol-tower"
    seed: int = 0
    steps: int = 3000
    minutes: float = 20.0
    clips: int = 12
    images: int = 16
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.01
    save_every: int = 200
    log_every: int = 50
    tower: TowerConfig = TowerConfig()


def train_tower(cfg: TowerStageConfig, out: str | Path, log=print) -> Path:
    """Train the tower with :class:`PerceptionHeads` into ``out`` (resumable from ``out/checkpoint.pt``); writes
    ``out/tower.safetensors`` with its ``config.json`` (a ``CLIPVisionModel``), ``out/heads.safetensors``,
    ``out/log.jsonl`` and ``out/train.json``."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tower = new_tower(cfg.tower, cfg.seed)
    heads = PerceptionHeads(cfg.tower.hidden)
    params = list(tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, elapsed = 0, 0.0
    # every (re)start with its configuration: a run resumed with other settings says so in train.json
    history = [{"from_step": 0, "config": asdict(cfg)}]
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        tower.load_state_dict(st["tower"])
        heads.load_state_dict(st["heads"])
        opt.load_state_dict(st["opt"])
        step, elapsed = st["step"], st["elapsed"]
        history = st.get("history") or [{"from_step": 0, "config": None}]
        if history[-1]["config"] != asdict(cfg):
            history.append({"from_step": step, "config": asdict(cfg)})
        log(f"resumed smol-tower at step {step}")
    t0 = time.perf_counter() - elapsed
    logf = (out / "log.jsonl").open("a")

    def save():
        torch.save({"tower": tower.state_dict(), "heads": heads.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": time.perf_counter() - t0, "history": history}, str(ckpt) + ".tmp")
        Path(str(ckpt) + ".tmp").replace(ckpt)

    running: list[dict] = []
    tower.train()
    while step < cfg.steps and time.perf_counter() - t0 < cfg.minutes * 60:
        frames = training_frames(cfg.seed, step, cfg.clips, cfg.images)
        tg = token_targets(frames)
        scale = (step + 1) / cfg.warmup if step < cfg.warmup else \
            0.5 * (1 + math.cos(math.pi * (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)))
        for g in opt.param_groups:
            g["lr"] = cfg.lr * scale
        loss, parts = heads.loss(pooled_features(tower, pixels(frames)), tg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running.append(parts)
        step += 1
        if step % cfg.log_every == 0:
            rec = {"step": step, "minutes": round((time.perf_counter() - t0) / 60, 2),
                   **{k: round(float(np.mean([r[k] for r in running])), 4) for k in running[0]}}
            running = []
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log(json.dumps(rec))
        if step % cfg.save_every == 0:
            save()
    save()
    save_file({k: v.contiguous() for k, v in tower.state_dict().items()}, str(out / TOWER_FILE))
    tower.config.save_pretrained(out)  # config.json: smol.new_model builds the VideoLLM's tower from it
    save_file({k: v.contiguous() for k, v in heads.state_dict().items()}, str(out / "heads.safetensors"))
    meta = {"config": asdict(cfg), "history": history, "steps_done": step, "wall_minutes": round((time.perf_counter() - t0) / 60, 1),
            "parameters": sum(p.numel() for p in tower.parameters())}
    (out / "train.json").write_text(json.dumps(meta, indent=1) + "\n")
    log(f"smol-tower: {step} steps in {meta['wall_minutes']} min -> {out}")
    return out


def load_heads(folder: str | Path) -> PerceptionHeads:
    """The :class:`PerceptionHeads` trained with a ``smol-tower`` run (``heads.safetensors`` beside the tower)."""
    from safetensors.torch import load_file

    state = load_file(str(Path(folder) / "heads.safetensors"))
    heads = PerceptionHeads(state["row.weight"].shape[1])
    heads.load_state_dict(state)
    return heads.eval()


def load_tower(folder: str | Path):
    """The ``CLIPVisionModel`` of a ``smol-tower`` run or its shipped parts (``config.json`` + ``tower.safetensors``)."""
    from safetensors.torch import load_file
    from transformers import CLIPVisionConfig, CLIPVisionModel

    tower = CLIPVisionModel(CLIPVisionConfig.from_pretrained(folder))
    tower.load_state_dict(load_file(str(Path(folder) / TOWER_FILE)))
    return tower.eval()


# ------------------------------------------------------------------------------------------ probes


@torch.no_grad()
def _features(tower, frames: np.ndarray, chunk: int = 256) -> torch.Tensor:
    return torch.cat([pooled_features(tower, pixels(frames[i:i + chunk])) for i in range(0, len(frames), chunk)])


def token_probe_data(tower, seed: int, n_clips: int, cfg: SynthConfig = SynthConfig()):
    """Per-token features and labels of the sampled frames of ``n_clips`` clips per task (held-out seed)."""
    frames = np.concatenate([clip_frames(t, seed, i, cfg)[1] for t in PAPER_TASKS for i in range(n_clips)])
    tg = token_targets(frames)
    f = _features(tower, frames).reshape(-1, tower.config.hidden_size)
    m = tg["mask"].reshape(len(f), len(OBJECT_COLORS), SUB * SUB)
    cover = m.mean(2)  # [tokens, colours]
    dom = cover.argmax(1)
    present = cover.max(1).values >= 1 / 16  # at least one sub-cell's worth of an object colour
    content = torch.where(present, dom + 1, torch.zeros_like(dom))
    # where inside the token the dominant colour is: its coverage-weighted centroid, in 4×4-px cells (16-way)
    w = m[torch.arange(len(f)), dom]  # [tokens, SUB*SUB]
    cell = 16 / SUB  # px per sub-cell
    yy = (torch.arange(SUB).repeat_interleave(SUB).float() + 0.5) * cell
    xx = (torch.arange(SUB).repeat(SUB).float() + 0.5) * cell
    tot = w.sum(1).clamp(min=1e-6)
    cy, cx = ((w * yy).sum(1) / tot // 4).long().clamp(0, 3), ((w * xx).sum(1) / tot // 4).long().clamp(0, 3)
    n_tok = GRID * GRID
    return {"features": f, "content": content, "present": present, "subcell": cy * 4 + cx,
            "row": torch.arange(GRID).repeat_interleave(GRID).repeat(len(frames)),
            "col": torch.arange(GRID).repeat(GRID).repeat(len(frames)),
            "scene": tg["scene"].repeat_interleave(n_tok)}


def count_probe_data(tower, seed: int, n_clips: int, cfg: SynthConfig = SynthConfig()):
    """Object Count clips, for each asked square (sorted by lane) and each pair of consecutive sampled content
    frames: the features of the token rows the square's lane overlaps in both frames, with the lane's 4-px row
    (where to look; the colour is read per token, see ``token_content``), and whether the square moved.

    Returns ``(x [clips * 3 * pairs, d], moved [clips * 3 * pairs], first_half [pairs] bool, answers [clips],
    clip_x [clips, d'])`` where ``clip_x`` is every sampled frame's tokens and the asked colour."""
    pair_x, moved, clip_x, answers = [], [], [], []
    first_half = None
    colors = list(COLORS)
    for i in range(n_clips):
        c, frames, idx = clip_frames("object_count", seed, i, cfg)
        f = _features(tower, frames)  # [T, GRID**2, D]
        content = idx - c.meta["content_offset"]
        inside = [(k, int(j)) for k, j in enumerate(content) if 0 <= j < cfg.content]
        pairs = list(zip(inside, inside[1:]))
        first_half = torch.tensor([j1 <= cfg.content // 2 for (_, _), (_, j1) in pairs])
        color = c.question.split()[2]
        for sq in sorted((s for s in c.meta["squares"] if s["color"] == color), key=lambda s: s["lane"]):
            px_per_token = cfg.size // GRID
            r0 = int(sq["y"] // px_per_token)
            r1 = min(GRID - 1, int((sq["y"] + cfg.obj - 1) // px_per_token))
            toks = [r * GRID + col for r in (r0, r1) for col in range(GRID)]
            where = torch.zeros(cfg.size // 4)
            where[int(sq["y"] // 4)] = 1
            for (k0, j0), (k1, j1) in pairs:
                pair_x.append(torch.cat([f[k0, toks].flatten(), f[k1, toks].flatten(), where]))
                moved.append(int(sq["x"][j0] != sq["x"][j1]))
        onehot = torch.zeros(len(colors))
        onehot[colors.index(color)] = 1
        clip_x.append(torch.cat([f.flatten(), onehot]))
        answers.append(int(c.answer))
    return torch.stack(pair_x), torch.tensor(moved), first_half, torch.tensor(answers), torch.stack(clip_x)


@torch.no_grad()
def head_movement_data(tower, heads: "PerceptionHeads", seed: int, n_clips: int, cfg: SynthConfig = SynthConfig()):
    """Object Count, read by the tower's own linear mask head: for each asked square and each pair of consecutive
    sampled content frames, how much the asked colour's decoded coverage changes on the square's own 2-px rows (the
    lane, not the 16-px token rows, which also hold neighbouring lanes).

    Returns ``(change [clips, 3, pairs], moved [clips, 3, pairs] bool, first_half [pairs] bool, answers [clips])``."""
    colors = list(OBJECT_COLORS)
    cell = cfg.size // (GRID * SUB)  # px per sub-cell
    change, moved, answers, first_half = [], [], [], None
    for i in range(n_clips):
        c, frames, idx = clip_frames("object_count", seed, i, cfg)
        cover = torch.sigmoid(heads.mask(_features(tower, frames)))  # [T, GRID**2, colours * SUB * SUB]
        cover = cover.reshape(len(frames), GRID, GRID, len(colors), SUB, SUB)
        content = idx - c.meta["content_offset"]
        inside = [(k, int(j)) for k, j in enumerate(content) if 0 <= j < cfg.content]
        pairs = list(zip(inside, inside[1:]))
        first_half = torch.tensor([j1 <= cfg.content // 2 for (_, _), (_, j1) in pairs])
        color = c.question.split()[2]
        full = cover[:, :, :, colors.index(color)].permute(0, 1, 3, 2, 4).reshape(len(frames), GRID * SUB, GRID * SUB)
        ch, mv = [], []
        for sq in sorted((s for s in c.meta["squares"] if s["color"] == color), key=lambda s: s["lane"]):
            lo, hi = int(sq["y"] // cell), int((sq["y"] + cfg.obj - 1) // cell) + 1
            ch.append([float((full[k0, lo:hi] - full[k1, lo:hi]).abs().sum()) for (k0, _), (k1, _) in pairs])
            mv.append([sq["x"][j0] != sq["x"][j1] for (_, j0), (_, j1) in pairs])
        change.append(ch)
        moved.append(mv)
        answers.append(int(c.answer))
    return torch.tensor(change), torch.tensor(moved), first_half, torch.tensor(answers)


def head_movement_report(tower, heads: "PerceptionHeads", seed: int = 4243, n_clips: int = 300) -> dict:
    """Movement and the count answer from :func:`head_movement_data`: one threshold on the coverage change, chosen
    on the first 70% of clips, scored on the rest (``lane_movement_head``, ``count_from_head_movement``)."""
    change, moved, first, answers = head_movement_data(tower, heads, seed, n_clips)
    m = int(n_clips * 0.7)
    train_c, train_m = change[:m].flatten(), moved[:m].flatten()
    best = max(torch.unique(train_c).tolist(), key=lambda t: float(((train_c > t) == train_m).float().mean()))
    pred = change[m:] > best
    moving = pred[:, :, first].any(-1).sum(1)
    return {"lane_movement_head": round(float((pred == moved[m:]).float().mean()), 4),
            "count_from_head_movement": round(float((moving == answers[m:]).float().mean()), 4),
            "head_threshold": round(best, 3)}


def probe_report(tower, seed: int = 4242, n_clips: int = 120, n_count: int = 1500) -> dict:
    """Held-out probes on frozen pooled features (clips of synthetic ``seed``, split 70/30 by clip):

    * per token, linear: content (dominant object colour or none, 8-way), where inside the token it sits (sub-cell
      of its centroid, 16-way, tokens with an object), the token's row and column, the scene (7-way);
    * Object Count, MLP (one hidden layer of 256): whether an asked square moved between two consecutive sampled
      frames (from both frames' tokens in the rows its lane overlaps, see :func:`count_probe_data`); the count
      answer composed from those read-outs (``count_from_movement``) and, with no hint where to look, an MLP on all
      eight frames' tokens and the asked colour (``count_answer_mlp``).
    """
    t0 = time.perf_counter()
    d = token_probe_data(tower, seed, n_clips)
    # split by clip: tokens are grouped task-major then clip, 8 frames × 16 tokens each
    clip_id = torch.arange(len(d["features"])) // (8 * GRID * GRID)
    test = (clip_id % 10) >= 7
    x = d["features"]
    rep = {}
    for key, k in (("content", len(OBJECT_COLORS) + 1), ("row", GRID), ("col", GRID), ("scene", len(SCENE_CLASSES))):
        rep[f"token_{key}"] = fit_probe(x[~test], d[key][~test], x[test], d[key][test], k)
    rep["token_content_majority"] = round(float((d["content"][test] == 0).float().mean()), 4)
    sel = d["present"]
    rep["token_subcell"] = fit_probe(x[~test & sel], d["subcell"][~test & sel], x[test & sel], d["subcell"][test & sel],
                                     16)
    px, py, first, answers, cx = count_probe_data(tower, seed + 1, n_count)
    per_clip = len(py) // n_count  # 3 squares × pairs
    m = int(n_count * 0.7)
    acc, pred = fit_probe(px[:m * per_clip], py[:m * per_clip], px[m * per_clip:], py[m * per_clip:], 2,
                          hidden=256, epochs=40, predictions=True)
    rep["lane_movement"] = acc
    rep["lane_movement_majority"] = round(max(float(py[m * per_clip:].float().mean()),
                                              1 - float(py[m * per_clip:].float().mean())), 4)
    # the count answer from those movement read-outs: a square moves at the start if it moved in a pair inside the
    # first half; the answer is how many of the three do
    moving = pred.reshape(n_count - m, 3, -1)[:, :, first].any(-1).sum(1)
    rep["count_from_movement"] = round(float((moving == answers[m:]).float().mean()), 4)
    rep["count_answer_mlp"] = fit_probe(cx[:m], answers[:m], cx[m:], answers[m:], 4, hidden=256, epochs=60,
                                        weight_decay=1e-3)
    rep["count_majority"] = round(float(torch.bincount(answers[m:]).max() / (n_count - m)), 4)
    rep["probe_seconds"] = round(time.perf_counter() - t0, 1)
    return rep


#: What the tower must give (issue 22's targets), per probe of :func:`probe_report`.
TARGETS: dict[str, float] = {"token_content": 0.95, "token_row": 0.95, "token_col": 0.95, "token_scene": 0.95,
                             "token_subcell": 0.95, "lane_movement": 0.95, "count_from_movement": 0.85,
                             "lane_movement_head": 0.95, "count_from_head_movement": 0.85}
_PROBE_WORDS = {
    "token_content": "what is in a token (dominant object colour or none, 8-way)",
    "token_row": "the token's row (4-way)", "token_col": "the token's column (4-way)",
    "token_scene": "the scene or black (7-way)",
    "token_subcell": "where inside the token the object sits (4×4-px cell of its centroid, 16-way)",
    "lane_movement": "Object Count: did an asked square move between two sampled frames (MLP, lane rows)",
    "count_from_movement": "Object Count answer composed from those movement read-outs",
    "count_answer_mlp": "Object Count answer, MLP on all frames' tokens + asked colour (no hint where to look)",
    "lane_movement_head": "Object Count: did it move, read by the tower's own linear mask head on the lane's 2-px rows",
    "count_from_head_movement": "Object Count answer composed from those mask-head read-outs",
}
_BASELINES = {"token_content": "token_content_majority", "lane_movement": "lane_movement_majority",
              "count_from_movement": "count_majority", "count_answer_mlp": "count_majority",
              "lane_movement_head": "lane_movement_majority", "count_from_head_movement": "count_majority"}


def probe_table(probes: dict) -> str:
    """A Markdown table of a tower's :func:`probe_report` (``probes.json``): each probe beside its baseline and its
    target in :data:`TARGETS`, met or missed."""
    rows = ["| probe | accuracy % | baseline % | target % | |", "|---|---|---|---|---|"]
    for key, words in _PROBE_WORDS.items():
        if key not in probes:
            continue
        base = probes.get(_BASELINES.get(key, ""), None)
        target = TARGETS.get(key)
        met = "" if target is None else ("met" if probes[key] >= target else "**missed**")
        rows.append(f"| {words} | {100 * probes[key]:.1f} | {'' if base is None else f'{100 * base:.1f}'} | "
                    f"{'' if target is None else f'{100 * target:.0f}'} | {met} |")
    return "\n".join(rows) + "\n"


def ship(run: str | Path, out: str | Path) -> Path:
    """Copy a finished ``smol-tower`` run's parts (tower, heads, probes, log, config) into ``out`` with a card that
    shows every probe beside its target and baseline: the stage's committed parts, which the next stage reads."""
    import shutil

    run, out = Path(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in (TOWER_FILE, "config.json", "heads.safetensors", "probes.json", "train.json", "log.jsonl"):
        shutil.copy2(run / name, out / name)
    probes = json.loads((run / "probes.json").read_text())
    meta = json.loads((run / "train.json").read_text())
    t = meta["config"]["tower"]
    cfg = meta["config"]
    flags = "".join(f" --{k} {t[k]}" for k in ("hidden", "layers") if t[k] != getattr(TowerConfig(), k))
    history = meta.get("history") or []
    resumed = "".join(
        f" Resumed at step {h['from_step']} with peak lr {h['config']['lr']:g} (until then {prev['config']['lr']:g})"
        + (f": {prev['note']}" if prev.get("note") else "") + "."
        for prev, h in zip(history, history[1:]) if h.get("config") and prev.get("config"))
    pilots = sorted(d.name for d in (out / "pilots").iterdir() if d.is_dir()) if (out / "pilots").is_dir() else []
    pilot_text = ("\n## Pilots (logs in `pilots/`)\n\nEach folder holds a pilot's `train.json` (its exact configuration) "
                  "and `log.jsonl`; issue 22's closing notes give their numbers: " + ", ".join(f"`{p}`" for p in pilots)
                  + ".\n") if pilots else ""
    (out / "README.md").write_text(
        "# smol-tower: the SmolLM2 VideoLLM's vision tower, pretrained on our frames (our CLIP)\n\n"
        f"A `CLIPVisionModel` ({t['layers']} layers × {t['hidden']}, {t['image_size']}×{t['image_size']} frames, "
        f"{t['patch_size']}-px patches, {meta['parameters']:,} parameters) run per frame — it never sees time — "
        "trained with dense labels read exactly from the generator's pixels (`mapflow_utils.perception`): per "
        "video token (2×2-pooled patch, what the projector receives), each object colour's coverage of every "
        f"{16 // SUB}-px sub-cell, the token's row and column, and the scene.\n\n"
        f"Trained {meta['steps_done']} steps in {meta['wall_minutes']} min on one CPU thread "
        f"(`mapflow train smol-tower --seed {cfg['seed']} --steps {cfg['steps']} --minutes {cfg['minutes']:g}"
        f"{flags} --lr {cfg['lr']:g} --probe`; the cosine schedule spans the steps, the minutes stop it earlier)."
        f"{resumed}\n\n"
        "## Held-out probes (frozen features, clips of another seed, 70/30 by clip)\n\n" + probe_table(probes) + "\n"
        + pilot_text)
    return out


def main(argv=None) -> int:
    import argparse


    ap = argparse.ArgumentParser(prog="mapflow train smol-tower")
    ap.add_argument("stage", choices=["smol-tower"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (TowerStageConfig.lr)")
    ap.add_argument("--hidden", type=int, default=None, help="tower width (TowerConfig.hidden)")
    ap.add_argument("--layers", type=int, default=None, help="tower depth (TowerConfig.layers)")
    ap.add_argument("--probe", action="store_true", help="after training, run the held-out probes into probes.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads or 1)
    cfg = TowerStageConfig(seed=args.seed)
    for k in ("steps", "minutes", "lr"):
        if getattr(args, k) is not None:
            setattr(cfg, k, getattr(args, k))
    sizes = {k: getattr(args, k) for k in ("hidden", "layers") if getattr(args, k) is not None}
    if sizes:
        cfg.tower = replace(cfg.tower, **sizes)
    out = Path(args.out) if args.out else paths.ROOT / "runs" / "train" / f"smol-tower-s{args.seed}"
    train_tower(cfg, out)
    if args.probe:
        rep = probe_report(load_tower(out))
        rep.update(head_movement_report(load_tower(out), load_heads(out)))
        (out / "probes.json").write_text(json.dumps(rep, indent=1) + "\n")
        print(json.dumps(rep))
    return 0
