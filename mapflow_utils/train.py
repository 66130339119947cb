"""Training recipe of the embedded models, on CPU, deterministic per seed.

Two stages mirror the real pipeline (an image LLM, then video instruction tuning from it):

* ``imagellm`` — from scratch: dense image captions in the synthetic grammar, then image QA (content format).
  Images go through the video path as one-frame videos (16 tokens).
* ``videollm`` — from the ImageLLM: video captions and the five multiple-choice tasks in the ``content`` answer
  format (8 frames, 128 video tokens), with some image data kept in the mix.
* ``letters`` — the one bounded try at answer *letters* (the paper's format): from the ImageLLM, image QA in the
  ``letter`` format with shuffled options, where the target is the letter *and* the option's text after it
  (``B) blue``), plus a dense auxiliary binding task both ways ("Which option is blue?" -> ``B``; "What is option
  (B)?" -> ``blue``). Letter accuracy on held-out image questions is logged as it trains (the curve).

Data is generated on the fly from ``(seed, step)``, so a run is reproducible and resumable: checkpoints (model,
optimizer, step) are written to ``<out>/checkpoint.pt`` every ``save_every`` steps and a run restarts from there.
The training inputs are built by the same chat template and the same normalisation as the processor (a test checks
that they match the processor's output token for token and pixel for pixel).

CLI: ``mapflow train {imagellm,videollm} --seed S --out DIR [--steps N] [--minutes M]``.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import paths
from .data import PAPER_TASKS, sample_indices
from .prompts import build_prompt
from .synthetic import SynthConfig, generate_clip, image_sample
from .evaluate import image_accuracy
from .models import adapter_for
from .models import tiny

CAPTION_IMAGE = "Describe the image."
CAPTION_VIDEO = "Describe the video."
CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


@dataclass
class StageConfig:
    """Hyper-parameters of one stage."""

    stage: str = "videollm"
    seed: int = 0
    steps: int = 3000
    minutes: float = 60.0  # wall-clock budget: stop (and save) when it is spent
    batch_size: int = 32
    lr: float = 1.5e-3
    warmup: int = 100
    weight_decay: float = 0.01
    caption_steps: int = 400  # imagellm: caption-only steps before QA is mixed in
    caption_share: float = 0.3  # share of caption samples after that
    image_share: float = 0.1  # videollm: share of image batches kept in the mix
    save_every: int = 200
    log_every: int = 20
    num_frames: int = 8
    size: str = "base"  # a key of tiny.SIZES (used only when the stage starts from scratch)


def pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` → normalised float ``[T, 3, H, W]`` exactly as the tiny processor does (64×64 frames,
    rescale 1/255, CLIP mean/std)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    return (x - CLIP_MEAN) / CLIP_STD


def caption_prompt(processor, instruction: str) -> str:
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": instruction}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode(processor, prompt_text: str, target: str, n_video_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt_text + target + eos`` with the video placeholder (if any) expanded, and labels (-100 on
    the prompt)."""
    tok = processor.tokenizer
    vid = tok.convert_tokens_to_ids(tok.video_token)
    p = tok(prompt_text, add_special_tokens=False)["input_ids"]
    full = tok(prompt_text + target, add_special_tokens=False)["input_ids"]
    if full[: len(p)] != p:
        full = p + tok(target, add_special_tokens=False)["input_ids"]
    full = full + [tok.eos_token_id]
    labels = [-100] * len(p) + full[len(p):]
    if vid not in full:  # a text-only item
        return full, labels
    i = full.index(vid)
    ids = full[:i] + [vid] * n_video_tokens + full[i + 1:]
    labels = labels[:i] + [-100] * n_video_tokens + labels[i + 1:]
    return ids, labels


