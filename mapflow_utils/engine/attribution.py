"""Attribution patching for attention knockout: an estimate of every knockout from one forward and one backward.

The exact engine (:mod:`mapflow_utils.engine.knockout`) pays one (partial) forward per knockout. This module estimates all
of them at once, after Nanda (2023), Syed et al. (2023) and Kramár et al. (2024, AtP*), through the same spans and
specs (:mod:`mapflow_utils.engine.specs`): :func:`attribute` runs the clean forward with gradients, keeps each layer's
attention probabilities ``A[l]`` ``[H, L, L]`` and the gradient ``G[l]`` of the answer's log-probability with
respect to that layer's attention output (the input of ``o_proj``, ``[L, H, D]``), and stores
``E[l] = A[l] ⊙ (G[l] · V[l]ᵀ)`` ``[H, L, L]``: how much each (query, key) edge contributes to the answer through its
value, to first order.

What is exact and what is approximated, for blocking a set of keys ``K(q)`` of query ``q`` in layer ``l``:

* **exact within the layer** — the blocked query's attention is renormalised over its surviving keys, as the
  engine's pre-softmax mask does: with ``s = Σ_{k∈K(q)} a_qk`` its output moves by
  ``Δo_q = (s·o_q − Σ_{k∈K(q)} a_qk v_k) / (1 − s)`` (``−o_q`` when every key is blocked, as the engine zeroes such
  rows). This is AtP*'s fix for saturated softmax: a key holding 90% of the attention changes the output tenfold
  more than a linearisation of the softmax says.
* **linear downstream** — the effect of ``Δo`` on the answer's log-probability is ``Σ_h G_qh · Δo_qh``: everything
  after the layer's attention (``o_proj``, the residual stream, later layers, the final norm, ``lm_head``, the
  softmax) is linearised around the clean run. Large effects, effects that need two blocked routes at once, and
  later layers reacting to earlier changes are where this fails.
* **a window is a sum** — a spec over several layers (the paper's 9-layer windows) is estimated as the sum of its
  layers' estimates (and a :class:`~mapflow_utils.engine.specs.UnionSpec` as the sum of its parts): interactions between
  layers are ignored.

The metric is the chapters': %change of the answer's probability, ``100·(exp(Δ log p) − 1)`` (bounded below by −100
like the exact value; to first order the same as ``100·Δp/p``). One backward per answer token: the correct option's,
as the chapters measure baseline-correct questions.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from . import knockout as K
from ..results import pct
from ..spans import Spans
from .specs import KnockoutSpec, blocked_pairs


#: Version of the estimate's arithmetic: part of the key of every cached estimate (bump it when a change here changes
#: the numbers). 3: the recorded run's backward leaves out the positions before the first query (the same estimate
#: to ~3e-7 relative, a different order of float sums).
VERSION = 3


class AttributionError(ValueError):
    """A model or spec the estimator cannot estimate; the message names what and the fix."""


def _o_proj(layer, i: int, model_name: str):
    attn = getattr(layer, "self_attn", None)
    proj = getattr(attn, "o_proj", None)
    if proj is None:
        raise AttributionError(f"{model_name}: text layer {i} has no self_attn.o_proj, the attention output "
                               "projection whose input the estimator differentiates. Use the exact engine "
                               "(knockout.run_sweep) for this model.")
    return proj


def _check_model(adapter) -> None:
    cfg = adapter.model.config.get_text_config()
    name = type(adapter.model).__name__
    for key in ("attn_logit_softcapping", "sinks"):
        if getattr(cfg, key, None):
            raise AttributionError(f"{name}: its attention uses {key}, so its output is not the softmax of the "
                                   "scores times the values that the estimator renormalises. Use the exact engine "
                                   "(knockout.run_sweep) for this model.")


@dataclass
class Attribution:
    """One question's clean run, kept for estimates: per layer ``probs[l]`` = A and ``effect[l]`` = E, each
    ``[H, L - first_query, L]`` (see the module docstring), the answer token and the metric's clean value (its log-probability
    unless :func:`attribute` was given another metric)."""

    probs: torch.Tensor  # [n_layers, H, L - first_query, L]
    effect: torch.Tensor
    answer_id: int
    logp: float
    spans: Spans
    first_query: int = 0  # probs/effect rows are the query positions first_query..L-1

    @property
    def n_layers(self) -> int:
        return len(self.probs)

    def layer_delta(self, pairs: torch.Tensor, layer: int) -> float:
        """First-order Δ log p of blocking ``pairs`` (bool ``[L, L]``, (query, key)) in ``layer`` alone."""
        return float(self.layer_deltas(pairs, [layer])[0])

    def _layers(self, layers: Sequence[int]) -> list[int]:
        bad = [l for l in layers if not 0 <= l < self.n_layers]
        if bad:
            raise AttributionError(f"layer {bad[0]} outside 0..{self.n_layers - 1}")
        return list(layers)

    def layer_deltas(self, pairs: torch.Tensor, layers: Sequence[int] | None = None) -> np.ndarray:
        """:meth:`layer_delta` of ``pairs`` in each of ``layers`` (default: every layer), ``[len(layers)]``."""
        layers = list(range(self.n_layers)) if layers is None else self._layers(layers)
        rows = pairs.any(-1).nonzero().flatten()
        if not len(rows):
            return np.zeros(len(layers))
        if int(rows[0]) < self.first_query:
            raise AttributionError(f"the knockout blocks queries at position {int(rows[0])}, before the first "
                                   f"position attributed ({self.first_query}): call attribute(..., "
                                   f"first_query={int(rows[0])}) or lower")
        m = pairs[rows].to(self.probs.dtype)  # [R, L]
        pick = rows - self.first_query
        if bool((pick.diff() == 1).all()):  # a run of query positions (most flows): a view, not a copy
            pick = slice(int(pick[0]), int(pick[-1]) + 1)
        a, e = self.probs[:, :, pick], self.effect[:, :, pick]  # [n_layers, H, R, L]
        if layers != list(range(self.n_layers)):
            a, e = a[layers], e[layers]
        # sums in float64: 1 - s must keep its digits when the blocked keys hold nearly all the attention
        s, eb, g0 = (torch.einsum("nhrl,rl->nhr", a, m).double(), torch.einsum("nhrl,rl->nhr", e, m).double(),
                     e.sum(-1, dtype=torch.float64))  # [n, H, R]
        return _renormalised(s, eb, g0).sum((1, 2)).numpy()

    def delta(self, spec) -> float:
        """First-order Δ log p of ``spec`` (any spec of :mod:`mapflow_utils.engine.specs`): the sum over its parts and
        layers of :meth:`layer_delta`."""
        return float(sum(self.layer_deltas(pairs, layers).sum() for pairs, layers in spec.parts(self.spans)))

    def pct_change(self, spec) -> float:
        """Estimated %change of the answer's probability under ``spec``: ``100·(exp(Δ log p) − 1)``."""
        return pct(self.delta(spec))

    def sweep(self, specs: Sequence) -> np.ndarray:
        """Estimated %change per spec ``[len(specs)]``; each (pairs, layer) is computed once and shared by the
        windows that contain it."""
        memo: dict = {}
        out = []
        for spec in specs:
            if not isinstance(spec, KnockoutSpec):
                out.append(self.pct_change(spec))
                continue
            if spec.empty:
                out.append(0.0)
                continue
            if spec.blocks not in memo:  # every layer of these blocks at once
                memo[spec.blocks] = self.layer_deltas(blocked_pairs(spec.blocks, self.spans))
            out.append(pct(float(memo[spec.blocks][self._layers(spec.layers)].sum())))
        return np.array(out)

    def block_map(self, blocks: Sequence[tuple[str, Sequence[int]]]) -> np.ndarray:
        """Δ log p of blocking each (query block, key block) pair in each layer alone: ``[n_layers, n, n]`` (query
        block i, key block j). ``blocks``: ``[(name, token indices)]``, e.g. :func:`map_blocks`. Keys of one query
        renormalise together, so cells do not add over key blocks: a union of key blocks is its own spec. Query
        blocks before ``first_query`` (the system prompt by default) are NaN: not attributed."""
        n, L, p0 = len(blocks), self.spans.length, self.first_query
        onehot = torch.zeros(L, n, dtype=torch.float64)
        for j, (_, idx) in enumerate(blocks):
            onehot[torch.as_tensor(list(idx), dtype=torch.long), j] = 1.0
        out = np.full((self.n_layers, n, n), np.nan)  # rows before first_query: not attributed
        seen = onehot[:p0].sum(0) == 0  # query blocks wholly at or after first_query
        for l in range(self.n_layers):
            a, e = self.probs[l].double(), self.effect[l].double()
            s, eb = a @ onehot, e @ onehot  # [H, L - p0, n]
            d = _renormalised(s, eb, e.sum(-1, keepdim=True)).sum(0)  # [L - p0, n]: per query token and key block
            out[l, seen.numpy()] = (onehot[p0:].T @ d).numpy()[seen.numpy()]
        return out


