"""Attention Knockout (Geva et al., 2023), exact and fast: one engine for every sweep in the book.

What is blocked is data (:mod:`mapflow_utils.engine.specs`: blocks, specs, blocked pairs); this module applies it. The one
public entry point for running a model under an intervention is :func:`applied` (a context manager that checks, on
exit, that every text layer ran through the knockout attention); :func:`clean_run`, :func:`run_specs` and
:func:`run_sweep` are built on the same plan.

How it is applied: one attention function, registered with transformers' ``AttentionInterface`` **and**
``AttentionMaskInterface`` under one name (without the mask registration the padding/causal masks silently become
None), set on the text model only. It merges the blocked pairs into the causal+padding mask the model built, handles
grouped-query attention (through transformers' own sdpa function), KV-cache offsets and a different spec per batch
row, and counts its calls per layer, so a forward in which it silently did not run is detected.

How it is made cheap (:func:`run_sweep`):

a. **prefix reuse** — positions before the first blocked query are identical to the clean run at every layer, so
   their keys/values come from the clean run's cache and only the suffix is recomputed (question→last: one token);
b. **batching** — many specs share one forward, one spec per batch row, grouped by :func:`plan_batches` (shared
   prefix and start layer, a budget of recomputed query tokens);
c. **layer start** — hidden states entering the first blocked layer equal the clean run's, so layers before it
   are skipped (only for decoders whose layers are all of one kind).

Each of these is checked against full recomputation and against a plain eager reference in ``tests/``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

from ..spans import Spans

ATTN_NAME = "mapflow_knockout"


# ------------------------------------------------------------------------------------ attention function


@dataclass
class _Plan:
    """What the attention function applies during one forward."""

    pairs: torch.Tensor | None  # bool [B, 1, Lq_total, Lk] for query positions q_start.., or None
    q_start: int  # absolute position of the first query row stored in ``pairs``
    active: dict[int, torch.Tensor]  # layer -> bool [B]: which rows apply their pairs at this layer
    more: list = field(default_factory=list)  # further (pairs, active) parts, OR-ed with the first
    calls: Counter = field(default_factory=Counter)
    capture: dict | None = None  # {"rows": LongTensor[Q], "layers": set, "out": {layer: Tensor}, "heads": bool}


_PLAN: contextvars.ContextVar[_Plan | None] = contextvars.ContextVar("mapflow_plan", default=None)


def _allowed(attention_mask, q_len: int, kv_len: int, device) -> torch.Tensor:
    """The model's own mask as boolean "may attend" ``[B or 1, 1, q, kv]`` (rebuilt causal when it is None)."""
    if attention_mask is None:
        q_pos = torch.arange(kv_len - q_len, kv_len, device=device)[:, None]
        return (torch.arange(kv_len, device=device)[None, :] <= q_pos)[None, None]
    if attention_mask.dtype == torch.bool:
        return attention_mask[..., :kv_len]
    return attention_mask[..., :kv_len] > torch.finfo(attention_mask.dtype).min / 2


