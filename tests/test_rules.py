"""Every verdict rule gives every verdict it can give, and its rule text is generated from the same thresholds the
logic uses (change a threshold: the text and the verdict move together)."""

import dataclasses

import numpy as np
import pytest

from mapflow_utils import rules as R

YES, PART, NO = R.VERDICTS


def test_cross_frame_rule():
    r = R.CrossFrameRule()
    assert r.verdict(-20, -15, -2, 8, 30) == YES
    assert r.verdict(-20, 1, -2, 8, 30) == PART  # band crosses 0
    assert r.verdict(-20, -15, -15, 8, 30) == PART  # the ImageLLM drops as much
    assert r.verdict(-6, -3, 0, 8, 30) == PART
    assert r.verdict(-2, -1, 0, 8, 30) == NO
    assert r.verdict(-20, -15, 30, 8, 30) == YES  # an ImageLLM whose probability rises has no drop
    assert r.verdict(-20, -15, -2, 20, 30) == YES and r.verdict(-20, -15, -2, 21, 30) == NO  # late: not the claim
    assert r.layers(30) == slice(0, 20) and r.layers(1) == slice(0, 1)


def test_halves_rule():
    r = R.HalvesRule()
    assert r.verdict(-30, -2) == YES
    assert r.verdict(-30, -8) == PART
    assert r.verdict(-1, 0) == PART  # first < second
    assert r.verdict(0, -3) == NO


def test_windows_rule():
    r = R.WindowsRule()
    assert r.verdict([-1, -15, -20, -30]) == YES
    assert r.verdict([-6, -15, -20, -30]) == PART
    assert r.verdict([-1, -15, -5, -30]) == NO


def test_fig3_rule():
    r = R.Fig3Rule()
    assert r.verdict(-20, 5, -25, 20, -1, -1, 30) == YES
    assert r.verdict(-20, 5, -25, 20, -15, -1, 30) == PART  # video→last matters too
    assert r.verdict(-20, 20, -25, 5, 0, 0, 30) == NO  # wrong order
    assert r.verdict(-2, 5, -3, 20, 0, 0, 30) == NO
    assert r.verdict(-20, 25, -25, 29, -1, -1, 30) == PART  # video→question at the end, not early-to-middle
    assert r.verdict(-20, 2, -25, 5, -1, -1, 30) == PART  # question→last in the first third, not middle-to-late


def test_fig4_rule():
    r = R.Fig4Rule()
    assert r.verdict(2, 15, 30) == YES
    assert r.verdict(20, 25, 30) == PART
    assert r.verdict(15, 3, 30) == NO
    assert r.verdict(None, 3, 30) == NO
    assert r.verdict(2, 30, 30) == PART  # temporal at the very end, not in the middle


def test_fig5_rule():
    r = R.Fig5Rule()
    assert r.verdict(0.7, 0.4) == YES
    assert r.verdict(0.45, 0.3) == PART
    assert r.verdict(0.7, 0.69) == NO
    assert r.layers(30) == slice(10, 20) and r.layers(2) == slice(0, 1)


def test_fig6_rule():
    r = R.Fig6Rule()
    assert r.verdict(-30, -5, 2) == YES
    assert r.verdict(-30, -5, -1) == PART
    assert r.verdict(-3, 0, 2) == PART
    assert r.verdict(-3, -10, 2) == NO


def test_routes_rule():
    r = R.RoutesRule()
    assert [r.route(-20, 0, 0), r.route(0, -20, -20), r.route(-20, -20, -20), r.route(0, -20, 0)] == \
        ["direct", "via question", "both", "neither"]
    assert (r.verdict(5, 5), r.verdict(2, 5), r.verdict(1, 5)) == (YES, PART, NO)


def test_rise_rule():
    r = R.RiseRule()
    false = np.full(8, 0.01)
    late = np.array([0.01, 0.01, 0.02, 0.02, 0.3, 0.8, 0.9, 0.95])
    assert r.rise_layer(late) == 6 and r.verdict(late, false) == YES  # 0.8 >= 0.95 / 2
    assert r.verdict(late, np.array([0.01, 0.2, 0.2, 0.2, 0.1, 0.01, 0.01, 0.01])) == PART
    assert r.verdict(np.array([0.6, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.95]), false) == NO
    assert r.rise_layer(np.zeros(8)) == 8
    at_end = np.r_[np.full(29, 0.01), 0.9]  # the rise at layer 30 of 30: "after the middle", but not right after
    assert r.rise_layer(at_end) == 30 and r.verdict(at_end, np.full(30, 0.01)) == NO


def test_open_route_rule():
    r = R.OpenRouteRule()
    assert (r.verdict(-20, -20), r.verdict(-20, 0), r.verdict(0, 0)) == (YES, PART, NO)


def test_pathways_rule():
    r = R.PathwaysRule()
    assert r.verdict(50, 49, 40) == YES
    assert r.verdict(50, 40, 30) == PART
    assert r.verdict(50, 40, 45) == NO


def test_above_chance_rule():
    r = R.AboveChanceRule()
    assert r.verdict(0.8, 0.3) == "clearly above" and r.verdict(0.35, 0.3) == "not clearly above"


def test_agreement_rule():
    r = R.AgreementRule()
    assert r.verdict([0.95, 0.81, float("nan")]) == YES  # a flow whose exact curve is flat everywhere is not judged
    assert r.verdict([0.95, 0.6]) == PART
    assert r.verdict([0.95, 0.3]) == NO
    assert r.verdict([float("nan")]) == NO  # nothing to judge is not agreement


