"""Asking a model its questions: one question prepared for interventions (prompt, spans, answer tokens, clean
run), predictions, accuracy per task with the frame controls, and image-QA accuracy. Below training and the
experiments: both use it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from . import prompts as P
from .data import DataError, QASample
from .engine.attribution import recorded_run
from .engine.knockout import Clean, clean_run
from .spans import Spans, answer_token_ids, find_spans
from .synthetic import IMAGE_KINDS, image_sample


@dataclass
class Prepared:
    """One question ready for interventions: processor inputs, prompt, spans, answer tokens and the clean run."""

    sample: QASample
    prompt: P.Prompt
    inputs: dict
    spans: Spans
    answer_ids: list[int]
    clean: Clean

    @property
    def predicted(self) -> int:
        """Index of the candidate whose answer token the clean run ranks highest."""
        return int(self.clean.logits[self.answer_ids].argmax())

    @property
    def correct(self) -> bool:
        return self.predicted == self.sample.answer_index


def prepare(adapter, sample: QASample, answer_format: P.AnswerFormat = "letter", num_frames: int = 8,
            frames: np.ndarray | None = None, system_prompt: str | None = P.SYSTEM_PROMPT,
            graph: bool = False) -> Prepared:
    """Render the prompt, run the processor, locate spans and answer tokens, and do the clean run.

    ``frames`` overrides the decoded video (e.g. the single-frame controls). ``graph=True`` keeps the clean run's
    autograd graph from the video's first token on for one first-order estimate
    (:func:`mapflow_utils.engine.attribution.recorded_run`): the same numbers, the estimate's forward saved.
    """
    name = type(adapter.model).__name__
    prompt = P.build_prompt(adapter.processor, sample.question, sample.candidates, answer_format, task=sample.task,
                            system_prompt=system_prompt)
    video = sample.frames(num_frames) if frames is None else frames
    inputs = adapter.inputs(video, prompt.text)
    ids = inputs["input_ids"]
    spans = find_spans(prompt, ids, adapter.tokenizer, lambda v: adapter.frame_ranges(ids[0], v, len(video)),
                       sample.answer_index, model_name=name, system_prompt=system_prompt)
    answers = answer_token_ids(prompt, adapter.tokenizer, model_name=name)
    clean = recorded_run(adapter, inputs, spans.video.start) if graph else clean_run(adapter, inputs)
    return Prepared(sample, prompt, dict(inputs), spans, answers, clean)


def progress_bar(items, desc: str, on: bool):
    """``items`` wrapped in a tqdm progress bar when ``on`` (and progress is not switched off for the process by
    ``MAPFLOW_PROGRESS=0``, as :mod:`mapflow_utils.chapter` does in executed pages: a frozen bar, and rates that
    change on every run, would be all a reader sees of it)."""
    if not on or os.environ.get("MAPFLOW_PROGRESS") == "0":
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc)


class NoCorrectAnswers(RuntimeError):
    """An experiment on baseline-correct questions found none; the message names the parameter to raise."""


def guarded(sample: QASample, compute, skipped: list[str]):
    """``compute()`` for one question; a video that cannot be decoded (or lacks the record's start/end window or
    enough frames), or any other :class:`DataError` of the question, in the middle of a run is recorded in
    ``skipped`` (the file and the fix) and gives ``None`` instead of stopping the run (nothing computed is lost)."""
    try:
        return compute()
    except DataError as e:  # VideoError included
        skipped.append(f"{sample.task} #{sample.index}: {e}")
        return None


def report_skipped(skipped: list[str], what: str) -> None:
    """Warn once, at the end of a run, with every question left out because its video could not be decoded."""
    if skipped:
        warnings.warn(f"{what}: left out {len(skipped)} question(s) whose video cannot be used (undecodable, or "
                      "without the record's start/end window or enough frames); every other "
                      "result is kept. Fix or remove these files, or set the chapter's verify_videos parameter "
                      "(load_tvbench(..., verify_videos=True)) to leave them out up front:\n" + "\n".join(skipped),
                      stacklevel=3)


def require_correct(n_correct: int, n_seen: int, who: str, what: str) -> None:
    """Raise :class:`NoCorrectAnswers` when an experiment restricted to baseline-correct questions has none."""
    if n_seen and not n_correct:
        raise NoCorrectAnswers(
            f"{who} answered none of the {n_seen} questions correctly, and {what} uses baseline-correct questions "
            "only: there is nothing to measure. Raise the chapter's n_per_task (more questions), check "
            "answer_format (the model's own format: letter for real checkpoints), or use a trained model (random "
            "weights answer at chance).")


# ------------------------------------------------------------------------------------------- accuracy

#: Frame controls for :func:`accuracy`: which of the T sampled frames the model sees.
FRAME_MODES = ("all", "first", "last", "first_content", "last_content", "one_random", "shuffled")


def control_frames(frames: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """The frames a control shows, ``[T, H, W, 3]``: one frame repeated T times, or all frames shuffled.

    ``first``/``last`` are the first/last sampled frames (black for the synthetic clips, which fade in and out);
    ``first_content``/``last_content`` the first/last non-black ones; ``one_random`` a random non-black one.
    """
    t = len(frames)
    content = [i for i in range(t) if frames[i].max() > 0] or list(range(t))
    pick = {"first": 0, "last": t - 1, "first_content": content[0], "last_content": content[-1]}
    if mode == "all":
        return frames
    if mode in pick:
        return np.repeat(frames[pick[mode]][None], t, 0)
    if mode == "one_random":
        return np.repeat(frames[content[rng.integers(len(content))]][None], t, 0)
    if mode == "shuffled":
        return frames[rng.permutation(t)]
    raise ValueError(f"mode must be one of {FRAME_MODES}, got {mode!r}")


def predict(adapter, question: str, candidates, answer_format: P.AnswerFormat, frames: np.ndarray,
            task: str = "") -> int:
    """Index of the candidate whose answer's first token the model ranks highest after the prompt."""
    prompt = P.build_prompt(adapter.processor, question, candidates, answer_format, task=task)
    ids = answer_token_ids(prompt, adapter.tokenizer, type(adapter.model).__name__)
    with torch.no_grad():
        logits = adapter.model(**adapter.inputs(frames, prompt.text)).logits[0, -1]
    return int(logits[ids].argmax())


