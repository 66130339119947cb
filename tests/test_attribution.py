"""The first-order knockout estimate (mapflow_utils.engine.attribution) against the exact engine.

Where everything after the blocked layer is linear (the last layer, its MLP zeroed, the final norm an identity, the
answer's logit as the metric) the estimate must equal the exact knockout: the renormalisation inside the layer is
exact and nothing downstream is approximated. That is checked on every supported class."""

import copy
import math

import pytest
import torch

from mapflow_utils.engine import attribution as A
from mapflow_utils.engine import knockout as K
from mapflow_utils.evaluate import prepare
from mapflow_utils.models import adapter_for
from mapflow_utils.engine.specs import CROSS_FRAME, Block, KnockoutSpec, PairsSpec, UnionSpec

from tiny_models import ALL, adapter as shared_adapter, prepared

#: float32, ~200 tokens, effects of order one: |estimate − exact| measured 3e-7..3.6e-6 over the ten classes (the
#: engine and the backward each round at ~1e-6); 1e-4 leaves ~30x that for other CPUs. Plain AtP (the blocked keys'
#: share removed, no renormalisation) fails this test on all ten classes.
ATOL = 1e-4


def _linear_tail(family):
    """A private copy of ``family``'s tiny model whose last layer's MLP outputs zero and whose final norm is the
    identity: after the last layer's attention only ``o_proj``, the residual and ``lm_head`` follow. Its ``o_proj``
    is scaled up (still linear) so that random weights give knockout effects of order one."""
    shared = shared_adapter(family)
    model = copy.deepcopy(shared.model)
    ad = adapter_for(model, shared.processor)
    last = ad.language_model.layers[-1]
    torch.nn.init.zeros_(last.mlp.down_proj.weight)
    with torch.no_grad():
        last.self_attn.o_proj.weight.mul_(1000.0)
    ad.language_model.norm = torch.nn.Identity()
    return ad