class Batches:
    """Deterministic batches for a stage: ``batch(step)`` depends only on (seed, stage, step)."""

    def __init__(self, processor, cfg: StageConfig, tokens_per_frame: int = 16):
        self.proc, self.cfg, self.tpf = processor, cfg, tokens_per_frame
        self.synth = SynthConfig()
        self._prompt_cache: dict = {}

    def _prompt(self, question, candidates, task=""):
        key = (question, tuple(candidates))
        if key not in self._prompt_cache:
            self._prompt_cache[key] = build_prompt(self.proc, question, candidates, "content", task=task)
        return self._prompt_cache[key]

    def _letter_item(self, rng: random.Random, index: int):
        s = image_sample(self.cfg.seed, index, self.synth)
        q, cands, a = s.qa[rng.randrange(len(s.qa))]
        letters = "ABCD"[: len(cands)]
        form = rng.random()
        if form < 0.5:  # the task itself: letter, then the option's text
            p = build_prompt(self.proc, q, cands, "letter")
            i = cands.index(a)
            return s.image[None], p.text, f"{letters[i]}) {a}"
        listing = "\n".join(f"({l}) {c}" for l, c in zip(letters, cands))
        j = rng.randrange(len(cands))
        if form < 0.75:  # content -> letter
            text = f"Options:\n{listing}\nWhich option is {cands[j]}?"
            target = letters[j]
        else:  # letter -> content
            text = f"Options:\n{listing}\nWhat is option ({letters[j]})?"
            target = cands[j]
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
        prompt = self.proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return s.image[None], prompt + "Best option:(", target

    def _image_item(self, rng: random.Random, index: int, caption: bool):
        if self.cfg.stage == "letters":
            return self._letter_item(rng, index)
        s = image_sample(self.cfg.seed, index, self.synth)
        if caption:
            text, target = caption_prompt(self.proc, CAPTION_IMAGE), " " + s.caption
        else:
            q, cands, a = s.qa[rng.randrange(len(s.qa))]
            p = self._prompt(q, cands)
            text, target = p.text, " " + a
        return s.image[None], text, target

    def _video_item(self, rng: random.Random, index: int, caption: bool):
        task = PAPER_TASKS[rng.randrange(len(PAPER_TASKS))]
        clip = generate_clip(task, self.cfg.seed, index, self.synth)
        idx = sample_indices(len(clip.frames), self.cfg.num_frames, self.synth.fps, clip.start, clip.end)
        if caption:
            text, target = caption_prompt(self.proc, CAPTION_VIDEO), " " + clip.caption
        else:
            p = self._prompt(clip.question, clip.candidates, task)
            text, target = p.text, " " + clip.answer
        return clip.frames[idx], text, target

    def kind(self, step: int) -> str:
        """``image`` or ``video`` batch at ``step``."""
        if self.cfg.stage in ("imagellm", "letters"):
            return "image"
        return "image" if random.Random(f"{self.cfg.seed}/kind/{step}").random() < self.cfg.image_share else "video"

    def batch(self, step: int) -> dict:
        rng = random.Random(f"{self.cfg.seed}/{self.cfg.stage}/{step}")
        kind = self.kind(step)
        items = []
        for j in range(self.cfg.batch_size):
            index = step * self.cfg.batch_size + j
            if kind == "image":
                cap = (self.cfg.stage == "imagellm" and step < self.cfg.caption_steps) or \
                      rng.random() < self.cfg.caption_share
                items.append(self._image_item(rng, index, cap))
            else:
                items.append(self._video_item(rng, index, rng.random() < self.cfg.caption_share))
        return self._collate(items)

    def _collate(self, items) -> dict:
        """``(frames [T, H, W, 3] or None, prompt text, target)`` items → a right-padded training batch (text-only
        when every item's frames are None: ``pixel_values_videos`` is then None)."""
        frames = None if all(f is None for f, _, _ in items) else torch.stack([pixels(f) for f, _, _ in items])
        n_video = 0 if frames is None else frames.shape[1] * self.tpf
        encoded = [encode(self.proc, t, y, n_video) for _, t, y in items]
        n = max(len(ids) for ids, _ in encoded)
        pad = self.proc.tokenizer.pad_token_id
        input_ids = torch.full((len(items), n), pad)
        labels = torch.full((len(items), n), -100)
        mask = torch.zeros((len(items), n), dtype=torch.long)
        for i, (ids, lab) in enumerate(encoded):  # right padding for training
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
            mask[i, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "pixel_values_videos": frames}


