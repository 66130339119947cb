"""Every verdict rule gives every verdict it can give, and its rule text is generated from the same thresholds the
logic uses (change a threshold: the text and the verdict move together)."""

import dataclasses

import numpy as np
import pytest

from mapflow_utils import rules as R

YES, PART, NO = R.VERDICTS


def test_cross_frame_rule():
    r = R.CrossFrameRule()
    assert r.verdict(-20, -15, -2) == YES
    assert r.verdict(-20, 1, -2) == PART  # band crosses 0
    assert r.verdict(-20, -15, -15) == PART  # the ImageLLM drops as much
    assert r.verdict(-6, -3, 0) == PART
    assert r.verdict(-2, -1, 0) == NO
    assert r.verdict(-20, -15, 30) == YES  # an ImageLLM whose probability rises has no drop
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
    assert r.verdict(-20, 5, -25, 20, -1, -1) == YES
    assert r.verdict(-20, 5, -25, 20, -15, -1) == PART  # video→last matters too
    assert r.verdict(-20, 20, -25, 5, 0, 0) == NO  # wrong order
    assert r.verdict(-2, 5, -3, 20, 0, 0) == NO


def test_fig4_rule():
    r = R.Fig4Rule()
    assert r.verdict(2, 15, 30) == YES
    assert r.verdict(20, 25, 30) == PART
    assert r.verdict(15, 3, 30) == NO
    assert r.verdict(None, 3, 30) == NO


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


RULES = [R.CrossFrameRule, R.HalvesRule, R.WindowsRule, R.Fig3Rule, R.Fig4Rule, R.Fig5Rule, R.Fig6Rule, R.RoutesRule,
         R.RiseRule, R.OpenRouteRule, R.PathwaysRule, R.AboveChanceRule]


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
