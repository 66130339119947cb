"""What attention knockout blocks, as data: pure functions of the token spans, no model forward.

A :class:`Block` says that the queries of one span may not attend to the keys of another (or, for
:data:`CROSS_FRAME`, that each frame's tokens may not attend to earlier frames); a :class:`KnockoutSpec` applies
blocks in a set of layers; :class:`UnionSpec` and :class:`PairsSpec` combine specs or give explicit pairs. Every
spec answers ``parts(spans) -> [(blocked pairs [L, L] (query, key), layers)]``, which is all the engine
(:mod:`mapflow_utils.engine.knockout`) needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

from .. import flows as F
from ..spans import Spans


@dataclass(frozen=True)
class Block:
    """Queries of span ``target`` may not attend to keys of span ``source`` (the paper's "source ↛ target").

    Span names are those of :meth:`Spans.indices`. With ``cross_frame=True`` (``source`` = ``target`` = video) each
    frame's tokens may not attend to the tokens of earlier frames.
    """

    source: str
    target: str
    cross_frame: bool = False

    def __str__(self) -> str:
        return F.CROSS_FRAME if self.cross_frame else f"{self.source}→{self.target}"


#: Each frame's tokens may not attend to earlier frames (the paper's cross-frame knockout).
CROSS_FRAME = Block("video", "video", cross_frame=True)


@dataclass(frozen=True)
class KnockoutSpec:
    """Blocks applied in ``layers`` (0-indexed text decoder layers)."""

    blocks: tuple[Block, ...]
    layers: tuple[int, ...]
    label: str = ""

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "layers", tuple(sorted(set(int(l) for l in self.layers))))

    @property
    def empty(self) -> bool:
        return not self.blocks or not self.layers

    def parts(self, spans: Spans) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        """``[(blocked pairs [L, L], layers)]``: what the engine applies (one part; empty when nothing is blocked)."""
        return [] if self.empty else [(blocked_pairs(self.blocks, spans), self.layers)]


@dataclass(frozen=True)
class UnionSpec:
    """Several specs at once, each in its own layers (e.g. the effective-pathway mask of §3.5)."""

    specs: tuple[KnockoutSpec, ...]
    label: str = ""

    @property
    def empty(self) -> bool:
        return all(s.empty for s in self.specs)

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted({l for s in self.specs for l in s.layers}))

    def parts(self, spans: Spans) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        return [p for s in self.specs for p in s.parts(spans)]


@dataclass(frozen=True, eq=False)
class PairsSpec:
    """Explicit blocked (query, key) pairs per layer: ``pairs[layer]`` is bool ``[L, L]`` (e.g. random blocking)."""

    pairs: dict
    label: str = ""

    @property
    def empty(self) -> bool:
        return not any(bool(p.any()) for p in self.pairs.values())

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted(l for l, p in self.pairs.items() if p.any()))

    def parts(self, spans: Spans) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        return [(p, (l,)) for l, p in sorted(self.pairs.items()) if p.any()]


def window(layer: int, k: int, n_layers: int) -> tuple[int, ...]:
    """The ``k`` layers centred on ``layer``, truncated at both ends (Geva et al.): for k = 9, layer-4 … layer+4."""
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} outside 0..{n_layers - 1}")
    return tuple(range(max(0, layer - k // 2), min(n_layers, layer + k - k // 2)))


def sweep_specs(blocks: Sequence[Block], k: int, n_layers: int, label: str = "") -> list[KnockoutSpec]:
    """One spec per layer: ``blocks`` in the window of size ``k`` centred on it."""
    return [KnockoutSpec(tuple(blocks), window(l, k, n_layers), f"{label}@{l}") for l in range(n_layers)]


def blocked_pairs(blocks: Iterable[Block], spans: Spans) -> torch.Tensor:
    """Boolean ``[L, L]`` (query, key): True where attention is blocked. Pure; causal structure not included."""
    L = spans.length
    out = torch.zeros(L, L, dtype=torch.bool)
    for b in blocks:
        if b.cross_frame:
            for i, fr in enumerate(spans.frames):
                for earlier in spans.frames[:i]:
                    out[fr.start:fr.stop, earlier.start:earlier.stop] = True
        else:
            q, k = spans.indices(b.target), spans.indices(b.source)
            if len(q) and len(k):
                out[q[:, None], k[None, :]] = True
    return out
