"""The knockout engine: exact against plain references, impossible to bypass silently, and its fast paths equal
full recomputation."""

import numpy as np

import pytest
import torch

from mapflow_utils.engine import knockout as K
from mapflow_utils import paths
from mapflow_utils.engine import reference
from mapflow_utils.data import load_tvbench
from mapflow_utils.engine import specs as S
from tiny_models import ALL, OURS, prepared

def reference_logits(ad, prep, spec):
    """A whole eager forward of the VLM with dense additive float masks (mapflow_utils.engine.reference)."""
    return reference.logits(ad, prep.inputs, prep.spans, spec)


SPECS = [
    S.KnockoutSpec((S.CROSS_FRAME,), (0, 1), "cross-frame"),
    S.KnockoutSpec((S.Block("video", "question"),), (1, 2), "video->question"),
    S.KnockoutSpec((S.Block("question", "last"),), (2, 3), "question->last"),
    S.KnockoutSpec((S.Block("last", "last"),), (0, 1, 2, 3), "last->last"),
    S.KnockoutSpec((S.Block("video", "last"), S.Block("true_option", "last")), (1,), "two blocks"),
    S.KnockoutSpec((S.Block("false_options", "last"),), (3,), "false->last"),
]


def stock_logits(ad, prep):
    ad.model.set_attn_implementation({"text_config": "sdpa"})
    with torch.no_grad():
        return ad.model(**prep.inputs).logits[0, -1].float()


@pytest.mark.parametrize("family", ALL)
def test_empty_spec_gives_stock_sdpa_logits(family):
    ad, prep = prepared(family=family)
    stock = stock_logits(ad, prep)
    assert (prep.clean.logits - stock).abs().max() <= 1e-6
    forced = K.run_specs(ad, prep.clean, prep.spans, [S.KnockoutSpec((), ())])[0]
    assert (forced - stock).abs().max() <= 1e-6


def _specs_for(ad):
    """SPECS restricted to the model's layers."""
    top = ad.num_layers - 1
    return [S.KnockoutSpec(s.blocks, [min(l, top) for l in s.layers], s.label) for s in SPECS]


@pytest.mark.parametrize("family", ALL)
@pytest.mark.parametrize("k", range(len(SPECS)), ids=[s.label for s in SPECS])
def test_knockout_equals_eager_reference(family, k):
    ad, prep = prepared(family=family)
    spec = _specs_for(ad)[k]
    ref = reference_logits(ad, prep, spec)
    ours = K.run_specs(ad, prep.clean, prep.spans, [spec], reuse_prefix=False, layer_start=False)[0]
    assert (ours - ref).abs().max() <= 1e-5
    assert (ref - prep.clean.logits).abs().max() > 1e-4, "the block changed nothing: the test would be vacuous"


@pytest.mark.parametrize("family", ALL)
def test_fast_paths_equal_full_recomputation(family):
    ad, prep = prepared(family=family)
    SPECS = _specs_for(ad)
    full = torch.stack([K.run_specs(ad, prep.clean, prep.spans, [s], reuse_prefix=False, layer_start=False)[0]
                        for s in SPECS])
    for reuse in (False, True):
        for start in (False, True):
            one_by_one = torch.stack([K.run_specs(ad, prep.clean, prep.spans, [s], reuse, start)[0] for s in SPECS])
            assert (one_by_one - full).abs().max() <= 1e-5, (reuse, start)
    batched = K.run_specs(ad, prep.clean, prep.spans, SPECS, True, True)  # a different spec per row
    assert (batched - full).abs().max() <= 1e-5
    probs = K.run_sweep(ad, prep.clean, prep.spans, SPECS + [S.KnockoutSpec((), ())], prep.answer_ids, batch_size=4)
    expect = torch.softmax(torch.cat([full, prep.clean.logits[None]]), -1)[:, prep.answer_ids]
    assert (probs - expect).abs().max() <= 1e-6