def letter_accuracy(model, processor, n: int = 120, seed: int = 999) -> float:
    """Accuracy of the answer *letter* on held-out image questions (letter format, shuffled options)."""

    model.eval()
    res = image_accuracy(adapter_for(model, processor), n=n // 4, seed=seed, answer_format="letter")
    return round(sum(c for c, _ in res.values()) / sum(k for _, k in res.values()), 4)


def _lr(step: int, cfg: StageConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def train_stage(cfg: StageConfig, out: str | Path, init: str | Path | None = None, log=print) -> Path:
    """Train one stage into ``out`` (resuming from ``out/checkpoint.pt``); returns ``out``.

    ``init``: a saved model folder to start from (the ImageLLM for ``videollm``); ``None`` builds a fresh tiny model.
    Writes ``out/model`` (``save_pretrained``, safetensors, with its processor), ``out/log.jsonl`` and
    ``out/train.json`` (config, steps, wall time).
    """
    from transformers import AutoProcessor, LlavaNextVideoForConditionalGeneration


    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if init is None:
        model, processor = tiny.build(tiny.SIZES[cfg.size], seed=cfg.seed)
    else:
        model = LlavaNextVideoForConditionalGeneration.from_pretrained(init)
        processor = AutoProcessor.from_pretrained(init)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    step, elapsed = 0, 0.0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed {cfg.stage} at step {step} ({elapsed / 60:.1f} min spent)")
    batches = Batches(processor, cfg)
    logf = (out / "log.jsonl").open("a")
    t0 = time.perf_counter() - elapsed

    def save(final: bool = False):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": time.perf_counter() - t0, "torch_rng": torch.get_rng_state()}, str(ckpt) + ".tmp")
        Path(str(ckpt) + ".tmp").replace(ckpt)
        if final:
            model.save_pretrained(out / "model")
            processor.save_pretrained(out / "model")

    running: dict[str, list] = {"image": [], "video": []}
    while step < cfg.steps and (time.perf_counter() - t0) < cfg.minutes * 60:
        batch = batches.batch(step)
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running[batches.kind(step)].append(loss.item())
        step += 1
        if step % cfg.log_every == 0:
            rec = {"step": step, "minutes": round((time.perf_counter() - t0) / 60, 2), "lr": _lr(step, cfg)}
            rec.update({f"loss_{k}": round(float(np.mean(v)), 4) for k, v in running.items() if v})
            running = {"image": [], "video": []}
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log(json.dumps(rec))
        if cfg.stage == "letters" and step % cfg.save_every == 0:
            acc = letter_accuracy(model, processor)
            rec = {"step": step, "minutes": round((time.perf_counter() - t0) / 60, 2), "letter_accuracy": acc}
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log(json.dumps(rec))
            model.train()
        if step % cfg.save_every == 0:
            save()
    model.eval()
    save(final=True)
    wall = time.perf_counter() - t0
    meta = {"config": asdict(cfg), "steps_done": step, "wall_minutes": round(wall / 60, 1), "init": str(init),
            "parameters": sum(p.numel() for p in model.parameters())}
    (out / "train.json").write_text(json.dumps(meta, indent=1) + "\n")
    log(f"{cfg.stage}: {step} steps in {wall / 60:.1f} min -> {out / 'model'}")
    return out


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="mapflow train")
    ap.add_argument("stage", choices=["imagellm", "videollm", "letters"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="run folder (default runs/train/<stage>-s<seed>)")
    ap.add_argument("--init", default=None, help="model folder to start from (videollm: the ImageLLM)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--save-every", type=int, default=None)
    ap.add_argument("--size", default=None, help="model size from scratch (imagellm): base or deep")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = StageConfig(stage=args.stage, seed=args.seed)
    for k in ("steps", "minutes", "batch_size", "lr", "save_every", "size"):
        if getattr(args, k) is not None:
            setattr(cfg, k, getattr(args, k))
    out = args.out or paths.ROOT / "runs" / "train" / f"{args.stage}-s{args.seed}"
    init = args.init
    if args.stage in ("videollm", "letters") and init is None:
        init = paths.DATA / "models" / "tiny-imagellm"
    train_stage(cfg, out, init=init)
    return 0
