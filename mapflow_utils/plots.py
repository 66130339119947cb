"""Every figure of the book, in one style (``mapflow_utils/mapflow.mplstyle``)."""

from __future__ import annotations

import random
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

STYLE = "mapflow_utils.mapflow"


def use_style() -> None:
    """Apply the house style (every plotting function calls it)."""
    plt.style.use(STYLE)


def frame_strip(rows: Mapping[str, np.ndarray], titles: Mapping[str, str] | None = None,
                frame_labels: Sequence[str] | None = None, cell: float = 1.0):
    """One row of frames per entry of ``rows`` (label -> uint8 ``[T, H, W, 3]``), an optional line of text above
    each row (``titles``) and labels above the first row's frames. Returns the figure."""
    use_style()
    n_rows, n_cols = len(rows), max(len(f) for f in rows.values())
    gap = 0.45 if titles else 0.1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + 1.4, (cell + gap) * n_rows + 0.2),
                             squeeze=False, gridspec_kw={"hspace": gap / cell * 1.2, "wspace": 0.05})
    for r, (label, frames) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(frames):
                ax.imshow(frames[c])
            if frame_labels is not None and c < len(frame_labels):
                ax.set_xlabel(frame_labels[c], fontsize=7) if r == n_rows - 1 else None
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        if titles and label in titles:
            axes[r, 0].set_title(titles[label], loc="left", fontsize=7, fontweight="normal")
    return fig


def example_strip(samples_by_task, num_frames: int = 8, seed: int = 0):
    """One example per task (picked with ``seed``): its sampled frames under its question and answer.

    ``samples_by_task``: task -> list of :class:`~mapflow_utils.data.QASample` (``QADataset.by_task()``).
    Returns the figure.
    """
    rows, titles = {}, {}
    for task, items in samples_by_task.items():
        s = random.Random(f"{seed}/{task}").choice(items)
        label = task.replace("_", " ")
        rows[label] = s.frames(num_frames)
        titles[label] = f"{s.question}   options: {' / '.join(s.candidates)}   answer: {s.answer}"
    return frame_strip(rows, titles, frame_labels=[f"frame {i + 1}" for i in range(num_frames)])


def twin_strip(task: str, seed: int = 0, index: int = 0, num_frames: int = 8):
    """A synthetic clip and its twin with the opposite answer (the same frames played backwards). Returns the
    figure."""
    from .data import sample_indices
    from .synthetic import generate_clip

    rows, titles = {}, {}
    for rev in (False, True):
        clip = generate_clip(task, seed, index, reverse=rev)
        idx = sample_indices(len(clip.frames), num_frames, 8, clip.start, clip.end)
        label = f"answer: {clip.answer}"
        rows[label] = clip.frames[idx]
        titles[label] = clip.caption
    return frame_strip(rows, titles, frame_labels=[f"frame {i + 1}" for i in range(num_frames)])


def loss_curves(logs: Mapping[str, Sequence[dict]], title: str = "training loss"):
    """Loss against step for each run (``name -> records of log.jsonl``), one line per loss kind."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.5, 3))
    for name, recs in logs.items():
        kinds = sorted({k for r in recs for k in r if k.startswith("loss_")})
        for kind in kinds:
            pts = [(r["step"], r[kind]) for r in recs if kind in r]
            ax.plot(*zip(*pts), label=f"{name}: {kind[5:]} batches")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (answer/caption tokens)")
    ax.set_title(title)
    ax.legend()
    return fig


def sweep_lines(curves: Mapping[str, tuple], title: str, ylabel: str = "% change of answer probability",
                ax=None):
    """Mean %change per layer with a 95% band: ``curves[label] = (mean, lo, hi, N)``; layers shown 1-indexed."""
    use_style()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3))
    else:
        fig = ax.figure
    for label, (mean, lo, hi, n) in curves.items():
        x = np.arange(1, len(mean) + 1)
        (line,) = ax.plot(x, mean, marker="o", ms=3, label=f"{label} (N={n})")
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("layer (window centre)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return fig
