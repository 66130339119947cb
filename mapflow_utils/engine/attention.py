"""Attention maps of chosen query rows (e.g. the tokens of "begins" or "first") onto the video, per layer (§3.3,
Fig. 5), computed inside the knockout attention function for those rows only: no ``output_attentions``, no eager
attention, memory O(|Q|·L) per layer instead of O(H·L²).
"""

from __future__ import annotations

from typing import Sequence

import torch

from . import knockout as K
from ..spans import Spans


@torch.no_grad()
def attention_rows(adapter, clean: K.Clean, spans: Spans, rows: Sequence[int], layers: Sequence[int] | None = None,
                   spec=None) -> torch.Tensor:
    """Attention weights (mean over heads) of the query ``rows`` onto every key, per layer: ``[len(layers), Q, L]``.

    With ``spec`` the maps are taken under that knockout (e.g. cross-frame blocked), otherwise in the clean run.
    ``layers`` default: all text layers.
    """
    layers = list(range(adapter.num_layers)) if layers is None else list(layers)
    rows_t = torch.as_tensor(list(rows), dtype=torch.long)
    capture = {"rows": rows_t, "layers": set(layers), "out": {}}
    with K.applied(adapter, spec, spans, capture=capture):
        adapter.language_model(inputs_embeds=clean.embeds, position_ids=clean.position_ids, use_cache=False,
                               **clean.lm_kwargs)
    return torch.stack([capture["out"][l][0] for l in layers])


def video_maps(weights: torch.Tensor, spans: Spans) -> torch.Tensor:
    """Attention onto the video per frame unit (a frame, or a temporal group for models that merge frames):
    ``[layers, Q, units, h, w]`` when every unit has the same square number of tokens; otherwise each unit's total
    mass as a ``1 x 1`` grid (InternVL's and VideoLLaMA3's per-frame marker text gives units of unequal length, which
    have no common spatial layout)."""
    sizes = {len(fr) for fr in spans.frames}
    n = sizes.pop() if len(sizes) == 1 else 0
    side = int(round(n ** 0.5))
    if n and side * side == n:
        per_frame = torch.stack([weights[..., fr.start:fr.stop] for fr in spans.frames], dim=-2)
        return per_frame.reshape(*per_frame.shape[:-1], side, side)
    mass = torch.stack([weights[..., fr.start:fr.stop].sum(-1) for fr in spans.frames], dim=-1)
    return mass[..., None, None]