def test_confirmed_ranges_rule():
    r = R.ConfirmedRangesRule()
    assert r.verdict(True, 0.39) == YES
    assert r.verdict(True, 0.8) == PART
    assert r.verdict(False, 0.1) == NO


RULES = [R.CrossFrameRule, R.HalvesRule, R.WindowsRule, R.Fig3Rule, R.Fig4Rule, R.Fig5Rule, R.Fig6Rule, R.RoutesRule,
         R.RiseRule, R.OpenRouteRule, R.PathwaysRule, R.AboveChanceRule, R.AgreementRule, R.ConfirmedRangesRule]
#: Rules of claims the paper does not make (beyond the paper): no paper values to test them on.
BEYOND = (R.AboveChanceRule, R.AgreementRule, R.ConfirmedRangesRule)


def _text(rule) -> str:
    return rule.text() if callable(rule.text) else rule.text


@pytest.mark.parametrize("cls", RULES, ids=lambda c: c.__name__)
def test_rule_text_is_generated_from_its_thresholds(cls):
    rule = cls()
    moved = 0
    for f in dataclasses.fields(rule):
        value = getattr(rule, f.name)
        if isinstance(value, tuple):
            continue
        other = dataclasses.replace(rule, **{f.name: type(value)(value * 2 if value else 7)})
        moved += _text(other) != _text(rule)
    # every threshold shows in the words, except where the text names it as a fraction of the depth
    assert moved == len([f for f in dataclasses.fields(rule) if not isinstance(getattr(rule, f.name), tuple)])


# The paper's own values (LLaVA-NeXT-7B-Video-FT, data/paper/numbers.yaml and the text) must reproduce under every
# rule that names a number or a place, and a clearly different value must not. Depth 32 unless said.
def _rise(layer: int, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    true = np.where(np.arange(1, n + 1) >= layer, 0.8, 0.02)
    return true, np.full(n, 0.02)


def _paper_table2():
    from mapflow_utils import paper

    t = paper.numbers()["table2_cross_frame_accuracy_change"]
    return np.mean(list(t["first_half"].values())), np.mean(list(t["second_half"].values()))


def _paper_table3():
    from mapflow_utils import paper

    t = paper.numbers()["table3_effective_pathways"][paper.MAIN_MODEL]
    return t["full"]["TVBench"], t["pathways"]["TVBench"], t["random"]["TVBench"]


PAPER_AND_DIFFERENT = {
    # Table E(b): cross-frame -11.1% in L6-10 (centre 8); the ImageLLM "barely" (Fig. 2); different: the drop at L30
    "CrossFrameRule": (lambda r: r.verdict(-11.1, -5.0, -1.0, 8, 32), lambda r: r.verdict(-11.1, -5.0, -1.0, 30, 32)),
    # Table 2 means; different: the second half costs as much as the first
    "HalvesRule": (lambda r: r.verdict(*_paper_table2()), lambda r: r.verdict(-1.0, -30.0)),
    # §D.3: k=1 barely, k=5, 9, 13 clear drops (Table E(b) depth of the k=9 drop); different: no window drops
    "WindowsRule": (lambda r: r.verdict([-1.0, -11.0, -11.1, -15.0]), lambda r: r.verdict([-1.0, -2.0, 0.5, -3.0])),
    # Table E(b): video→question -21.5% in L11-15, question→last -19.3% in L16-20; different: reversed
    "Fig3Rule": (lambda r: r.verdict(-21.5, 13, -19.3, 18, -1.0, -1.0, 32),
                 lambda r: r.verdict(-21.5, 28, -19.3, 3, -1.0, -1.0, 32)),
    # Fig. 4: spatial peak in the first layers, temporal in the middle; different: temporal before spatial
    "Fig4Rule": (lambda r: r.verdict(3, 16, 32), lambda r: r.verdict(16, 3, 32)),
    # Fig. 5: "begins" on the first frames with cross-frame attention, not without; different: no change
    "Fig5Rule": (lambda r: r.verdict(0.75, 0.45), lambda r: r.verdict(0.75, 0.76)),
    # Fig. 6: true option→last deep, non-option shallow, a false option raises it; different: the non-option deeper
    "Fig6Rule": (lambda r: r.verdict(-30.0, -3.0, 5.0), lambda r: r.verdict(-3.0, -30.0, -1.0)),
    # Fig. 7: every task's route as the paper's; different: one task
    "RoutesRule": (lambda r: r.verdict(5, 5), lambda r: r.verdict(1, 5)),
    # Fig. 8: "from around the 20th layer" of 32; different: at the very end (layer 30 of 30)
    "RiseRule": (lambda r: r.verdict(*_rise(20)), lambda r: r.verdict(*_rise(30, 30))),
    # App. C: both routes deep; different: neither
    "OpenRouteRule": (lambda r: r.verdict(-20.0, -20.0), lambda r: r.verdict(-1.0, 2.0)),
    # Table 3: 51.5 / 51.2 / 40.1; different: the pathways lose as much as random blocking
    "PathwaysRule": (lambda r: r.verdict(*_paper_table3()), lambda r: r.verdict(51.5, 40.0, 40.1)),
}


@pytest.mark.parametrize("cls", [c for c in RULES if c not in BEYOND], ids=lambda c: c.__name__)
def test_paper_values_reproduce_and_clearly_different_ones_do_not(cls):
    papers, different = PAPER_AND_DIFFERENT[cls.__name__]
    assert papers(cls()) == YES, f"{cls.__name__}: the paper's own values do not reproduce under its rule"
    assert different(cls()) == NO, f"{cls.__name__}: a clearly different value still counts"
