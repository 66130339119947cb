"""Effective pathways (§3.5, App. E): the layer-range rule, the pathway mask, a seeded random-blocking control
with the same number of blocked edges, and edge counting.

Conventions: layers are 0-indexed here and shown 1-indexed by the chapters; a range ``(lo, hi)`` is inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .knockout import CROSS_FRAME, Block, KnockoutSpec, PairsSpec, UnionSpec
from .spans import Spans

#: The three flows whose layer ranges App. E selects, by the sweep names of :data:`experiments.FLOWS`.
RANGED = {"cross_frame": "cross-frame", "video_question": "video→question", "question_last": "question→last"}
#: ... plus video→last, for a model whose own route runs there ("own routes"; the paper blocks it everywhere).
RANGED_OWN = {**RANGED, "video_last": "video→last"}


def interval_size(n_layers: int, paper_interval: int = 5, paper_layers: int = 32) -> int:
    """The paper's 5-of-32-layer interval scaled to ``n_layers`` (at least 1)."""
    return max(1, round(paper_interval * n_layers / paper_layers))


def interval_means(curve: np.ndarray, size: int) -> list[tuple[int, int, float]]:
    """Mean of a per-layer curve over consecutive intervals: ``[(lo, hi, mean)]`` (0-indexed, inclusive)."""
    out = []
    for lo in range(0, len(curve), size):
        hi = min(len(curve), lo + size) - 1
        out.append((lo, hi, float(np.nanmean(curve[lo:hi + 1]))))
    return out


def layer_range(curve: np.ndarray, size: int, threshold: float = -5.0) -> tuple[int, int] | None:
    """App. E's rule: the span from the first to the last interval whose mean %change is below ``threshold``
    (``None`` when no interval is)."""
    kept = [(lo, hi) for lo, hi, m in interval_means(curve, size) if m < threshold]
    return (kept[0][0], kept[-1][1]) if kept else None


def _outside(rng: tuple[int, int] | None, n_layers: int) -> tuple[int, ...]:
    return tuple(l for l in range(n_layers) if rng is None or not rng[0] <= l <= rng[1])


def _after(rng: tuple[int, int] | None, n_layers: int) -> tuple[int, ...]:
    start = 0 if rng is None else rng[1] + 1
    return tuple(range(start, n_layers))


@dataclass(frozen=True)
class Ranges:
    """The effective layer ranges (0-indexed, inclusive; None: the flow matters in no interval)."""

    cross_frame: tuple[int, int] | None
    video_question: tuple[int, int] | None
    question_last: tuple[int, int] | None
    video_last: tuple[int, int] | None = None  # the paper's mask: None, blocked in every layer


def pathway_spec(r: Ranges, n_layers: int, leak: bool = True) -> UnionSpec:
    """The effective-pathway mask of App. E as one :class:`UnionSpec`.

    Cross-frame, video→question and question→last are allowed only inside their ranges; video→last (unless
    ``r.video_last`` gives it a range: the "own routes" variant) and last→last are blocked in every layer; flows
    among video tokens are blocked after the video→question range and among question tokens after the
    question→last range (the paper's code). ``leak=True`` (the paper's code) leaves the
    tokens after the question (instruction, template, prefill) free to read the video and the question, so
    information can reach the last position through them; ``leak=False`` blocks video→those tokens and
    question→those tokens in every layer.
    """
    parts = [
        KnockoutSpec((CROSS_FRAME,), _outside(r.cross_frame, n_layers), "cross-frame outside its range"),
        KnockoutSpec((Block("video", "question"),), _outside(r.video_question, n_layers), "video→question outside"),
        KnockoutSpec((Block("question", "last"),), _outside(r.question_last, n_layers), "question→last outside"),
        KnockoutSpec((Block("video", "last"),), _outside(r.video_last, n_layers), "video→last outside"),
        KnockoutSpec((Block("last", "last"),), tuple(range(n_layers)), "last→last always"),
        KnockoutSpec((Block("video", "video"),), _after(r.video_question, n_layers), "into video after"),
        KnockoutSpec((Block("question", "question"),), _after(r.question_last, n_layers), "into question after"),
    ]
    if not leak:
        parts.append(KnockoutSpec((Block("video", "after_question"), Block("question", "after_question")),
                                  tuple(range(n_layers)), "no leak through the instruction"))
    return UnionSpec(tuple(p for p in parts if not p.empty), "effective pathways")


