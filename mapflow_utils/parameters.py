"""The parameters the chapters share, defined once: name, type, default and what it means.

A chapter's parameters cell (the cell tagged ``parameters`` in its MyST source, which papermill overrides) must write
each shared parameter it takes exactly as :func:`line` renders it for that chapter (``tests/test_chapters.py`` checks
every chapter); a chapter whose questions differ on purpose (the data page loads more, App. C answers open-ended)
declares its own default here, in ``defaults``, never only in its cell. :func:`of` picks a chapter's shared
parameters from its namespace for ``chapter.setup(**parameters.of(globals()))``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from .data import PAPER_TASKS


@dataclass(frozen=True)
class Parameter:
    """One shared parameter. ``defaults[chapter] = (value, help)`` where a chapter takes another default."""

    name: str
    type: str
    default: Any
    help: str
    defaults: Mapping[str, tuple[Any, str]] = field(default_factory=dict)

    def default_for(self, chapter: str) -> Any:
        return self.defaults.get(chapter, (self.default, self.help))[0]

    def line(self, chapter: str) -> str:
        """The parameters-cell line of this parameter in ``chapter``: ``name: type = default  # help``."""
        value, text = self.defaults.get(chapter, (self.default, self.help))
        shown = "None" if value is None else json.dumps(value, ensure_ascii=False) if not isinstance(value, bool) \
            else str(value)
        return f"{self.name}: {self.type} = {shown}  # {text}"


SHARED: tuple[Parameter, ...] = (
    Parameter("video_model", "str", None,
              "Video-FT model folder or hub id (None: the book's subject, data/models/smol-videollm-ft)"),
    Parameter("image_model", "str", None, "its ImageLLM base (None: data/models/smol-imagellm)"),
    Parameter("data_dir", "str", None, "TVBench-format folder (None: the shipped held-out synthetic split)"),
    Parameter("tasks", "list", list(PAPER_TASKS), "tasks", {
        "appc_open": (["action_antonym", "moving_direction", "object_count"], "tasks (the paper picks these three)"),
        "your_model": (["action_antonym", "moving_direction"], "tasks of each run")}),
    Parameter("n_per_task", "int", 20, "questions per task (a seeded subset; the sweeps use the baseline-correct ones)", {
        "data": (100, "questions loaded per task, a seeded subset (None: all records)"),
        "models": (10, "questions per task for the live checks and the first look at the mechanism"),
        "your_model": (6, "questions per task of each run")}),
    Parameter("answer_format", "str", None,
              "letter (the paper's) or content (None: the Video-FT's own: letter for SmolLM2 and real checkpoints, "
              "content for the tiny)", {
                  "appc_open": ("open", "open: sentence completion without options (App. C)")}),
    Parameter("window", "int", None,
              "knockout window in layers (None: the paper's 9 of 32, scaled to the model's depth)"),
    Parameter("seed", "int", 0, "seed of the question subset"),
    Parameter("device", "str", "cpu", "cpu or cuda"),
    Parameter("dtype", "str", None, "model dtype (None: float32 on CPU, bfloat16 on a GPU)"),
    Parameter("device_map", "str", None,
              'e.g. "auto": spread a large model over the GPUs (needs accelerate; overrides device)'),
    Parameter("batch_size", "int", 32,
              "at most this many knockout specs per forward (grouped by shared prefix and start layer)"),
    Parameter("results_dir", "str", None,
              "result cache (None: runs/cache); reruns are instant, interrupted runs resume"),
    Parameter("verify_videos", "bool", False,
              "decode every video once first and leave out (and list) those that fail"),
    Parameter("shard", "str", None,
              '"i/n" or "slurm": only this share of the questions, into the shared results_dir (see README)'),
    Parameter("claims_file", "str", None,
              "set by the runner: where this chapter's claims are written as JSON (None: not written)"),
    Parameter("leak", "bool", True,
              "may instruction/template tokens after the question read the video and question (paper: yes)"),
    Parameter("n_random", "int", 5, "seeded random-blocking draws"),
)

BY_NAME: dict[str, Parameter] = {p.name: p for p in SHARED}


def of(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The shared parameters a chapter's namespace (its ``globals()``) holds, by name."""
    return {name: namespace[name] for name in BY_NAME if name in namespace}