def test_blocked_edges_receive_exactly_zero_attention():
    ad, prep = prepared()
    spec = S.KnockoutSpec((S.CROSS_FRAME, S.Block("video", "last")), (1,))
    L = prep.spans.length
    plan_capture = {"rows": torch.arange(L), "layers": {1}, "out": {}}
    pairs = S.blocked_pairs(spec.blocks, prep.spans)
    with torch.no_grad(), K.applied(ad, spec, prep.spans, capture=plan_capture):
        ad.language_model(inputs_embeds=prep.clean.embeds)
    w = plan_capture["out"][1][0]  # [L, L]
    assert pairs.any()
    assert torch.all(w[pairs] == 0)
    assert torch.allclose(w.sum(-1), torch.ones(L), atol=1e-5)
    assert torch.all(w.triu(1) == 0)  # causal


def test_a_model_not_using_the_function_is_detected(monkeypatch):
    ad, prep = prepared()
    monkeypatch.setattr(K, "enable", lambda model: None)
    ad.model.set_attn_implementation({"text_config": "sdpa"})
    with pytest.raises(RuntimeError, match="is not using it"):
        K.run_specs(ad, prep.clean, prep.spans, [SPECS[0]])


@pytest.mark.parametrize("family", ALL)
def test_calls_are_counted_once_per_layer(family):
    ad, prep = prepared(family=family)
    forward = lambda: ad.language_model(inputs_embeds=prep.clean.embeds,  # noqa: E731
                                        position_ids=prep.clean.position_ids, **prep.clean.lm_kwargs)
    with torch.no_grad(), K.applied(ad, None, prep.spans):
        forward()  # once per layer: passes
    with pytest.raises(RuntimeError, match=r"instead of 1 per layer"):
        with torch.no_grad(), K.applied(ad, None, prep.spans):
            forward()
            forward()
    with pytest.raises(RuntimeError, match=r"instead of 1 per layer"):
        with torch.no_grad(), K.applied(ad, None, prep.spans):
            pass  # no forward at all
    with torch.no_grad(), K.applied(ad, None, prep.spans, calls=None):
        forward()
        forward()  # generation: equal counts, any number


def test_window_is_centred_and_truncated():
    assert S.window(0, 9, 32) == tuple(range(0, 5))
    assert S.window(10, 9, 32) == tuple(range(6, 15))
    assert S.window(31, 9, 32) == tuple(range(27, 32))
    assert S.window(5, 1, 8) == (5,)
    assert S.window(4, 4, 8) == (2, 3, 4, 5)
    with pytest.raises(ValueError):
        S.window(8, 3, 8)
    specs = S.sweep_specs([S.CROSS_FRAME], 3, 4)
    assert [s.layers for s in specs] == [(0, 1), (0, 1, 2), (1, 2, 3), (2, 3)]


def test_cross_frame_blocks_exactly_earlier_frames():
    _, prep = prepared()
    pairs = S.blocked_pairs([S.CROSS_FRAME], prep.spans)
    f = prep.spans.frames
    assert pairs[f[1].start, f[0].start] and pairs[f[7].stop - 1, f[6].start]
    assert not pairs[f[1].start, f[1].start] and not pairs[f[0].start, f[1].start]
    assert int(pairs.sum()) == sum(len(a) * len(b) for i, a in enumerate(f) for b in f[:i])
    # nothing outside video x video
    v = prep.spans.video
    assert not pairs[: v.start].any() and not pairs[v.stop:].any() and not pairs[:, v.stop:].any()


