"""The experiments the chapters call: preparing a sample, sweeps, and their aggregation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import prompts as P
from .data import QASample
from .knockout import Clean, clean_run
from .spans import Spans, answer_token_ids, find_spans


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
            frames: np.ndarray | None = None, system_prompt: str | None = P.SYSTEM_PROMPT) -> Prepared:
    """Render the prompt, run the processor, locate spans and answer tokens, and do the clean run.

    ``frames`` overrides the decoded video (e.g. the single-frame controls).
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
    return Prepared(sample, prompt, dict(inputs), spans, answers, clean_run(adapter, inputs))
