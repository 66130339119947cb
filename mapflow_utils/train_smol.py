"""LLaVA's recipe for the SmolLM2 VideoLLM (:mod:`mapflow_utils.models.smol`), on CPU, deterministic per seed.

Four kinds of stage, each resumable (``<out>/checkpoint.pt`` every ``save_every`` steps) and each saved as parts:

* ``smol-align`` — LLaVA stage 1: image captions; only the projector trains (the vision tower is the
  perception-pretrained one of :mod:`mapflow_utils.perception`, our CLIP; SmolLM2 is frozen).
* ``smol-mcq`` — a text-only warm-up of the letter format: multiple-choice questions whose facts are written out
  (a clip's or an image's caption before the question), the letter as the target; only a fresh LoRA trains. Without
  it the letters stayed at chance through the image and video stages (four recipes, 200-320 steps each).
* ``smol-imagellm`` — LLaVA stage 2, continuing the warm-up's LoRA (the **ImageLLM**): image QA (letter format with
  shuffled options, or content format: the option's words as the answer; in ``described_share`` of them the image's
  caption is also written before the question) and captions; LoRA on SmolLM2 (peft, rank ``lora_r`` on every
  attention and MLP projection) and the projector train (the tower too unless ``train_vision`` is off).
* ``smol-videollm`` — the **Video-FT**, from the ImageLLM: the five tasks, video captions (``track_share`` of them
  frame by frame: where each colour is in each frame) and some image batches; the same LoRA and projector go on.

:data:`RECIPE` chains six runs of them (issue 22's pilots found it): align, the warm-up, the ImageLLM in answer
words (with captions naming every square's place: the LLM reads place from the tower's tokens only after some
thousands of such images) then in letters, the Video-FT in words then in letters; ``mapflow train smol-pipeline``
(``tools/train_smol.sh``) runs them in order, skipping finished runs.

Prompts are the book's: the MVBench system prompt, ``Question: …``/``Options:``/``(A) …`` and the ``Best option:(``
prefill; the letter target is the letter alone (``B``) followed by ``<|im_end|>`` (with ``B) text`` the letter was a
quarter of a sample's loss and letters stayed at chance for 100 image-QA steps). The loss is computed only where a
label is (logits of 49,154 entries at every position would dominate the step). Batches depend only on (seed, stage,
step + ``data_offset``) (:class:`mapflow_utils.train.Batches`), so an interrupted run resumes exactly.

CLI: ``mapflow train <run of RECIPE>|smol-pipeline --seed S [--init DIR] [--steps N] [--minutes M] …``.
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
import torch.nn.functional as F

from . import paths
from .models import smol
from .prompts import build_prompt
from .train import CAPTION_IMAGE, CAPTION_VIDEO, Batches, StageConfig, caption_prompt
from .synthetic import IMAGE_KINDS, SynthConfig, clip_frames, generate_clip, image_sample
from .data import PAPER_TASKS, sample_indices
from .perception import frame_by_frame
from .probes import last_token_probe
from .evaluate import predict
from .models import adapter_for

#: The instruction of a frame-by-frame caption (:func:`mapflow_utils.perception.frame_by_frame`).
CAPTION_FRAMES = "Where is each colour in each frame?"


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
    tower: str = ""  # smol-align: a perception-pretrained tower (run or shipped parts; relative: to the repository)
    train_vision: bool = True  # False: the tower stays frozen (a pretrained CLIP's role)
    tasks: tuple[str, ...] = ()  # video QA only on these tasks ("" = the five); captions stay on all five
    adapter_from: str = ""  # a parts folder whose LoRA a stage starts from when its init has none
    probe_task: str = ""  # also fit a last-token probe of this task's answer at each evaluation
    track_share: float = 0.0  # of video captions: frame-by-frame captions (where each colour is in each frame)
    eval_format: str = "letter"  # the held-out accuracy's answer format ("content": answer words)
    image_kinds: tuple[str, ...] = ()  # image QA only of these kinds (of IMAGE_KINDS; () = all)
    data_offset: int = 0  # step k trains on the stage's batch k + data_offset (a later run of a stage: new data)
    image_letter_share: float | None = None  # of image QA items: letter format (None: letter_share)


#: Per-stage defaults (LLaVA: stage 1 aligns the projector at a high rate; LoRA stages at lower ones).
STAGE_DEFAULTS: dict[str, dict] = {
    "smol-align": {"steps": 150, "batch_size": 16, "lr": 1e-3, "minutes": 30.0},
    "smol-mcq": {"steps": 200, "batch_size": 8, "lora_lr": 5e-4, "minutes": 30.0, "eval_every": 25, "eval_n": 60},
    "smol-imagellm": {"steps": 200, "batch_size": 8, "lr": 3e-4, "lora_lr": 1e-3, "minutes": 45.0,
                      "caption_share": 0.15, "letter_share": 0.85, "described_share": 0.5},
    "smol-videollm": {"steps": 320, "batch_size": 8, "lr": 3e-4, "lora_lr": 1e-3, "minutes": 100.0,
                      "letter_share": 0.5, "described_share": 0.5},
}

#: The pipeline (``tools/train_smol.sh``, issue 22's recipe, found by its pilots 9-14): run name -> (stage, the
#: stage's defaults changed). The tower is the committed perception-pretrained one (our CLIP) and stays frozen;
#: every LoRA stage first learns the answers as words (with dense "where" captions: the position of every square in
#: an image, every colour in every frame), then binds them to option letters. A words run with no letters at all
#: undoes the letter binding learnt before it (text letters 85% after the warm-up, 45% after the ImageLLM's words
#: run), so the Video-FT's words run keeps its image questions in letters. ``minutes`` only stops a run (rerun to
#: continue), so they are generous.
RECIPE: dict[str, tuple[str, dict]] = {
    "smol-align": ("smol-align", {"tower": paths.shown(paths.MODELS / "smol-tower")}),
    "smol-mcq": ("smol-mcq", {}),
    "smol-imagellm-words": ("smol-imagellm", {
        "steps": 600, "minutes": 300.0, "caption_share": 0.4, "letter_share": 0.0, "described_share": 0.0,
        "train_vision": False, "eval_format": "content", "eval_n": 120, "eval_every": 100}),
    "smol-imagellm": ("smol-imagellm", {
        "steps": 900, "minutes": 300.0, "caption_share": 0.3, "letter_share": 0.85, "described_share": 0.3,
        "train_vision": False, "warmup": 10, "eval_n": 120, "eval_every": 100}),
    "smol-videollm-words": ("smol-videollm", {
        "steps": 1000, "minutes": 600.0, "letter_share": 0.0, "image_letter_share": 0.85, "track_share": 0.5,
        "train_vision": False,
        "eval_format": "content", "eval_n": 100, "eval_every": 100}),
    "smol-videollm": ("smol-videollm", {
        "steps": 500, "minutes": 600.0, "letter_share": 0.7, "track_share": 0.5, "train_vision": False,
        "warmup": 10, "eval_n": 100, "eval_every": 100}),
}
#: Default run folders and the run each one starts from: the recipe's order.
PREVIOUS = dict(zip(list(RECIPE)[1:], list(RECIPE)[:-1]))


def recipe_config(run: str, seed: int) -> SmolStageConfig:
    """The :class:`SmolStageConfig` of one run of :data:`RECIPE`; a run of a stage that ran before starts on the
    stage's data where those runs stopped (``data_offset``), so it sees new images and clips."""
    stage, changes = RECIPE[run]
    before = list(RECIPE)[:list(RECIPE).index(run)]
    offset = sum(recipe_config(r, seed).steps for r in before if RECIPE[r][0] == stage)
    return SmolStageConfig(stage=stage, seed=seed, **{**STAGE_DEFAULTS[stage], "data_offset": offset, **changes})