def knockout_attention(module, query, key, value, attention_mask, **kwargs):
    """sdpa with the current plan's blocked pairs removed. query ``[B, H, q, D]``, key/value ``[B, H_kv, kv, D]``;
    returns ``([B, q, H, D], None)`` like transformers' sdpa function."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plan = _PLAN.get()
    layer = getattr(module, "layer_idx", None)
    if plan is not None:
        plan.calls[layer] += 1
    parts = [] if plan is None else [(p, a[layer]) for p, a in [(plan.pairs, plan.active)] + plan.more
                                      if layer in a]
    capture = plan is not None and plan.capture is not None and layer in plan.capture["layers"]
    q_len, kv_len = query.shape[2], key.shape[2]
    q0 = kv_len - q_len  # absolute position of the first query (no left padding inside the engine)
    if not parts:  # nothing blocked: the model's own path (the same numbers as without the engine), weights aside
        if capture:
            _capture(plan, layer, module, query, key, _allowed(attention_mask, q_len, kv_len, query.device), q0,
                     kwargs.get("scaling"))
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    allowed = _allowed(attention_mask, q_len, kv_len, query.device)
    lo = q0 - (plan.q_start if plan is not None else 0)
    for pairs, rows_active in parts:
        block = pairs[:, :, lo:lo + q_len, :kv_len] & rows_active.view(-1, 1, 1, 1)
        if block.device != query.device:  # layers split over devices (device_map): the plan lives on the first
            block = block.to(query.device, non_blocking=True)
        allowed = allowed & ~block
    if capture:
        _capture(plan, layer, module, query, key, allowed, q0, kwargs.get("scaling"))
    kwargs.pop("is_causal", None)
    out, _ = sdpa_attention_forward(module, query, key, value, allowed, is_causal=False, **kwargs)
    dead = ~allowed.any(-1)  # [B', 1, q]: a query with every key blocked receives nothing
    if dead.any():
        out = out.masked_fill(dead.expand(out.shape[0], 1, q_len).transpose(1, 2)[..., None], 0.0)
    return out, None


def _capture(plan, layer, module, query, key, allowed, q0, scaling) -> None:
    """Attention weights of the chosen absolute query rows, mean over heads ``[B, Q, kv]`` (per head ``[B, H, Q,
    kv]`` when the capture asks for ``"heads"``); no gradient flows through them."""
    query, key = query.detach(), key.detach()
    rows = plan.capture["rows"].to(query.device) - q0
    keep = (rows >= 0) & (rows < query.shape[2])
    if not keep.any():
        return
    rows = rows[keep]
    if len(rows) > 1 and bool((rows.diff() == 1).all()):  # a run of positions: a view, not a gather
        rows = slice(int(rows[0]), int(rows[-1]) + 1)
    n_rep = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(n_rep, dim=1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = (query[:, :, rows] @ k.transpose(-1, -2)).float() * scale  # [B, H, Q, kv]
    seen = allowed[:, :, rows]
    scores.masked_fill_(~seen, float("-inf"))
    w = torch.softmax(scores, dim=-1)
    if not bool(seen.any(-1).all()):  # a row with every key blocked: weights 0, not NaN
        w = w.nan_to_num(0.0)
    plan.capture["out"][layer] = w if plan.capture.get("heads") else w.mean(1)


_REGISTERED = False


def register() -> str:
    """Register the attention function and its mask function under :data:`ATTN_NAME` (idempotent)."""
    global _REGISTERED
    if not _REGISTERED:
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.masking_utils import sdpa_mask

        AttentionInterface.register(ATTN_NAME, knockout_attention)
        AttentionMaskInterface.register(ATTN_NAME, sdpa_mask)
        _REGISTERED = True
    return ATTN_NAME


def enable(model) -> None:
    """Route the text model's attention through :func:`knockout_attention` (the vision tower keeps its own)."""
    register()
    if getattr(model.config.get_text_config(), "_attn_implementation", None) == ATTN_NAME:
        return
    if hasattr(model.config, "text_config") and model.config.text_config is not model.config:
        model.set_attn_implementation({"text_config": ATTN_NAME})
    else:
        model.set_attn_implementation(ATTN_NAME)


def single_plan(spec, spans: Spans, length: int | None = None, capture: dict | None = None,
                device=None) -> _Plan:
    """The plan of one spec (any of KnockoutSpec, UnionSpec, PairsSpec, or None) for a batch-1 forward over the
    whole sequence, padded to ``length`` positions (generation appends tokens that nothing blocks)."""
    L = spans.length
    T = length or L
    parts = [] if spec is None else spec.parts(spans)
    stacked = []
    for pairs, layers in parts:
        full = torch.zeros(1, 1, T, T, dtype=torch.bool)
        full[0, 0, :L, :L] = pairs
        stacked.append((full.to(device), {l: torch.tensor([True], device=device) for l in layers}))
    if not stacked:
        return _Plan(None, 0, {}, capture=capture)
    return _Plan(stacked[0][0], 0, stacked[0][1], more=stacked[1:], capture=capture)


@contextlib.contextmanager
def _plan(plan: _Plan):
    token = _PLAN.set(plan)
    try:
        yield plan
    finally:
        _PLAN.reset(token)


