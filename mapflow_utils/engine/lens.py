"""Reading hidden states in vocabulary space: layerwise answer probability (§3.4, Fig. 8) and the logit lens over
video tokens (§3.3, Fig. 4). Two variants, always labelled:

* ``standard`` — the logit lens (nostalgebraist, 2020): the hidden state *after* layer l, through the model's
  final norm and ``lm_head``. After the last layer this is exactly the model's output.
* ``paper`` — the variant of the paper's code: the hidden state *entering* layer l (index 0 = the embeddings),
  projected onto the **input embedding** matrix without the final norm; the last point is the final-norm output
  projected the same way. It is the logit lens only for models whose input and output embeddings are tied.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from .knockout import Clean

Variant = Literal["standard", "paper"]
VARIANTS = ("standard", "paper")


def layer_states(adapter, clean: Clean, positions: Sequence[int] | torch.Tensor,
                 variant: Variant = "standard") -> torch.Tensor:
    """Logits ``[n_points, len(positions), vocab]`` of the chosen positions at every layer.

    ``standard``: n_points = n_layers (after layer 1 … after layer n). ``paper``: n_points = n_layers + 1
    (entering layer 1 … entering layer n, then the final-norm output).
    """
    pos = torch.as_tensor(positions, dtype=torch.long)
    hs = torch.stack([h[0, pos] for h in clean.layer_inputs])  # [n_layers + 1, P, d]: inputs…, last output
    with torch.no_grad():
        if variant == "standard":
            return adapter.lm_head(adapter.final_norm(hs[1:])).float()
        if variant == "paper":
            states = torch.cat([hs[:-1], adapter.final_norm(hs[-1:])])
            return (states @ adapter.input_embeddings.weight.T).float()
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def answer_probability(adapter, clean: Clean, answer_ids: Sequence[int], variant: Variant = "standard") -> torch.Tensor:
    """Probability (softmax over the whole vocabulary) of each answer token at the last position, per layer:
    ``[n_points, len(answer_ids)]`` (see :func:`layer_states` for n_points)."""
    logits = layer_states(adapter, clean, [clean.length - 1], variant)[:, 0]
    return torch.softmax(logits, -1)[:, list(answer_ids)]


def top_tokens(adapter, clean: Clean, positions: Sequence[int] | torch.Tensor, k: int = 1,
               variant: Variant = "standard") -> torch.Tensor:
    """Top-``k`` token ids of each position at each layer: ``[n_points, len(positions), k]`` (logit lens)."""
    return layer_states(adapter, clean, positions, variant).topk(k, dim=-1).indices


def last_position_top(adapter, clean: Clean, k: int = 8, variant: Variant = "standard"):
    """The lens at the last position: the ``k`` most probable tokens at every layer and their probabilities
    (softmax over the whole vocabulary): ``(ids [n_points, k], probs [n_points, k])``."""
    probs = torch.softmax(layer_states(adapter, clean, [clean.length - 1], variant)[:, 0], -1)
    top = probs.topk(k, dim=-1)
    return top.indices, top.values


def keyword_counts(top: torch.Tensor, keyword_ids: dict[str, int]) -> dict[str, torch.Tensor]:
    """How often each keyword's token is among the top tokens, per layer: ``{word: [n_points]}``.

    ``top``: ``[n_points, positions, k]`` from :func:`top_tokens` (stack samples along ``positions``).
    """
    return {w: (top == t).any(-1).sum(-1) for w, t in keyword_ids.items()}