class SmolBatches(Batches):
    """:class:`Batches` in the SmolLM2 prompt formats: letter (shuffled options, the letter as target) or content."""

    def _qa(self, rng: random.Random, question: str, candidates, answer: str, task: str = "",
            share: float | None = None):
        letter = rng.random() < (self.cfg.letter_share if share is None else share)
        p = build_prompt(self.proc, question, candidates, "letter" if letter else "content", task=task)
        i = list(candidates).index(answer)
        return p.text, p.answers[i]

    def _image_item(self, rng: random.Random, index: int, caption: bool):

        s = image_sample(self.cfg.seed, index, self.synth)
        if caption:
            return s.image[None], caption_prompt(self.proc, CAPTION_IMAGE), " " + s.caption
        kinds = [i for i, k in enumerate(IMAGE_KINDS) if not self.cfg.image_kinds or k in self.cfg.image_kinds]
        q, cands, a = s.qa[kinds[rng.randrange(len(kinds))]]
        if rng.random() < self.cfg.described_share:  # the facts in text too: letter binding learnable from text
            q = f"The image shows: {s.caption} {q}"
        return (s.image[None], *self._qa(rng, q, cands, a, share=self.cfg.image_letter_share))

    def _video_item(self, rng: random.Random, index: int, caption: bool):

        pool = PAPER_TASKS if caption or not self.cfg.tasks else self.cfg.tasks
        task = pool[rng.randrange(len(pool))]
        clip = generate_clip(task, self.cfg.seed, index, self.synth)
        idx = sample_indices(len(clip.frames), self.cfg.num_frames, self.synth.fps, clip.start, clip.end)
        if caption and rng.random() < self.cfg.track_share:

            frames = clip.frames[idx]
            return frames, caption_prompt(self.proc, CAPTION_FRAMES), " " + frame_by_frame(frames)
        if caption:
            return clip.frames[idx], caption_prompt(self.proc, CAPTION_VIDEO), " " + clip.caption
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
        tower = paths.ROOT / cfg.tower if cfg.tower else None
        model, processor = smol.new_model(seed=cfg.seed, vision_from=tower) if init is None else smol.load_parts(init)
        wrapped = None
    elif cfg.adapter_from and not _has_adapter(init):  # e.g. a new projector under an earlier stage's LoRA
        from peft import PeftModel

        model, processor = smol.load_parts(init)
        src = Path(cfg.adapter_from) / json.loads((Path(cfg.adapter_from) / smol.PARTS_FILE).read_text())["adapter"]
        wrapped = PeftModel.from_pretrained(model, src, is_trainable=True)
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
        groups += [{"params": lora, "lr": cfg.lora_lr}]
        if cfg.train_vision:
            groups += [{"params": list(inner.model.vision_tower.parameters()), "lr": cfg.vision_lr}]
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
    by = letter_accuracy_by(inner, processor, cfg.eval_n, video=cfg.stage == "smol-videollm", tasks=cfg.tasks or None,
                            answer_format=cfg.eval_format)
    rec = {f"{cfg.eval_format}_accuracy": round(sum(h for h, _ in by.values()) / cfg.eval_n, 4),
           "by": {g: round(h / k, 4) for g, (h, k) in by.items()}}
    if cfg.probe_task:

        rec["last_token_probe"] = last_token_probe(inner, processor, cfg.probe_task)
    return rec