def test_sweep_results_are_cached_and_resumed(tmp_path, monkeypatch, tiny_adapter):
    from mapflow_utils import experiments as E

    ad = tiny_adapter
    ds = load_tvbench(paths.SYNTHETIC, n_per_task=1)
    first = E.knockout_sweep(ad, ds, ["cross-frame", "question→last"], 3, only_correct=False, results_dir=tmp_path)
    stored = sorted(tmp_path.rglob("*.npz"))
    assert len(stored) == len(ds)
    calls = []
    real = E.run_sweep
    monkeypatch.setattr(E, "run_sweep", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = E.knockout_sweep(ad, ds, ["cross-frame", "question→last"], 3, only_correct=False, results_dir=tmp_path)
    assert not calls  # nothing recomputed
    assert all(np.array_equal(first.change[f], again.change[f]) for f in first.change)
    stored[0].unlink()  # an interrupted run: one sample missing
    resumed = E.knockout_sweep(ad, ds, ["cross-frame", "question→last"], 3, only_correct=False, results_dir=tmp_path)
    assert len(calls) == 1  # only that sample is recomputed
    assert all(np.allclose(first.change[f], resumed.change[f]) for f in first.change)
    # another window is another experiment: a miss
    E.knockout_sweep(ad, ds[:1], ["cross-frame"], 1, only_correct=False, results_dir=tmp_path)
    assert len(calls) == 2


@pytest.mark.parametrize("damage", [b"", b"garbage" * 9, "truncated"])
def test_an_unreadable_cached_result_is_recomputed(tmp_path, monkeypatch, tiny_adapter, damage):
    import os

    from mapflow_utils import experiments as E

    ds = load_tvbench(paths.SYNTHETIC, n_per_task=1)[:2]
    first = E.knockout_sweep(tiny_adapter, ds, ["cross-frame"], 3, only_correct=False, results_dir=tmp_path)
    bad = sorted(tmp_path.rglob("*.npz"))[0]
    bad.write_bytes(bad.read_bytes()[:40] if damage == "truncated" else damage)
    damaged = bad.read_bytes()
    orphan = bad.with_name(bad.name + ".999999.tmp")  # a write killed midway, long ago
    orphan.write_bytes(b"half a file")
    os.utime(orphan, (0, 0))
    fresh = bad.with_name(bad.name + ".888888.tmp")  # another process writing right now: left alone
    fresh.write_bytes(b"being written")
    calls = []
    real = E.run_sweep
    monkeypatch.setattr(E, "run_sweep", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.warns(UserWarning, match=rf"{bad.name}: unreadable cached result .* moved aside to "
                                          rf"{bad.name}.corrupt, recomputed and replaced"):
        again = E.knockout_sweep(tiny_adapter, ds, ["cross-frame"], 3, only_correct=False, results_dir=tmp_path)
    assert len(calls) == 1  # only the damaged sample
    assert np.allclose(first.change["cross-frame"], again.change["cross-frame"])
    assert not orphan.exists() and fresh.exists()
    assert bad.with_name(bad.name + ".corrupt").read_bytes() == damaged  # kept for inspection
    with np.load(bad) as z:  # replaced by a good file
        assert "change" in z.files


def test_generation_under_knockout_starts_with_the_engines_argmax():
    from mapflow_utils import experiments as E

    ad, prep = prepared()
    spec = S.KnockoutSpec((S.CROSS_FRAME, S.Block("question", "last")), (0, 1, 2, 3))
    logits = K.run_specs(ad, prep.clean, prep.spans, [spec], reuse_prefix=False, layer_start=False)[0]
    text = E.generate(ad, prep, spec, max_new_tokens=1)
    assert text == ad.tokenizer.decode([int(logits.argmax())], skip_special_tokens=True).strip()
    clean = E.generate(ad, prep, None, max_new_tokens=1)
    assert clean == ad.tokenizer.decode([int(prep.clean.logits.argmax())], skip_special_tokens=True).strip()


@pytest.mark.parametrize("family", [OURS, "Qwen2VLForConditionalGeneration"])
def test_union_and_explicit_pair_specs_equal_the_reference(family):
    """Different blocks in different layers (the §3.5 pathway masks) and explicit random pairs per layer."""
    ad, prep = prepared(family=family)
    top = ad.num_layers - 1
    union = S.UnionSpec((S.KnockoutSpec((S.CROSS_FRAME,), (0,)),
                         S.KnockoutSpec((S.Block("video", "question"),), (1, min(2, top))),
                         S.KnockoutSpec((S.Block("last", "last"),), (top,))), "union")
    L = prep.spans.length
    g = torch.Generator().manual_seed(0)
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    pairs = {l: (torch.rand(L, L, generator=g) < 0.3) & causal for l in (0, top)}
    explicit = S.PairsSpec(pairs, "random")
    for spec in (union, explicit):
        ref = reference.logits(ad, prep.inputs, prep.spans, spec)
        full = K.run_specs(ad, prep.clean, prep.spans, [spec], reuse_prefix=False, layer_start=False)[0]
        assert (full - ref).abs().max() <= 1e-5
        assert (ref - prep.clean.logits).abs().max() > 1e-4
    mixed = [union, explicit, SPECS[0], S.KnockoutSpec((), ())]
    batched = K.run_specs(ad, prep.clean, prep.spans, mixed, True, True)
    single = torch.stack([K.run_specs(ad, prep.clean, prep.spans, [s], False, False)[0] for s in mixed])
    assert (batched - single).abs().max() <= 1e-5


def test_cache_key_has_everything_that_changes_a_result(tmp_path, monkeypatch, tiny_adapter):
    """only_correct, the results version and the dtype each give another key; the rest stays cached."""
    from mapflow_utils import cache, evaluate, experiments as E

    ds = load_tvbench(paths.SYNTHETIC, n_per_task=1)[:2]

    def run(only_correct=False):
        try:
            E.knockout_sweep(tiny_adapter, ds, ["question→last"], 3, only_correct=only_correct, results_dir=tmp_path)
        except evaluate.NoCorrectAnswers:
            pass  # random weights may answer none correctly: the results are stored all the same

    keys = lambda: {p.name for p in tmp_path.iterdir()}  # noqa: E731
    run()
    first = keys()
    run()
    assert keys() == first  # same call: cached
    run(only_correct=True)
    assert len(keys()) == 2, "only_correct must be in the key (a baseline-wrong sample is stored without change)"
    monkeypatch.setattr(cache, "RESULTS_VERSION", cache.RESULTS_VERSION + 1)
    run()
    assert len(keys()) == 3, "bumping RESULTS_VERSION must recompute"
    monkeypatch.undo()
    tiny_adapter.model.to(torch.float64)
    try:
        run()
        assert len(keys()) == 4, "the dtype must be in the key"
    finally:
        tiny_adapter.model.to(torch.float32)


def test_weight_hashes_are_remembered_by_size_and_mtime(tmp_path, monkeypatch):
    import os

    from mapflow_utils import cache

    monkeypatch.setattr(cache, "HASHES_FILE", tmp_path / "hashes.json")
    monkeypatch.setattr(cache, "_HASHES", None)
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"a" * (1 << 20))
    h1 = cache.file_hash(f)
    assert (tmp_path / "hashes.json").exists()
    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: reads.append(a[0]) or real_open(*a, **k))
    assert cache.file_hash(f) == h1 and str(f) not in map(str, reads)  # remembered, not re-read
    monkeypatch.undo()
    monkeypatch.setattr(cache, "HASHES_FILE", tmp_path / "hashes.json")
    f.write_bytes(b"b" * (1 << 20))
    os.utime(f, ns=(1, 1))
    assert cache.file_hash(f) != h1  # rewritten: new mtime, new hash