def _renormalised(s: torch.Tensor, eb: torch.Tensor, g0: torch.Tensor) -> torch.Tensor:
    """``G·Δo`` per head and query: ``(s·g0 − eb)/(1 − s)`` with the blocked mass ``s``, the blocked keys'
    contribution ``eb = Σ_K a_qk G·v_k`` and the whole output's ``g0 = G·o_q``; ``−g0`` where every key is blocked."""
    full = s >= 1.0 - 1e-9
    return torch.where(full, -g0.expand_as(s), (s * g0 - eb) / torch.where(full, torch.ones_like(s), 1.0 - s))


@dataclass
class Graph:
    """A clean run's autograd graph, kept for one backward (:func:`recorded_run`): per layer the attention output
    entering ``o_proj`` (``outputs[l]`` ``[1, L, H·D]``, in the graph) and the attention probabilities of the query
    rows from ``first_query`` on (``heads[l]`` ``[H, L - first_query, L]``, detached), and the last position's
    logits ``[vocab]`` (in the graph)."""

    outputs: list
    heads: list
    logits: torch.Tensor
    first_query: int


@contextlib.contextmanager
def _attention_outputs(adapter, outs: dict, leaf: bool = False):
    """Keep each text layer's attention output (the input of ``o_proj``) in ``outs[layer]`` during a forward;
    ``leaf``: make layer 0's a leaf that requires grad when nothing before it does (frozen weights), so that the
    graph starts there and no backward runs through layer 0's attention or the embeddings."""
    name = type(adapter.model).__name__
    projs = [_o_proj(layer, i, name) for i, layer in enumerate(adapter.language_model.layers)]

    def keeper(i):
        def hook(_module, args):
            if leaf and i == 0 and not args[0].requires_grad:
                args[0].requires_grad_(True)
            outs[i] = args[0]
        return hook

    hooks = [p.register_forward_pre_hook(keeper(i)) for i, p in enumerate(projs)]
    try:
        yield outs
    finally:
        for h in hooks:
            h.remove()