@contextlib.contextmanager
def applied(adapter, spec, spans: Spans, *, length: int | None = None, capture: dict | None = None,
            calls: int | None = 1):
    """Run ``adapter``'s model under the knockout ``spec`` (None: no knockout) inside the ``with`` block.

    The one public way to intervene on a forward of your own (``generate``, attention maps): the blocked pairs of
    ``spec`` over ``spans`` (sequence length ``spans.length``, padded to ``length`` for generated tokens, which
    nothing blocks) are applied in the spec's layers of a batch-1 forward. ``capture`` (``{"rows": LongTensor[Q],
    "layers": set, "out": {}}``) collects the attention weights of those query rows (mean over heads) into
    ``capture["out"][layer]``. On leaving the block, every text layer must have run through the knockout attention
    ``calls`` times (``None``: the same number of times, at least once, as in generation that may stop early),
    otherwise a RuntimeError says the model bypassed it.
    """
    enable(adapter.model)
    device = next(adapter.language_model.parameters()).device
    with _plan(single_plan(spec, spans, length, capture, device=device)) as plan:
        yield
    _check_calls(plan, adapter.num_layers, calls)


# ------------------------------------------------------------------------------------------ clean run


class _Captured(Exception):
    pass


@dataclass
class Clean:
    """The clean (no knockout) run of one sample through the text decoder.

    Attributes:
        embeds: inputs_embeds ``[1, L, d]`` as the VLM passed them to its text model (video features merged).
        position_ids: as passed (``[1, L]``, or ``[k, 1, L]`` for mRoPE), or None.
        lm_kwargs: any other keyword arguments the VLM passed to its text model.
        keys, values: per layer ``[1, H_kv, L, D]`` from the clean run.
        layer_inputs: per layer, the hidden states entering it ``[1, L, d]``; ``layer_inputs[n_layers]`` is the
            last layer's output before the final norm.
        logits: last-position logits ``[vocab]``.
        graph: the run's autograd graph, kept for one backward, when it was recorded for the first-order estimate
            (:func:`mapflow_utils.engine.attribution.recorded_run`), else None.
    """

    embeds: torch.Tensor
    position_ids: torch.Tensor | None
    lm_kwargs: dict
    keys: list
    values: list
    layer_inputs: list
    logits: torch.Tensor
    graph: object | None = None

    @property
    def length(self) -> int:
        return self.embeds.shape[1]


_LM_KEYS = ("inputs_embeds", "position_ids", "attention_mask", "cache", "use_cache", "input_ids",
            "past_key_values", "output_hidden_states", "output_attentions", "return_dict")


def capture_lm_inputs(adapter, inputs) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """Run the VLM only up to its text model and return what it passes there: (embeds, position_ids, kwargs)."""
    got = {}

    def hook(_module, _args, kwargs):
        got.update(kwargs)
        raise _Captured

    h = adapter.language_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            adapter.model(**inputs, use_cache=False)
    except _Captured:
        pass
    finally:
        h.remove()
    if "inputs_embeds" not in got or got["inputs_embeds"] is None:
        raise RuntimeError(f"{type(adapter.model).__name__} did not call its text model with inputs_embeds")
    extra = {k: v for k, v in got.items() if k not in _LM_KEYS}
    return got["inputs_embeds"], got.get("position_ids"), extra


def _expand_pos(pos: torch.Tensor | None, start: int, batch: int, length: int, device) -> torch.Tensor:
    if pos is None:
        pos = torch.arange(length, device=device)[None]
    pos = pos[..., start:]
    return pos.expand(*pos.shape[:-2], batch, pos.shape[-1])