def test_no_correct_question_names_the_parameter_to_raise(tiny_adapter, monkeypatch):
    from mapflow_utils import evaluate, experiments as E

    ds = load_tvbench(paths.SYNTHETIC, n_per_task=1)[:2]
    monkeypatch.setattr(evaluate.Prepared, "correct", property(lambda self: False))
    with pytest.raises(evaluate.NoCorrectAnswers, match="n_per_task"):
        E.knockout_sweep(tiny_adapter, ds, ["question→last"], 3)
    with pytest.raises(evaluate.NoCorrectAnswers, match="n_per_task"):
        E.option_probabilities(tiny_adapter, ds)


def test_a_video_that_breaks_mid_run_is_skipped_and_listed(tiny_adapter, tmp_path):
    import dataclasses
    import shutil

    from mapflow_utils import experiments as E

    ds = load_tvbench(paths.SYNTHETIC, n_per_task=2)[:3]
    bad = tmp_path / "truncated.mp4"
    shutil.copy(ds[1].video_path, bad)
    bad.write_bytes(bad.read_bytes()[:300])  # loads (the record is fine), fails to decode
    samples = [ds[0], dataclasses.replace(ds[1], video_path=bad), ds[2]]
    with pytest.warns(UserWarning, match=r"(?s)left out 1 question.*truncated\.mp4"):
        r = E.knockout_sweep(tiny_adapter, samples, ["question→last"], 3, only_correct=False, results_dir=tmp_path)
    assert len(r.tasks) == 2 and len(r.skipped) == 1 and "truncated.mp4" in r.skipped[0]


