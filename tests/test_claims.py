"""The claims, measured on constructed results: each claim function feeds its rule the right numbers (the rules
themselves, verdict by verdict, are in test_rules.py)."""

import numpy as np

from mapflow_utils import claims, tables
from mapflow_utils.results import SweepResult, bootstrap_mean


def result(curves: dict, n: int = 30, noise: float = 1.0, tasks=("action_antonym",)) -> SweepResult:
    rng = np.random.default_rng(0)
    change = {f: np.asarray(c, float)[None] + noise * rng.standard_normal((n, len(c))) for f, c in curves.items()}
    return SweepResult(change, [tasks[i % len(tasks)] for i in range(n)], {}, 3)


def test_bootstrap_interval_contains_the_mean():
    x = np.random.default_rng(1).normal(5, 2, size=(200, 3))
    m, lo, hi = bootstrap_mean(x)
    assert np.all(lo < m) and np.all(m < hi) and np.allclose(m, x.mean(0))
    assert np.all(hi - lo < 1.0)


def test_cross_frame_claim():
    flat = [0] * 8
    dip = [-2, -25, -20, -5, 0, 0, 0, 0]
    assert claims.claim_cross_frame(result({"cross-frame": dip}), result({"cross-frame": flat})).verdict == \
        "reproduces"
    assert claims.claim_cross_frame(result({"cross-frame": dip}), result({"cross-frame": dip})).verdict == "partly"
    assert claims.claim_cross_frame(result({"cross-frame": flat}), result({"cross-frame": flat})).verdict == \
        "does not reproduce"
    rises = [5, 20, 15, 5, 0, 0, 0, 0]  # an ImageLLM whose probability goes up shows no drop
    assert claims.claim_cross_frame(result({"cross-frame": dip}), result({"cross-frame": rises})).verdict == \
        "reproduces"
    late = [0, 0, 0, 0, 0, 0, -30, -30]  # a drop only in the last third is not the paper's claim
    assert claims.claim_cross_frame(result({"cross-frame": late}), result({"cross-frame": flat})).verdict == \
        "does not reproduce"


def test_fig3_claim():
    good = {"video→question": [0, -20, -25, -5, 0, 0, 0, 0], "question→last": [0, 0, 0, -5, -30, -20, 0, 0],
            "video→last": [0] * 8, "last→last": [0] * 8}
    assert claims.claim_fig3(result(good)).verdict == "reproduces"
    direct = dict(good, **{"video→last": [0, -40, -40, 0, 0, 0, 0, 0]})  # the pilots' tiny-model route
    assert claims.claim_fig3(result(direct)).verdict == "partly"
    reversed_order = dict(good, **{"video→question": [0, 0, 0, 0, 0, 0, -30, 0]})
    assert claims.claim_fig3(result(reversed_order)).verdict == "does not reproduce"


def test_halves_claim():
    acc = {"full": {"a": [80, 100], "b": [60, 100]}, "first half": {"a": [40, 100], "b": [30, 100]},
           "second half": {"a": [79, 100], "b": [60, 100]}}
    assert claims.claim_halves(acc).verdict == "reproduces"
    acc["second half"] = {"a": [50, 100], "b": [40, 100]}
    assert claims.claim_halves(acc).verdict == "partly"
    assert abs(tables.relative_change(acc, "first half")["a"] + 50) < 1e-9


def test_fig8_claim():
    n = 8
    rise_late = np.array([0.01, 0.01, 0.02, 0.02, 0.3, 0.8, 0.9, 0.95])
    false = np.full(n, 0.01)
    assert claims.claim_fig8(rise_late, false).verdict == "reproduces"
    early = np.array([0.6, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.95])
    assert claims.claim_fig8(early, false).verdict == "does not reproduce"
    favours_false_first = rise_late.copy()
    assert claims.claim_fig8(favours_false_first, np.array([0.01, 0.2, 0.2, 0.2, 0.1, 0.01, 0.01, 0.01])).verdict \
        == "partly"


def test_routes_and_fig7():
    tasks = ("action_antonym", "moving_direction")
    r = result({"video→true option": [0, -30, 0], "video→non-option question": [0, 0, 0],
                "non-option question→true option": [0, 0, 0]}, tasks=tasks)
    assert claims.routes(r) == {"action_antonym": "direct", "moving_direction": "direct"}
    assert claims.claim_fig7(r).verdict == "does not reproduce"  # 1 of 5 tasks matches


def test_letter_attempt_summary_from_the_shipped_log():
    from mapflow_utils import paths

    s = tables.letter_attempt(paths.MODELS / "letter-attempt")
    assert 0.25 < s["chance"] < 1 / 3  # 4-option questions and one 3-option question per image
    measured = [r["letter_accuracy"] for r in s["records"] if "letter_accuracy" in r]
    assert s["steps"] > 0 and len(measured) > 1 and s["final"] == measured[-1]  # the last evaluation, not the best