def clean_run(adapter, inputs, capture: dict | None = None, grad: bool = False):
    """The clean run of one processed sample (batch 1), through the same text-model path the knockouts use.

    ``capture`` (as for :func:`applied`) records attention weights on the way without changing the run's numbers;
    ``grad=True`` runs with autograd on and returns ``(clean, logits)`` with the last position's logits still in
    the graph (the :class:`Clean` itself holds detached tensors only), for
    :func:`mapflow_utils.engine.attribution.recorded_run`."""
    enable(adapter.model)
    embeds, pos, extra = capture_lm_inputs(adapter, inputs)
    layer_inputs: list = []
    record = lambda m, a, kw: layer_inputs.append((a[0] if a else kw["hidden_states"]).detach())  # noqa: E731
    modules = list(adapter.language_model.layers) + [adapter.final_norm]
    hooks = [m.register_forward_pre_hook(record, with_kwargs=True) for m in modules]
    try:
        with torch.set_grad_enabled(grad), _plan(_Plan(None, 0, {}, capture=capture)) as plan:
            out = adapter.language_model(inputs_embeds=embeds, position_ids=pos, use_cache=True, **extra)
            logits = adapter.lm_head(out.last_hidden_state[:, -1])[0].float()
    finally:
        for h in hooks:
            h.remove()
    _check_calls(plan, adapter.num_layers, 1)
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    keys = [cache.layers[i].keys.detach() for i in range(adapter.num_layers)]
    values = [cache.layers[i].values.detach() for i in range(adapter.num_layers)]
    clean = Clean(embeds, pos, extra, keys, values, layer_inputs, logits.detach())
    return (clean, logits) if grad else clean


def _check_calls(plan: _Plan, n_layers: int, expected: int | None, layers: Iterable[int] | None = None) -> None:
    """Every layer in ``layers`` ran the knockout attention ``expected`` times (None: equally often, at least once)."""
    layers = list(range(n_layers) if layers is None else layers)
    if expected is None:
        expected = max([plan.calls.get(l, 0) for l in layers] + [1])
    bad = {l: plan.calls.get(l, 0) for l in layers if plan.calls.get(l, 0) != expected}
    if bad:
        raise RuntimeError(f"the knockout attention ran {bad} times (layer: calls) instead of {expected} per layer: "
                           "the model is not using it. Call knockout.enable(model) and check that its text "
                           "attention honours config._attn_implementation.")


# ------------------------------------------------------------------------------------------------ sweep


def _first_query(pairs: torch.Tensor) -> int:
    rows = pairs.any(-1).nonzero()
    return int(rows[0, 0]) if len(rows) else pairs.shape[0]


def _uniform_layers(lm) -> bool:
    kinds = getattr(lm.config, "layer_types", None)
    return kinds is None or len(set(kinds)) <= 1


@torch.no_grad()
def run_specs(adapter, clean: Clean, spans: Spans, specs: Sequence, reuse_prefix: bool = True,
              layer_start: bool = True) -> torch.Tensor:
    """One forward for a batch of specs (one per row); returns last-position logits ``[len(specs), vocab]``."""
    enable(adapter.model)
    n, L, lm = len(specs), clean.length, adapter.language_model
    row_parts = [s.parts(spans) for s in specs]
    firsts = [_first_query(p) for parts in row_parts for p, _ in parts]
    p0 = min(firsts + [L - 1]) if reuse_prefix else 0
    starts = [layers[0] for parts in row_parts for _, layers in parts]
    l0 = min(starts) if (starts and layer_start and _uniform_layers(lm)) else 0
    dev = clean.embeds.device
    stacked = []
    for k in range(max([len(p) for p in row_parts] + [1])):
        pairs = torch.zeros(n, 1, L - p0, L, dtype=torch.bool)
        active = {}
        for i, parts in enumerate(row_parts):
            if k < len(parts):
                pairs[i, 0] = parts[k][0][p0:]
                for layer in parts[k][1]:
                    active.setdefault(layer, torch.zeros(n, dtype=torch.bool))[i] = True
        stacked.append((pairs.to(dev), {l: a.to(dev) for l, a in active.items()}))
    plan = _Plan(stacked[0][0], p0, stacked[0][1], more=stacked[1:])
    hidden, pos, cache, extra = suffix_inputs(adapter, clean, p0, l0, n)
    original = lm.layers
    try:
        if l0 > 0:
            lm.layers = torch.nn.ModuleList(list(original)[l0:])
        with _plan(plan):
            out = lm(inputs_embeds=hidden, position_ids=pos, cache=cache, use_cache=cache is not None, **extra)
    finally:
        lm.layers = original
    _check_calls(plan, adapter.num_layers, 1, layers=range(l0, adapter.num_layers))
    return adapter.lm_head(out.last_hidden_state[:, -1]).float()