def test_a_window_the_video_lacks_is_left_out_mid_run_too(tiny_adapter, tmp_path):
    """A record whose start/end lies outside its video (a bad annotation, not a bad file) is left out and listed,
    not a crash and not the whole video."""
    import dataclasses

    from mapflow_utils import experiments as E

    ds = load_tvbench(paths.SYNTHETIC, n_per_task=2)[:3]
    samples = [ds[0], dataclasses.replace(ds[1], start=40.0, end=41.0), ds[2]]
    with pytest.warns(UserWarning, match=r"(?s)left out 1 question.*start=40.0 s, end=41.0 s holds no frame"):
        r = E.knockout_sweep(tiny_adapter, samples, ["question→last"], 3, only_correct=False, results_dir=tmp_path)
    assert len(r.tasks) == 2 and len(r.skipped) == 1


def test_plan_batches_share_prefix_and_start_layer_within_budget():
    """Batches keep one first query, stay within ``spread`` layers and the token budget, cover every spec once."""
    L = 100
    firsts = [99] * 12 + [60] * 6 + [20] * 3
    layers = list(range(12)) + [0, 0, 1, 5, 6, 6] + [0, 1, 2]
    batches = K.plan_batches(firsts, layers, L, max_rows=4, max_tokens=100, spread=2)
    assert sorted(i for b in batches for i in b) == list(range(len(firsts)))
    for b in batches:
        assert len({firsts[i] for i in b}) == 1, b
        assert max(layers[i] for i in b) - min(layers[i] for i in b) <= 2, b
        assert len(b) <= 4 and (len(b) == 1 or len(b) * (L - firsts[b[0]]) <= 100), b
    # one-token suffixes fill rows; 80-token suffixes go one per forward; 40-token ones two
    assert [len(b) for b in batches if firsts[b[0]] == 99] == [3, 3, 3, 3]
    assert all(len(b) == 1 for b in batches if firsts[b[0]] == 20)
    assert [len(b) for b in batches if firsts[b[0]] == 60] == [2, 1, 2, 1]


def test_subject_accuracy_is_cached_per_question_and_deterministic(tmp_path):
    """The opening box's accuracy (all frames and one random frame): a rerun reads every answer from the cache and
    gives the same counts; the random frame depends on the seed and the question, not on the order of questions."""
    from mapflow_utils import experiments, paths
    from mapflow_utils.cache import STATS
    from mapflow_utils.data import load_tvbench
    from mapflow_utils.models import load

    _, _, video = load(paths.VIDEO_MODEL)
    ds = load_tvbench(paths.SYNTHETIC, tasks=["action_antonym"], n_per_task=3, seed=0)
    first = experiments.subject_accuracy(video, ds, "content", results_dir=tmp_path)
    computed = STATS["computed"]
    again = experiments.subject_accuracy(video, list(reversed(list(ds))), "content", results_dir=tmp_path)
    assert STATS["computed"] == computed and again == first
    assert set(first) == set(experiments.BOX_CONTROLS) and first["all"]["action_antonym"][1] == 3