def accuracy(adapter, samples, answer_format: P.AnswerFormat = "content", mode: str = "all", num_frames: int = 8,
             seed: int = 0, progress: bool = False, hits: dict | None = None) -> dict[str, tuple[int, int]]:
    """Correct and total per task: ``{task: (correct, n)}`` for the frame control ``mode`` (see FRAME_MODES).

    ``hits``: if given, filled with ``{sample uid: 0 or 1}``.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {}
    skipped: list[str] = []
    for s in progress_bar(samples, f"accuracy ({mode})", progress):
        frames = guarded(s, lambda: s.frames(num_frames), skipped)
        if frames is None:
            continue
        frames = control_frames(frames, mode, rng)
        hit = predict(adapter, s.question, s.candidates, answer_format, frames, s.task) == s.answer_index
        if hits is not None:
            hits[s.uid] = int(hit)
        c = out.setdefault(s.task, [0, 0])
        c[0] += hit
        c[1] += 1
    report_skipped(skipped, "accuracy")
    return {k: (v[0], v[1]) for k, v in out.items()}


def image_accuracy(adapter, n: int = 200, seed: int = 999, progress: bool = False,
                   answer_format: P.AnswerFormat = "content") -> dict[str, tuple[int, int]]:
    """Image-QA accuracy on held-out synthetic images (one-frame videos), per question kind."""

    out = {k: [0, 0] for k in IMAGE_KINDS}
    for i in progress_bar(range(n), "image QA", progress):
        s = image_sample(seed, i)
        for kind, (q, cands, a) in zip(IMAGE_KINDS, s.qa):
            out[kind][0] += int(predict(adapter, q, cands, answer_format, s.image[None]) == cands.index(a))
            out[kind][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}