def letter_accuracy(inner, processor, n: int, seed: int = 999, video: bool = True, tasks=None) -> float:
    """Held-out letter accuracy during training: ``n`` fresh questions (synthetic seed ``seed``, never the
    evaluation split's), five tasks (or ``tasks``) for the Video-FT, image QA otherwise."""
    by = letter_accuracy_by(inner, processor, n, seed, video, tasks)
    return round(sum(h for h, _ in by.values()) / n, 4)


def letter_accuracy_by(inner, processor, n: int, seed: int = 999, video: bool = True, tasks=None,
                       answer_format: str = "letter") -> dict[str, tuple[int, int]]:
    """``{task or image question kind: (correct, asked)}`` of :func:`letter_accuracy`'s questions (round robin over
    the tasks, or over the image kinds scene / color / position / count), in ``answer_format``."""

    was = inner.training
    inner.eval()
    ad = adapter_for(inner, processor)
    cfg, by = SynthConfig(), {}
    for i in range(n):
        if video:
            task = (tasks or PAPER_TASKS)[i % len(tasks or PAPER_TASKS)]
            c, frames, _ = clip_frames(task, seed, i, cfg)
            q, cands, a, group = c.question, c.candidates, c.answer, task
        else:
            s = image_sample(seed, i, cfg)
            q, cands, a = s.qa[i % len(s.qa)]
            frames, task, group = s.image[None], "", IMAGE_KINDS[i % len(s.qa)]
        hit = int(predict(ad, q, cands, answer_format, frames, task) == list(cands).index(a))
        h, k = by.get(group, (0, 0))
        by[group] = (h + hit, k + 1)
    inner.train(was)
    return by


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
        at = step + cfg.data_offset  # the stage's batch this step trains on
        batch = batches.batch(at)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * _lr_scale(step, cfg)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.autocast):
            loss = sparse_loss(inner, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(trainable.values()), 1.0)
        opt.step()
        running[batches.kind(at)].append(loss.item())
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


#: The :class:`SmolStageConfig` fields settable from the command line (``--lora-lr``), with their types.
OPTIONS: tuple[tuple[str, type], ...] = (
    ("steps", int), ("minutes", float), ("batch_size", int), ("lr", float), ("lora_lr", float), ("vision_lr", float),
    ("save_every", int), ("eval_every", int), ("eval_n", int), ("tower", str), ("adapter_from", str),
    ("probe_task", str), ("caption_share", float), ("image_share", float), ("letter_share", float), ("warmup", int),
    ("track_share", float), ("eval_format", str), ("described_share", float), ("data_offset", int),
    ("image_letter_share", float))