@pytest.mark.parametrize("graph", [False, True], ids=["forward-recomputed", "recorded-run"])
@pytest.mark.parametrize("family", ALL)
def test_last_layer_estimate_is_exact_when_what_follows_is_linear(family, graph):
    ad = _linear_tail(family)
    _, shared_prep = prepared(family=family)
    prep = prepare(ad, shared_prep.sample, shared_prep.prompt.answer_format, graph=graph)
    ans = prep.answer_ids[prep.sample.answer_index]
    att = A.attribute(ad, prep.clean, prep.spans, ans, metric=lambda logits: logits[ans])
    last = ad.num_layers - 1
    L = prep.spans.length
    pairs = torch.zeros(L, L, dtype=torch.bool)
    pairs[-1, torch.randperm(L, generator=torch.Generator().manual_seed(0))[: L // 3]] = True  # a third of the keys
    specs = [KnockoutSpec((Block("question", "last"),), (last,)), KnockoutSpec((Block("video", "last"),), (last,)),
             KnockoutSpec((Block("last", "last"),), (last,)), PairsSpec({last: pairs}),
             KnockoutSpec((Block("system", "last"), Block("video", "last"), Block("question", "last"),
                           Block("instruction", "last"), Block("last", "last")), (last,))]  # nearly every key
    logits = K.run_specs(ad, prep.clean, prep.spans, specs)[:, ans]
    exact = (logits - prep.clean.logits[ans]).tolist()
    est = [att.delta(s) for s in specs]
    assert max(abs(e) for e in exact) > 0.1, "the knockouts must change the logit for this test to mean anything"
    assert est == pytest.approx(exact, abs=ATOL), (family, est, exact)


#: The recorded run's backward against the recomputed forward's: the same arithmetic over a different row range
#: (the whole sequence vs the suffix), so their matrix products round differently. Measured max |ΔE| / max |E| over
#: the ten classes 6e-9 to 3e-8 (3e-7 on the book's subject); 1e-4 leaves >100x for other CPUs.
GRAPH_RTOL = 1e-4


@pytest.mark.parametrize("family", ALL)
def test_a_recorded_clean_run_is_the_clean_run_and_its_backward_the_estimate(family):
    """prepare(graph=True) changes no number of the clean run (same kernels: bitwise on one machine), and its one
    backward gives the estimate the recomputed forward gives; the graph is used once and released."""
    ad, plain = prepared(family=family)
    rec = prepare(ad, plain.sample, plain.prompt.answer_format, graph=True)
    assert isinstance(rec.clean.graph, A.Graph) and plain.clean.graph is None
    assert torch.equal(rec.clean.logits, plain.clean.logits)
    for name in ("keys", "values", "layer_inputs"):
        got, want = getattr(rec.clean, name), getattr(plain.clean, name)
        assert all(torch.equal(a, b) for a, b in zip(got, want)), f"{family}: the recorded run changed {name}"
        assert not any(t.requires_grad for t in got), f"{family}: the clean run's {name} hold the graph"
    ans = plain.answer_ids[plain.predicted]
    from_graph = A.attribute(ad, rec.clean, rec.spans, ans)
    assert rec.clean.graph is None, "the graph must be released after its one backward"
    recomputed = A.attribute(ad, plain.clean, plain.spans, ans)
    assert torch.equal(from_graph.probs, recomputed.probs)
    scale = recomputed.effect.abs().max()
    assert scale > 0, "no effect at all: this test would mean nothing"
    err = float((from_graph.effect - recomputed.effect).abs().max() / scale)
    print(f"{family}: max |dE| / max |E| = {err:.1e}")
    assert err < GRAPH_RTOL, (family, err)
    assert from_graph.logp == pytest.approx(recomputed.logp, abs=1e-5)


def test_renormalisation_is_exact_inside_the_layer():
    """G·Δo from the stored (s, Σ_K a·G·v, G·o) equals G·(o' − o) computed by renormalising the surviving keys,
    including a query whose every key is blocked (its output becomes zero, as the engine makes it)."""
    g = torch.Generator().manual_seed(1)
    H, Lq, Lk, D = 3, 5, 7, 4
    a = torch.softmax(torch.randn(H, Lq, Lk, generator=g, dtype=torch.float64), -1)
    v = torch.randn(H, Lk, D, generator=g, dtype=torch.float64)
    grad = torch.randn(H, Lq, D, generator=g, dtype=torch.float64)
    blocked = torch.rand(Lq, Lk, generator=g) < 0.4
    blocked[0] = True  # every key blocked
    blocked[1] = False  # nothing blocked
    keep = (~blocked).to(torch.float64)
    kept = a * keep
    total = kept.sum(-1, keepdim=True)
    o_new = torch.where(total > 0, kept / total.clamp_min(1e-300), torch.zeros_like(kept)) @ v
    want = (grad * (o_new - a @ v)).sum(-1)  # [H, Lq]
    e = a * (grad @ v.transpose(-1, -2))
    m = blocked.to(torch.float64)
    got = A._renormalised((a * m).sum(-1), (e * m).sum(-1), e.sum(-1))
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_windows_and_unions_are_sums_of_their_layers():
    ad, prep = prepared()
    att = A.attribute(ad, prep.clean, prep.spans, prep.answer_ids[prep.predicted])
    per_layer = [att.delta(KnockoutSpec((CROSS_FRAME,), (l,))) for l in range(ad.num_layers)]
    assert att.delta(KnockoutSpec((CROSS_FRAME,), range(ad.num_layers))) == pytest.approx(sum(per_layer))
    union = UnionSpec((KnockoutSpec((CROSS_FRAME,), (0,)), KnockoutSpec((Block("question", "last"),), (2,))))
    assert att.delta(union) == pytest.approx(per_layer[0] + att.delta(KnockoutSpec((Block("question", "last"),),
                                                                                    (2,))))
    sweep = att.sweep([KnockoutSpec((CROSS_FRAME,), (l,)) for l in range(ad.num_layers)])
    assert sweep.tolist() == pytest.approx([A.pct(d) for d in per_layer])


def test_the_map_cells_are_the_block_pairs():
    """Each cell of the whole map is the estimate of blocking that one (query block, key block) pair alone."""
    ad, prep = prepared()
    att = A.attribute(ad, prep.clean, prep.spans, prep.answer_ids[prep.predicted])
    blocks = A.map_blocks(prep.spans)
    covered = sorted(i for _, idx in blocks for i in idx)
    assert covered == list(range(prep.spans.length))  # every token in exactly one block
    names = [n for n, _ in blocks]
    assert names[:2] == ["system", "frame 1"] and "last" in names and "question" in names
    grid = att.block_map(blocks)
    assert grid.shape == (ad.num_layers, len(blocks), len(blocks))
    L = prep.spans.length
    for qi, kj, layer in [(names.index("last"), names.index("question"), 1),
                          (names.index("question"), names.index("frame 2"), 0),
                          (names.index("frame 3"), names.index("frame 1"), 2)]:
        pairs = torch.zeros(L, L, dtype=torch.bool)
        pairs[torch.tensor(blocks[qi][1])[:, None], torch.tensor(blocks[kj][1])[None, :]] = True
        assert grid[layer, qi, kj] == pytest.approx(att.layer_delta(pairs, layer), abs=1e-9)


def test_the_estimator_refuses_what_it_cannot_estimate(monkeypatch):
    ad, prep = prepared()
    att = A.attribute(ad, prep.clean, prep.spans, prep.answer_ids[prep.predicted])
    with pytest.raises(A.AttributionError, match=r"layer 9 outside 0\.\.3"):
        att.delta(KnockoutSpec((CROSS_FRAME,), (9,)))
    with pytest.raises(A.AttributionError, match=r"blocks queries at position 0, before the first position "
                                                 r"attributed .*first_query=0"):
        att.delta(KnockoutSpec((Block("video", "system"),), (0,)))  # the system prompt was not recomputed
    broken = copy.deepcopy(ad.model)
    bad = adapter_for(broken, ad.processor)
    del bad.language_model.layers[1].self_attn.o_proj
    with pytest.raises(A.AttributionError, match=r"layer 1 has no self_attn\.o_proj.*exact engine"):
        A.attribute(bad, prep.clean, prep.spans, 0)
    monkeypatch.setattr(ad.model.config.get_text_config(), "attn_logit_softcapping", 50.0, raising=False)
    with pytest.raises(A.AttributionError, match="attn_logit_softcapping.*exact engine"):
        A.attribute(ad, prep.clean, prep.spans, 0)


def test_spearman_handles_ties_and_flat_curves():
    from mapflow_utils.results import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 3], [5, 5, 6, 7]) == pytest.approx(1.0)  # tied ranks on both sides
    assert math.isnan(spearman([1, 2, 3], [0, 0, 0]))  # a flat curve has no order