def _causal(L: int) -> torch.Tensor:
    return torch.ones(L, L, dtype=torch.bool).tril()


def blocked_by_layer(spec, spans: Spans, n_layers: int) -> list[torch.Tensor]:
    """Per layer, the blocked valid (causal) pairs of any spec kind: bool ``[L, L]`` each."""
    L = spans.length
    out = [torch.zeros(L, L, dtype=torch.bool) for _ in range(n_layers)]
    for pairs, layers in spec.parts(spans):
        for l in layers:
            out[l] |= pairs
    causal = _causal(L)
    return [b & causal for b in out]


def edge_counts(spec, spans: Spans, n_layers: int) -> dict[str, tuple[int, int]]:
    """Edges kept and in total, two ways: ``paper`` — every valid (query, key) pair of the causal triangle,
    diagonal included, summed over layers (the paper's accounting); ``video_question`` — only pairs whose query and
    key are both video or question tokens."""
    L = spans.length
    vq = torch.zeros(L, dtype=torch.bool)
    vq[spans.indices("video")] = True
    vq[spans.indices("question")] = True
    causal = _causal(L)
    sub = causal & vq[:, None] & vq[None, :]
    kept_p = kept_s = 0
    for b in blocked_by_layer(spec, spans, n_layers):
        kept_p += int((causal & ~b).sum())
        kept_s += int((sub & ~b).sum())
    return {"paper": (kept_p, int(causal.sum()) * n_layers), "video_question": (kept_s, int(sub.sum()) * n_layers)}


def random_spec(spec, spans: Spans, n_layers: int, seed: int, diagonal: bool = False) -> PairsSpec:
    """Random blocking with, in every layer, as many blocked edges as ``spec`` blocks there, drawn uniformly (seeded)
    from the candidate set: valid pairs whose query and key both lie at or after the first video token (the
    paper's candidate set), the diagonal excluded unless ``diagonal``."""
    L = spans.length
    start = spans.video.start
    cand = _causal(L)
    cand[:start] = False
    cand[:, :start] = False
    if not diagonal:
        cand &= ~torch.eye(L, dtype=torch.bool)
    idx = cand.flatten().nonzero()[:, 0]
    g = torch.Generator().manual_seed(seed)
    pairs = {}
    for l, b in enumerate(blocked_by_layer(spec, spans, n_layers)):
        k = min(int(b.sum()), len(idx))
        if k == 0:
            continue
        chosen = idx[torch.randperm(len(idx), generator=g)[:k]]
        m = torch.zeros(L * L, dtype=torch.bool)
        m[chosen] = True
        pairs[l] = m.view(L, L)
    return PairsSpec(pairs, f"random (seed {seed})")


@dataclass(frozen=True)
class RandomControl:
    """A per-question random-blocking spec (its pairs depend on the question's spans): call it with the spans.
    Its repr is stable, so results computed with it are cached like any spec's."""

    spec: UnionSpec
    n_layers: int
    seed: int
    diagonal: bool = False

    def __call__(self, spans: Spans) -> PairsSpec:
        return random_spec(self.spec, spans, self.n_layers, self.seed, self.diagonal)


def ranges_from_sweep(sweep, size: int, task: str | None = "action_antonym", threshold: float = -5.0,
                      own_routes: bool = False) -> Ranges:
    """App. E's ranges from a sweep with the three ranged flows (pooled over ``task``'s questions, or all tasks when
    that task is absent); ``own_routes`` also gives video→last its range by the same rule (the sweep needs it)."""
    if task is not None and task not in set(sweep.tasks):
        task = None
    flows = RANGED_OWN if own_routes else RANGED
    rng = {k: layer_range(sweep.summary(flow, task)[0], size, threshold) for k, flow in flows.items()}
    return Ranges(**rng)


def table_e_rows(sweep, size: int, task: str | None = "action_antonym") -> list[list]:
    """Table E(b) rows (ours): interval means per ranged flow, with the 1-indexed interval labels as header row."""
    if task is not None and task not in set(sweep.tasks):
        task = None
    rows = []
    for key, flow in RANGED_OWN.items():
        if flow not in sweep.change:
            continue
        means = interval_means(sweep.summary(flow, task)[0], size)
        rows.append([flow] + [f"{m:.1f}" for _, _, m in means])
    header = [f"L{lo + 1}-{hi + 1}" if hi > lo else f"L{lo + 1}" for lo, hi, _ in
              interval_means(sweep.summary(RANGED["cross_frame"], task)[0], size)]
    return [header] + rows
