"""Logit lens / answer probability, and attention maps computed for chosen rows only."""

import pytest
import torch

from mapflow_utils.engine import specs as S
from mapflow_utils.engine import lens, reference
from mapflow_utils.engine.attention import attention_rows, video_maps
from tiny_models import ALL, prepared


def test_standard_lens_ends_at_the_model_output():
    ad, prep = prepared()
    p = lens.answer_probability(ad, prep.clean, prep.answer_ids, "standard")
    assert p.shape == (ad.num_layers, len(prep.answer_ids))
    final = torch.softmax(prep.clean.logits, -1)[prep.answer_ids]
    assert torch.allclose(p[-1], final, atol=1e-6)
    assert not torch.allclose(p[0], final, atol=1e-4)  # earlier layers are read, not copies of the output


def test_paper_lens_projects_layer_inputs_on_input_embeddings():
    ad, prep = prepared()
    p = lens.answer_probability(ad, prep.clean, prep.answer_ids, "paper")
    assert p.shape == (ad.num_layers + 1, len(prep.answer_ids))
    emb = ad.input_embeddings.weight
    h0 = prep.clean.embeds[0, -1]  # entering layer 1 = the embedding of the last token
    expect = torch.softmax((h0 @ emb.T).float(), -1)[prep.answer_ids]
    assert torch.allclose(p[0], expect, atol=1e-6)


def test_top_tokens_and_keyword_counts():
    ad, prep = prepared()
    video = list(prep.spans.video)[:10]
    top = lens.top_tokens(ad, prep.clean, video, k=3)
    assert top.shape == (ad.num_layers, 10, 3)
    some = int(top[0, 0, 0])
    counts = lens.keyword_counts(top, {"x": some})
    assert counts["x"][0] >= 1 and counts["x"].shape == (ad.num_layers,)


def _eager_rows(ad, prep, spec, rows):
    _, att = reference.logits(ad, prep.inputs, prep.spans, spec, output_attentions=True)
    return torch.stack([a[0].mean(0)[rows] for a in att])


@pytest.mark.parametrize("family", ALL)
def test_attention_rows_match_full_attention_maps(family):
    ad, prep = prepared(family=family)
    rows = list(prep.spans.non_option)[:3] + [prep.spans.length - 1]
    for spec in (S.KnockoutSpec((), ()), S.KnockoutSpec((S.CROSS_FRAME, S.Block("video", "question")), (1, 2))):
        ours = attention_rows(ad, prep.clean, prep.spans, rows, spec=spec)
        ref = _eager_rows(ad, prep, spec, rows)
        assert ours.shape == (ad.num_layers, len(rows), prep.spans.length)
        assert (ours - ref).abs().max() <= 1e-5
    blocked = attention_rows(ad, prep.clean, prep.spans, rows, layers=[1], spec=S.KnockoutSpec(
        (S.Block("video", "question"),), (1,)))
    v = prep.spans.video
    assert torch.all(blocked[0, :3, v.start:v.stop] == 0)
    if family == ALL[0]:
        grids = video_maps(ours, prep.spans)
        assert grids.shape == (ad.num_layers, len(rows), 8, 4, 4)


@pytest.mark.parametrize("family", ALL)
def test_frame_units_work_for_every_layout(family):
    """One notion of a frame: a unit is a frame or a temporal group; unequal units give masses, never a crash."""
    import matplotlib.pyplot as plt

    from mapflow_utils import plots

    ad, prep = prepared(family=family)
    k = ad.frames_per_unit()
    frames = prep.sample.frames(8)
    assert len(prep.spans.frames) == -(-len(frames) // k)
    rows = [prep.spans.length - 1]
    w = attention_rows(ad, prep.clean, prep.spans, rows)
    maps = video_maps(w, prep.spans)  # [layers, Q, units, h, w]
    assert maps.shape[2] == len(prep.spans.frames)
    on_video = w[..., prep.spans.video.start:prep.spans.video.stop].sum(-1)
    assert torch.allclose(maps.flatten(2).sum(-1), on_video, atol=1e-5)  # every video token counted once
    fig = plots.attention_on_frames(frames, {"clean": maps[0, 0].numpy()}, "test")
    assert ("temporal group" in fig._suptitle.get_text()) == (k > 1)
    assert ("temporal group" in ad.frame_unit()) == (k > 1)
    plt.close(fig)


def test_lens_and_attention_experiments_cache_per_sample(tiny_adapter, synth_root, tmp_path):
    """Fig. 4's keyword counts and Fig. 5's attention maps read back from the result cache equal a fresh run, and a
    different knockout spec is a different cache entry."""
    import numpy as np

    from mapflow_utils import experiments as E
    from mapflow_utils.cache import STATS
    from mapflow_utils.data import load_tvbench

    ds = load_tvbench(synth_root, n_per_task=2, seed=0)
    count = ds.by_task()["object_count"]
    words = {"spatial": E.SPATIAL_WORDS, "temporal": E.TEMPORAL_WORDS}
    fresh = E.keyword_frequency(tiny_adapter, list(ds)[:3], words)
    for _ in range(2):
        hits, _norm = E.keyword_frequency(tiny_adapter, list(ds)[:3], words, results_dir=tmp_path)
        for g in words:
            for w in words[g]:
                assert np.array_equal(hits[g][w], fresh[0][g][w]), (g, w)
    blocked = E.all_layers(E.CROSS_FRAME, tiny_adapter.num_layers)
    want = [E.frame_attention(tiny_adapter, count, ["begins"], spec) for spec in (None, blocked)]
    before = STATS["cached"]
    for _ in range(2):
        got = [E.frame_attention(tiny_adapter, count, ["begins"], spec, results_dir=tmp_path) for spec in (None, blocked)]
        for (p, g), (wp, wg) in zip(got, want):
            np.testing.assert_allclose(p, wp, atol=1e-6)
            np.testing.assert_allclose(g, wg, atol=1e-6)
    assert STATS["cached"] - before == 2 * len(count)  # the second pass only, for both specs
    assert not np.allclose(want[0][0], want[1][0])


def test_lens_readout_ends_at_the_models_own_answer(tiny_adapter, synth_root):
    """The last layer of the standard lens is the model's output: its top token is the answer token of a
    baseline-correct question; probabilities are a softmax over the whole vocabulary (sorted, below 1)."""
    from mapflow_utils import experiments as E, plots
    from mapflow_utils.data import load_tvbench

    ds = load_tvbench(synth_root, n_per_task=4, seed=0)
    try:
        r = E.lens_readout(tiny_adapter, list(ds), "content", k=5)
    except ValueError as e:  # random weights may answer nothing: the message must name the parameter
        assert "n_per_task" in str(e)
        return
    assert len(r["tokens"]) == tiny_adapter.num_layers and r["probs"].shape == (tiny_adapter.num_layers, 5)
    from mapflow_utils.evaluate import prepare

    sample = next(s for s in ds if s.question == r["question"] and list(s.candidates) == r["options"])
    prep = prepare(tiny_adapter, sample, "content")
    assert prep.correct
    final = torch.softmax(prep.clean.logits, -1).topk(5)
    assert torch.allclose(torch.from_numpy(r["probs"][-1]), final.values, atol=1e-6)
    assert (r["probs"][:, :-1] >= r["probs"][:, 1:]).all() and (r["probs"].sum(1) <= 1 + 1e-5).all()
    slider = plots.lens_slider(r)
    assert len(slider.children[1].children) == tiny_adapter.num_layers
