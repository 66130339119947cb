"""Effective pathways (§3.5, App. E): the layer-range rule, the pathway mask, a seeded random-blocking control
with the same number of blocked edges, and edge counting.

Conventions: layers are 0-indexed here and shown 1-indexed by the chapters; a range ``(lo, hi)`` is inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import flows as F
from ..results import Ranges
from .specs import CROSS_FRAME, Block, KnockoutSpec, PairsSpec, UnionSpec
from ..spans import Spans

def _outside(rng: tuple[int, int] | None, n_layers: int) -> tuple[int, ...]:
    return tuple(l for l in range(n_layers) if rng is None or not rng[0] <= l <= rng[1])


def _after(rng: tuple[int, int] | None, n_layers: int) -> tuple[int, ...]:
    start = 0 if rng is None else rng[1] + 1
    return tuple(range(start, n_layers))


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
        KnockoutSpec((Block("video", "question"),), _outside(r.video_question, n_layers), f"{F.VIDEO_QUESTION} outside"),
        KnockoutSpec((Block("question", "last"),), _outside(r.question_last, n_layers), f"{F.QUESTION_LAST} outside"),
        KnockoutSpec((Block("video", "last"),), _outside(r.video_last, n_layers), f"{F.VIDEO_LAST} outside"),
        KnockoutSpec((Block("last", "last"),), tuple(range(n_layers)), f"{F.LAST_LAST} always"),
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