def suffix_inputs(adapter, clean: Clean, p0: int, l0: int = 0, n: int = 1):
    """What the text model takes to recompute positions ``p0``.. from layer ``l0`` on, ``n`` rows at once, with the
    clean run's keys and values for the positions before ``p0``: ``(hidden [n, L-p0, d], position_ids, cache or
    None, other kwargs)``."""
    from transformers import DynamicCache

    L, dev = clean.length, clean.embeds.device
    cache = None
    if p0 > 0:
        cache = DynamicCache(config=adapter.language_model.config)
        for i in range(adapter.num_layers):
            # views, not copies: the cache concatenates them with the suffix's keys/values (one copy, not two)
            k = clean.keys[i][:, :, :p0].expand(n, -1, -1, -1)
            v = clean.values[i][:, :, :p0].expand(n, -1, -1, -1)
            cache.update(k, v, i)
    hidden = clean.layer_inputs[l0][:, p0:].expand(n, -1, -1)
    pos = _expand_pos(clean.position_ids, p0, n, L, dev)
    extra = {k: (v[..., p0:] if torch.is_tensor(v) and v.shape[-1] == L else v) for k, v in clean.lm_kwargs.items()}
    return hidden, pos, cache, extra


def plan_batches(firsts: Sequence[int], layers: Sequence[int], length: int, max_rows: int = 32,
                 max_tokens: int = 256, spread: int = 2) -> list[list[int]]:
    """Group specs (by index) into forwards, in order of where they start: a pure function of those starts.

    ``firsts[i]``: spec i's first blocked query position; ``layers[i]``: its first blocked layer; ``length``: tokens.
    A forward recomputes ``rows × (length − p0)`` tokens through ``n_layers − l0`` layers, where ``p0``/``l0`` are the
    minima over its rows, so a batch (in order of first query, then first layer) keeps one ``p0``, stays within
    ``spread`` layers of its first row's layer (a row recomputes every layer from ``l0``, though its states before
    its own first layer are the clean run's) and within ``max_tokens`` recomputed query tokens (a long suffix, like
    cross-frame's, gains nothing from more rows; one query token per row, like question→last, gains a lot, up to
    ``max_rows``).
    """
    order = sorted(range(len(firsts)), key=lambda i: (firsts[i], layers[i]))
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        if (cur is None or firsts[i] != firsts[cur[0]] or layers[i] - layers[cur[0]] > spread
                or len(cur) >= max_rows or (len(cur) + 1) * (length - firsts[i]) > max_tokens):
            batches.append([i])
        else:
            cur.append(i)
    return batches


def run_sweep(adapter, clean: Clean, spans: Spans, specs: Sequence, answer_ids: Sequence[int],
              batch_size: int = 32, reuse_prefix: bool = True, layer_start: bool = True,
              max_tokens: int = 256) -> torch.Tensor:
    """Probabilities of the answer tokens at the last position under each spec: ``[len(specs), len(answer_ids)]``.

    Softmax over the full vocabulary, as the paper's %change uses. Empty specs return the clean probabilities
    without a forward. Forwards are planned by :func:`plan_batches` (at most ``batch_size`` specs and ``max_tokens``
    recomputed query tokens each) so that batches share long prefixes and start layers.
    """
    enable(adapter.model)
    ids = torch.tensor(list(answer_ids))
    out = torch.empty(len(specs), len(ids))
    clean_p = torch.softmax(clean.logits, -1)[ids].cpu()
    todo = [i for i, s in enumerate(specs) if not s.empty]
    for i, s in enumerate(specs):
        if s.empty:
            out[i] = clean_p
    parts = {i: specs[i].parts(spans) for i in todo}
    firsts = [min(_first_query(p) for p, _ in parts[i]) if reuse_prefix else 0 for i in todo]
    starts = [min(layers[0] for _, layers in parts[i]) if layer_start else 0 for i in todo]
    for batch in plan_batches(firsts, starts, clean.length, batch_size, max_tokens):
        chunk = [todo[j] for j in batch]
        logits = run_specs(adapter, clean, spans, [specs[i] for i in chunk], reuse_prefix, layer_start)
        out[chunk] = torch.softmax(logits, -1)[:, ids].cpu()
    return out