def test_open_ended_claims():
    both = {"video→last": [0, -30, -20, 0, 0, 0, 0, 0], "non-option question→last": [0, 0, 0, -5, -25, -10, 0, 0],
            "video→non-option question": [0, -15, 0, 0, 0, 0, 0, 0]}
    assert claims.claim_fig_r(result(both)).verdict == "reproduces"
    direct_only = dict(both, **{"non-option question→last": [0] * 8})
    assert claims.claim_fig_r(result(direct_only)).verdict == "partly"
    assert claims.claim_fig_r(result({f: [0] * 8 for f in both})).verdict == "does not reproduce"
    q = claims.claim_cross_frame(result({"cross-frame": [-2, -25, -20, -5, 0, 0, 0, 0]}),
                                 result({"cross-frame": [0] * 8}), "figQ", "Fig. Q", "appC")
    assert (q.figure, q.verdict) == ("Fig. Q", "reproduces") and "open-ended" in q.claim
    s = claims.claim_fig8(np.array([0.01, 0.01, 0.02, 0.02, 0.3, 0.8, 0.9, 0.95]), np.full(8, 0.01), "figS", "Fig. S",
                          "appC", what="answer")
    assert s.verdict == "reproduces" and "true answer" in s.ours


def test_chance_correct_and_kept():
    from mapflow_utils.data import QASample
    from mapflow_utils.results import PathwayResult

    s = [QASample("t", i, f"v{i}.mp4", "q", ("a", "b", "c", "d")[:k], "a") for i, k in enumerate((2, 4))]
    assert tables.chance(s) == {"t": [0.75, 2]}
    r = SweepResult({"f": np.zeros((2, 3))}, ["a", "a"], {"a": 5, "b": 1}, 3)
    assert r.correct() == {"a": [2, 5], "b": [0, 1]}
    p = PathwayResult({}, [], {"paper": (42, 100), "video_question": (1, 4)})
    assert p.kept() == 0.42 and p.kept("video_question") == 0.25


def test_pathway_rows_random_accuracy_and_labelled_claims():
    from mapflow_utils.results import PathwayResult

    acc = {"full": {"a": [8, 10]}, "pathways": {"a": [7, 10]}, "random 0": {"a": [4, 10]}, "random 1": {"a": [6, 10]}}
    r = PathwayResult(acc, ["random 0", "random 1"], {"paper": (1, 2), "video_question": (1, 4)})
    assert tables.random_accuracy(acc, r.random_labels) == (50.0, 10.0)
    rows = tables.pathway_rows({"8 frames": r})
    assert rows[0][:3] == ["8 frames, full", "100%", "80.0"] and rows[1][:3] == ["8 frames, pathways", "50%", "70.0"]
    a, b = claims.claim_table3(acc, r.random_labels, 0.5), claims.claim_table3(acc, r.random_labels, 0.5, "tA", "Table A")
    labelled, same = claims.labelled({"x": [a], "y": [b]})
    assert [c.figure for c in labelled] == ["Table 3 (x)", "Table A (y)"] and same == 1
    assert a.verdict == "partly" and "LongVideoBench" in b.paper  # pathways beat random but lose 10 points


def test_claims_travel_as_files_and_are_collected_in_order(tmp_path):
    acc = {"full": {"a": [8, 10]}, "pathways": {"a": [8, 10]}, "random 0": {"a": [2, 10]}}
    t3 = claims.claim_table3(acc, ["random 0"], 0.4)
    f3 = claims.claim_fig3(result({"video→question": [0, -20, 0], "question→last": [0, 0, -20],
                                   "video→last": [0] * 3, "last→last": [0] * 3}))
    claims.write([t3], tmp_path / "s3_5_pathways.claims.json")
    claims.write([f3], tmp_path / "s3_3_integration.claims.json")
    got = claims.collect([tmp_path / "s3_3_integration.claims.json", tmp_path / "missing.claims.json",
                          tmp_path / "s3_5_pathways.claims.json"])
    assert [(ch, c.key) for ch, c in got] == [("s3_3_integration", "fig3"), ("s3_5_pathways", "t3")]
    assert got[1][1] == t3 and t3.verdict == "reproduces" and t3.numbers["pathways"] == 80.0
    assert claims.counts(got) == {"reproduces": 2, "partly": 0, "does not reproduce": 0}
    assert claims.glance_rows(got)[0][:2] == ["{doc}`s3_3_integration`", "Fig. 3"]
    assert claims.glance_rows(got)[0][-1] == f3.rule  # the rule shows beside the verdict


def test_the_books_subject_rerun_in_app_ab_is_shown_but_counted_once(tmp_path):
    """App. A/B reruns the book's subject beside the other pairs: its rows repeat §3.2-3.5's claims, so they say
    where they are counted and the totals count them once."""
    acc = {"full": {"a": [8, 10]}, "pathways": {"a": [8, 10]}, "random 0": {"a": [2, 10]}}
    t3 = claims.claim_table3(acc, ["random 0"], 0.4)
    claims.write([t3], tmp_path / "s3_5_pathways.claims.json")
    rerun, _ = claims.labelled({"smol": [t3], "tiny": [t3]}, counted_elsewhere=["smol"])
    claims.write(rerun, tmp_path / "appab_scale.claims.json")
    got = claims.collect([tmp_path / "s3_5_pathways.claims.json", tmp_path / "appab_scale.claims.json"])
    assert len(got) == 3 and claims.counts(got) == {"reproduces": 2, "partly": 0, "does not reproduce": 0}
    assert "counted in {doc}`s3_5_pathways`" in claims.glance_rows(got)[1][4]
    assert not claims.glance_rows(got)[2][4].count("counted in")
