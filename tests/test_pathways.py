"""§3.5 building blocks: the layer-range rule, the pathway mask, edge counting and the random control."""

import numpy as np
import torch

from mapflow_utils.engine import knockout as K
from mapflow_utils.engine import specs as S
from mapflow_utils.engine import pathways as PW
from mapflow_utils import results as R
from mapflow_utils.engine import reference
from tiny_models import prepared


def test_app_e_rule_gives_table_e_a_from_table_e_b_for_every_paper_model():
    """The interval rule, applied to the paper's interval means (Table E(b)), gives the paper's layer ranges (Table
    E(a)) for all four models and three flows (numbers.yaml; 1-indexed there, 0-indexed here)."""
    from mapflow_utils import paper

    nums = paper.numbers()
    size = nums["setup"]["interval"]
    assert R.interval_size(32) == size  # the paper's own depth gives the paper's interval
    checked = 0
    for model, flows in nums["tableE_interval_change"].items():
        depth = nums["setup"]["layers"][model]
        for flow, means in flows.items():
            curve = np.repeat(means, size)[:depth]
            lo, hi = nums["tableE_layer_ranges"][model][flow]
            assert R.layer_range(curve, size) == (lo - 1, hi - 1), (model, flow)
            checked += 1
    assert checked == 12
    assert R.layer_range(np.zeros(8), 1) is None


def test_scaled_sizes_follow_the_paper_depth():
    from mapflow_utils.paper import scaled_windows

    from mapflow_utils import paper

    nums = paper.numbers()
    depth, window, interval = 32, nums["setup"]["knockout_window"], nums["setup"]["interval"]
    assert window in scaled_windows(depth) and scaled_windows(depth, (window,)) == [window]
    assert R.interval_size(depth) == interval and R.interval_size(depth // 4) == max(1, round(interval / 4))
    assert all(k >= 1 for k in scaled_windows(1))


def test_pathway_mask_blocks_what_app_e_says():
    ad, prep = prepared()
    n = ad.num_layers
    r = R.Ranges(cross_frame=(0, 1), video_question=(1, 2), question_last=(2, 3))
    spec = PW.pathway_spec(r, n)
    per_layer = PW.blocked_by_layer(spec, prep.spans, n)
    sp = prep.spans
    f1, f0 = sp.frames[1].start, sp.frames[0].start
    q, v, last = sp.question.start, sp.video.start, sp.length - 1
    assert not per_layer[0][f1, f0] and per_layer[2][f1, f0]  # cross-frame only inside its range
    assert per_layer[0][q, v] and not per_layer[1][q, v]  # video→question only inside its range
    assert all(per_layer[l][last, v] and per_layer[l][last, last] for l in range(n))  # →last always off
    assert not per_layer[3][last, q] and per_layer[1][last, q]
    assert per_layer[3][sp.frames[2].start, v]  # into video after the video→question range
    assert not per_layer[0][sp.instruction.start, v]  # the paper's leak: instruction may read the video
    closed = PW.blocked_by_layer(PW.pathway_spec(r, n, leak=False), sp, n)
    assert closed[0][sp.instruction.start, v] and closed[0][sp.instruction.start, q]
    own = PW.blocked_by_layer(PW.pathway_spec(R.Ranges((0, 1), (1, 2), (2, 3), video_last=(0, 0)), n), sp, n)
    assert not own[0][last, v] and own[1][last, v] and own[0][last, last]  # "own routes": video→last in range
    assert all(torch.equal(own[l], per_layer[l]) for l in range(1, n))  # ... and nothing else changes


def test_own_routes_ranges_come_from_the_same_rule():
    from mapflow_utils.results import SweepResult

    curves = {"cross-frame": [0, 0, 0, 0], "video→question": [-20, -20, 0, 0], "question→last": [0, 0, -9, -9],
              "video→last": [-50, -50, -1, 0]}
    sweep = SweepResult({f: np.array([c] * 3, float) for f, c in curves.items()}, ["action_antonym"] * 3, {}, 1)
    paper = R.ranges_from_sweep(sweep, 2)
    own = R.ranges_from_sweep(sweep, 2, own_routes=True)
    assert paper == R.Ranges(None, (0, 1), (2, 3)) and own == R.Ranges(None, (0, 1), (2, 3), (0, 1))


def test_edge_counts_and_random_control():
    ad, prep = prepared()
    n, L = ad.num_layers, prep.spans.length
    spec = PW.pathway_spec(R.Ranges((0, 1), (1, 2), (2, 3)), n)
    counts = PW.edge_counts(spec, prep.spans, n)
    kept, total = counts["paper"]
    assert total == n * L * (L + 1) // 2 and 0 < kept < total
    assert counts["video_question"][0] < counts["video_question"][1]
    assert PW.edge_counts(S.KnockoutSpec((), ()), prep.spans, n)["paper"] == (total, total)
    rand = PW.random_spec(spec, prep.spans, n, seed=3)
    assert PW.edge_counts(rand, prep.spans, n)["paper"] == (kept, total)  # same number of edges blocked
    for l, p in rand.pairs.items():
        assert not p[:, : prep.spans.video.start].any() and not p.diagonal().any()
    again = PW.random_spec(spec, prep.spans, n, seed=3)
    assert all(torch.equal(rand.pairs[l], again.pairs[l]) for l in rand.pairs)
    other = PW.random_spec(spec, prep.spans, n, seed=4)
    assert any(not torch.equal(rand.pairs[l], other.pairs[l]) for l in rand.pairs)


def test_pathway_and_random_specs_run_exactly():
    ad, prep = prepared()
    n = ad.num_layers
    spec = PW.pathway_spec(R.Ranges((0, 1), (1, 2), (2, 3)), n, leak=False)
    rand = PW.random_spec(spec, prep.spans, n, seed=0)
    out = K.run_specs(ad, prep.clean, prep.spans, [spec, rand])
    for i, s in enumerate((spec, rand)):
        assert (out[i] - reference.logits(ad, prep.inputs, prep.spans, s)).abs().max() <= 1e-5


def test_accuracy_under_pathways_and_random_controls(tmp_path):
    from mapflow_utils import experiments as E
    from mapflow_utils import paths
    from mapflow_utils.data import load_tvbench

    ad, _ = prepared()
    ds = load_tvbench(paths.SYNTHETIC, n_per_task=1)
    spec = PW.pathway_spec(R.Ranges((0, 1), (1, 2), (2, 3)), ad.num_layers)
    specs = {"pathways": spec, "random 0": PW.RandomControl(spec, ad.num_layers, 0)}
    acc = E.accuracy_under(ad, ds, specs, results_dir=tmp_path)
    again = E.accuracy_under(ad, ds, specs, results_dir=tmp_path)
    assert acc == again and set(acc) == {"full", "pathways", "random 0"}
    assert sum(n for _, n in acc["full"].values()) == len(ds)