def test_agreement_refuses_sweeps_of_different_questions():
    import numpy as np

    from mapflow_utils.results import Agreement, SweepResult

    a = SweepResult({"f": np.zeros((2, 4))}, ["x", "y"], {"x": 1, "y": 1}, 3)
    b = SweepResult({"f": np.zeros((1, 4))}, ["x"], {"x": 1, "y": 1}, 3)
    with pytest.raises(ValueError, match="different questions"):
        Agreement.of(a, b, ["f"])


def test_estimate_sweep_matches_the_exact_sweep_where_it_is_exact():
    """On the tiny subject, estimate_sweep and knockout_sweep cover the same questions; last→last in the last layer
    (window 1) is the one knockout of FLOWS with only lm_head-side nonlinearity left: its estimate must be close."""
    from mapflow_utils import experiments as E
    from mapflow_utils import paths
    from mapflow_utils.data import load_tvbench

    ad, _ = prepared()
    ds = load_tvbench(paths.SYNTHETIC, n_per_task=3, seed=0)
    est, whole = E.estimate_sweep(ad, ds, ["last→last", "cross-frame"], 1, "content")
    exact = E.knockout_sweep(ad, ds, ["last→last", "cross-frame"], 1, "content")
    assert est.tasks == exact.tasks and len(est.tasks) > 3
    assert whole.delta.shape == (len(est.tasks), ad.num_layers, len(whole.names), len(whole.names))
    last = est.change["last→last"][:, -1]
    assert last == pytest.approx(exact.change["last→last"][:, -1], abs=0.05), (last, exact.change["last→last"][:, -1])


def test_a_wrapped_projection_is_left_alone_and_restored():
    """A projection whose forward is already wrapped (accelerate's device hooks set an instance ``forward``) keeps
    it during and after a recorded run; plain ones get the restricted backward and lose it afterwards."""
    ad = shared_adapter(ALL[0])
    hooked = ad.language_model.layers[0].mlp.down_proj
    plain = ad.language_model.layers[0].mlp.up_proj
    original = hooked.forward

    def wrapper(x):
        return original(x)

    hooked.forward = wrapper
    try:
        with A._gradient_from(ad, 1, 8):
            assert hooked.forward is wrapper and "forward" in vars(plain)
        assert hooked.forward is wrapper and "forward" not in vars(plain)
    finally:
        del hooked.forward