class _LinearFrom(torch.autograd.Function):
    """``F.linear`` on ``x [1, L, in]`` whose backward gives ``x`` a gradient on the positions from ``first`` on only
    (zeros before): the forward is the same call, so the same numbers. The weights get no gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, first: int):
        ctx.save_for_backward(weight)
        ctx.first = first
        return torch.nn.functional.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):  # [1, L, out] -> [1, L, in]
        (weight,) = ctx.saved_tensors
        out = grad.new_zeros(*grad.shape[:-1], weight.shape[1])
        torch.matmul(grad[:, ctx.first:], weight, out=out[:, ctx.first:])
        return out, None, None, None


#: The text layers' projections whose inputs are the positions in order (``[1, L, in]``): attention and dense MLP.
#: Not a mixture of experts' (their inputs are tokens gathered per expert).
_POSITIONWISE = re.compile(r"(self_attn|mlp)\.\w+")


@contextlib.contextmanager
def _gradient_from(adapter, first: int, length: int):
    """The text layers' position-wise projections (plain ``nn.Linear``, see :data:`_POSITIONWISE`) back-propagate
    to their inputs' positions ``first..length-1`` only.

    Exact for the estimate: a position influences only itself and later positions (causal attention), so the
    gradient of the answer with respect to an activation at a position ``≥ first`` never passes through an earlier
    position. It leaves the rows before ``first`` (the system prompt) out of the backward's matrix products, the
    bulk of its cost."""
    linears = [m for layer in adapter.language_model.layers for name, m in layer.named_modules()
               if type(m) is torch.nn.Linear and _POSITIONWISE.fullmatch(name)
               and "forward" not in vars(m)]  # a forward already wrapped (accelerate's device hooks) stays as it is

    def forward(m):
        def run(x):
            if x.dim() != 3 or x.shape[0] != 1 or x.shape[1] != length:  # not one row per position: the plain call
                return torch.nn.functional.linear(x, m.weight, m.bias)
            return _LinearFrom.apply(x, m.weight.detach(), None if m.bias is None else m.bias.detach(), first)
        return run

    for m in linears:
        m.forward = forward(m)
    try:
        yield
    finally:
        for m in linears:
            del m.forward


def recorded_run(adapter, inputs, first_query: int) -> K.Clean:
    """:func:`~mapflow_utils.engine.knockout.clean_run` with its graph kept (``clean.graph``, a :class:`Graph`) for
    one :func:`attribute`, which then only runs the backward: the clean run every experiment makes anyway doubles as
    the estimate's forward. The run's numbers are the plain clean run's (the attention weights are recorded beside
    it, not through it); its graph holds the activations of every layer (about 8 MB per layer and 250 tokens for a
    576-wide model) until :func:`attribute` uses it. Its backward runs through the positions from ``first_query``
    on only (:func:`_gradient_from`): the estimate needs no gradient before them."""
    _check_model(adapter)
    outs: dict[int, torch.Tensor] = {}
    capture = {"rows": torch.arange(first_query, _length(inputs)), "layers": set(range(adapter.num_layers)),
               "out": {}, "heads": True}
    with _attention_outputs(adapter, outs, leaf=True), _gradient_from(adapter, int(first_query), _length(inputs)):
        clean, logits = K.clean_run(adapter, inputs, capture=capture, grad=True)
    clean.graph = Graph([outs[i] for i in range(adapter.num_layers)],
                        [capture["out"][i][0] for i in range(adapter.num_layers)], logits, int(first_query))
    return clean


def _length(inputs) -> int:
    return int(inputs["input_ids"].shape[-1])


def attribute(adapter, clean: K.Clean, spans: Spans, answer_id: int, metric=None,
              first_query: int | None = None) -> Attribution:
    """One forward with gradients and one backward of ``log p(answer_id)`` at the last position: the
    :class:`Attribution` from which every knockout of this question is estimated.

    The forward runs through the knockout attention (no knockout), which records each layer's per-head attention
    probabilities; the gradients are taken with respect to each layer's attention output only (no weight
    gradients). Only positions from ``first_query`` on are recomputed (default: the video's first token, before
    which no flow of the book blocks a query; the earlier positions' keys and values come from the clean run, as in
    the exact engine's prefix reuse), so estimates of knockouts whose queries lie before it are refused. Memory: two
    ``[H, L - first_query, L]`` float tensors per layer.

    A clean run recorded with its graph (:func:`recorded_run`, ``prepare(..., graph=True)``) saves the forward: the
    first call then runs only the backward (the same numbers to float precision: tested) and releases the graph.

    ``metric(logits [vocab]) -> scalar`` replaces ``log p`` (e.g. the answer's logit, for tests where everything
    after a layer is linear); :meth:`Attribution.pct_change` reads the estimate as a change of ``log p`` either way.
    """
    _check_model(adapter)
    L = clean.length
    p0 = spans.video.start if first_query is None else int(first_query)
    if not 0 <= p0 < L:
        raise AttributionError(f"first_query {p0} outside 0..{L - 1}")
    graph = clean.graph
    if isinstance(graph, Graph) and graph.first_query <= p0:
        clean.graph = None  # one backward per recorded run: the graph is freed by it
        with torch.enable_grad():
            value = _metric(graph.logits, answer_id, metric)
            grads = [g[0, p0:] for g in torch.autograd.grad(value, graph.outputs)]
        heads = [h[:, p0 - graph.first_query:] for h in graph.heads]
    else:
        outs: dict[int, torch.Tensor] = {}
        capture = {"rows": torch.arange(p0, L), "layers": set(range(adapter.num_layers)), "out": {}, "heads": True}
        hidden, pos, cache, extra = K.suffix_inputs(adapter, clean, p0)
        with torch.enable_grad(), _attention_outputs(adapter, outs), K.applied(adapter, None, spans, capture=capture):
            out = adapter.language_model(inputs_embeds=hidden.detach().requires_grad_(True), position_ids=pos,
                                         cache=cache, use_cache=cache is not None, **extra)
            value = _metric(adapter.lm_head(out.last_hidden_state[:, -1])[0].float(), answer_id, metric)
            grads = [g[0] for g in torch.autograd.grad(value, [outs[i] for i in range(adapter.num_layers)])]
        heads = [capture["out"][i][0] for i in range(adapter.num_layers)]
    H = heads[0].shape[0]
    probs = torch.empty(len(grads), H, L - p0, L)  # filled layer by layer: no stacked copies
    effect = torch.empty_like(probs)
    for i, g in enumerate(grads):
        probs[i] = heads[i]  # [H, L - p0, L]
        v = clean.values[i][0].float()  # [H_kv, L, D]
        v = v.repeat_interleave(H // v.shape[0], dim=0)
        g = g.detach().float().reshape(L - p0, H, -1).transpose(0, 1)  # [H, L - p0, D]
        torch.matmul(g, v.transpose(-1, -2), out=effect[i]).mul_(probs[i])
    return Attribution(probs, effect, int(answer_id), float(value.detach()), spans, p0)


def _metric(logits: torch.Tensor, answer_id: int, metric):
    """``log p(answer_id)`` from last-position ``logits [vocab]``, or ``metric(logits)``."""
    return torch.log_softmax(logits, -1)[answer_id] if metric is None else metric(logits)


# ------------------------------------------------------------------------------------------- the map's blocks


def map_blocks(spans: Spans) -> list[tuple[str, list[int]]]:
    """The rows and columns of the whole map, in sequence order: the system prompt, each frame, the question
    sentence, the true option, the false options (together, so that questions with different numbers of options
    share one map), the instruction, the rest of the text (template and prefill) and the last position. Empty parts
    are left out; every token belongs to exactly one block."""
    taken: set[int] = set()
    parts: list[tuple[str, list[int]]] = []

    def add(name, idx):
        idx = [int(i) for i in idx if int(i) not in taken]
        if idx:
            taken.update(idx)
            parts.append((name, idx))

    add("system", spans.system)
    for i, fr in enumerate(spans.frames):
        add(f"frame {i + 1}", fr)
    add("question", spans.non_option)
    add("true option", spans.indices("true_option").tolist())
    add("false options", spans.indices("false_options").tolist())
    add("instruction", spans.instruction)
    add("last", spans.last)
    add("other text", [i for i in range(spans.length) if i not in taken])
    return parts