def command(config: dict, run: str, init: str | None = None) -> str:
    """The ``mapflow train`` command that makes a run with ``config`` (a saved :class:`SmolStageConfig`) in
    ``runs/train/<run>``: the recipe's run of that name (else the stage's), with a flag for every field that
    differs from it (a path that ends with the recipe's repo-relative one is the same: a run from another clone)."""
    seed = config["seed"]
    name = run.removesuffix(f"-s{seed}")
    name = name if name in RECIPE else config["stage"]
    base = asdict(recipe_config(name, seed))
    cmd = [f"mapflow train {name} --seed {seed}"]
    usual = default_init(name, seed)
    if init not in (None, "None") and (usual is None or Path(init).resolve() != usual.resolve()):
        cmd.append(f"--init {paths.shown(init)}")
    for k, _ in OPTIONS:
        v = config.get(k, base[k])
        if v == base[k] or (k == "tower" and base[k] and str(v).endswith(base[k])):
            continue
        cmd.append(f"--{k.replace('_', '-')} " + (f"{v:g}" if isinstance(v, float) else paths.shown(v) if k == "tower"
                                                  else str(v)))
    for k in ("tasks", "image_kinds"):
        if tuple(config.get(k) or ()) != tuple(base[k]):
            cmd.append(f"--{k.replace('_', '-')} {','.join(config[k])}")
    if config.get("train_vision") is False and base["train_vision"]:
        cmd.append("--freeze-vision")
    if run != f"{name}-s{seed}":
        cmd.append(f"--out runs/train/{run}")
    return " ".join(cmd)


def default_init(run: str, seed: int) -> Path | None:
    """The parts a run of :data:`RECIPE` starts from: the previous run's (None for the first)."""
    return default_out(PREVIOUS[run], seed) / "model" if run in PREVIOUS else None


def finished(run: str, seed: int) -> bool:
    """Whether a run of :data:`RECIPE` has trained all its steps and saved its parts."""
    out = default_out(run, seed)
    try:
        done = json.loads((out / "train.json").read_text())["steps_done"]
    except (OSError, ValueError, KeyError):
        return False
    return done >= recipe_config(run, seed).steps and (out / "model" / smol.PARTS_FILE).is_file()


def pipeline(seed: int, until: str | None = None, log=print) -> None:
    """Every run of :data:`RECIPE` in order (``until`` included), each from the previous one's parts; finished runs
    are skipped and an interrupted one resumes from its checkpoint, so rerunning continues where it stopped."""
    for run in RECIPE:
        out = default_out(run, seed)
        if finished(run, seed):
            log(f"{run}: finished, skipped ({out})")
        else:
            train_stage(recipe_config(run, seed), out, init=default_init(run, seed), log=log)
        if run == until:
            break


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="mapflow train (smol stages)")
    ap.add_argument("stage", choices=tuple(RECIPE) + ("smol-pipeline",),
                    help="a run of the recipe (train_smol.RECIPE), or smol-pipeline: all of them in order")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--until", default=None, choices=tuple(RECIPE), help="smol-pipeline: stop after this run")
    ap.add_argument("--out", default=None)
    ap.add_argument("--init", default=None, help="parts folder to start from (default: the previous run's)")
    for k, t in OPTIONS + (("threads", int),):
        ap.add_argument("--" + k.replace("_", "-"), type=t, default=None)
    ap.add_argument("--tasks", default=None, help="comma-separated video QA tasks (default: the five)")
    ap.add_argument("--image-kinds", default=None, help=f"comma-separated image QA kinds (of {', '.join(IMAGE_KINDS)})")
    ap.add_argument("--freeze-vision", action="store_true", help="keep the vision tower frozen")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads or 1)
    if args.stage == "smol-pipeline":
        changed = [k for k, _ in OPTIONS if getattr(args, k) is not None]
        changed += [k for k in ("out", "init", "tasks", "image_kinds") if getattr(args, k)]
        if changed or args.freeze_vision:
            ap.error(f"smol-pipeline runs the recipe as written; {changed or ['freeze_vision']} apply to one run: "
                     "train that run by its name instead")
        pipeline(args.seed, args.until)
        return 0
    cfg = recipe_config(args.stage, args.seed)
    for k, _ in OPTIONS:
        if getattr(args, k) is not None:
            setattr(cfg, k, getattr(args, k))
    if args.tasks:
        cfg.tasks = tuple(args.tasks.split(","))
    if args.image_kinds:
        cfg.image_kinds = tuple(args.image_kinds.split(","))
        bad = set(cfg.image_kinds) - set(IMAGE_KINDS)
        if bad:
            ap.error(f"--image-kinds: unknown {sorted(bad)}; choose from {', '.join(IMAGE_KINDS)}")
    if args.freeze_vision:
        cfg.train_vision = False
    out = Path(args.out) if args.out else default_out(args.stage, args.seed)
    train_stage(cfg, out, init=args.init or default_init(args.stage, args.seed))
    return 0
