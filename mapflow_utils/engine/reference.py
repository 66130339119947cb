"""The plain reference the knockout engine is checked against, and the paper's own mechanism.

A whole forward of the video LLM with eager attention and, per text layer, an explicit dense additive float mask
(causal, plus ``-inf`` on the blocked pairs when the layer is in the spec): no cache reuse, no batching, no boolean
mask merging. This is what the paper's code does (one full forward per flow × window position), so the benchmark
uses it as its baseline too.
"""

from __future__ import annotations

import contextlib

import torch


NAME = "mapflow_reference"
_MASKS: dict[int, torch.Tensor] = {}


def eager_masked_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention with this layer's dense additive mask; returns ``([B, q, H, D], weights [B, H, q, kv])``."""
    n_rep = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(n_rep, dim=1)
    v = value.repeat_interleave(n_rep, dim=1)
    scores = (query @ k.transpose(-1, -2)) * (scaling if scaling is not None else query.shape[-1] ** -0.5)
    scores = scores + _MASKS[module.layer_idx][..., -query.shape[2]:, : key.shape[2]]
    w = torch.softmax(scores.float(), dim=-1).nan_to_num(0.0).to(query.dtype)  # a fully blocked row gets nothing
    return (w @ v).transpose(1, 2).contiguous(), w


@contextlib.contextmanager
def masked(adapter, spans, spec):
    """Within the block, the model's text attention is :func:`eager_masked_attention` with ``spec``'s masks."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(NAME, eager_masked_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    L = spans.length
    dev = adapter.model.device
    causal = torch.full((L, L), float("-inf"), device=dev).triu(1)
    for layer in range(adapter.num_layers):
        _MASKS[layer] = causal.clone()[None, None]
    for pairs, layers in spec.parts(spans):  # any spec kind: KnockoutSpec, UnionSpec, PairsSpec
        for layer in layers:
            _MASKS[layer] = _MASKS[layer].masked_fill(pairs.to(dev)[None, None], float("-inf"))
    before = adapter.model.config.get_text_config()._attn_implementation
    adapter.model.set_attn_implementation({"text_config": NAME})
    try:
        yield
    finally:
        adapter.model.set_attn_implementation({"text_config": before})
        _MASKS.clear()


def logits(adapter, inputs, spans, spec, output_attentions: bool = False):
    """Last-position logits ``[vocab]`` of one full reference forward (and the per-layer attention weights)."""
    with masked(adapter, spans, spec), torch.no_grad():
        out = adapter.model(**inputs, output_attentions=output_attentions)
    last = out.logits[0, -1].float()
    return (last, out.attentions) if output_attentions else last
