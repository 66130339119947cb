"""The book's table builders on the shipped models' own files."""

import json

import pytest

from mapflow_utils import paths, tables


@pytest.mark.parametrize("model", ["smol-videollm-ft", "tiny-videollm-ft"])
def test_eval_rows_has_one_row_per_frame_setting(model):
    """A shipped eval.json mixes per-task accuracies with image QA, per-question hits and settings (the SmolLM2
    pair's ``answer_format``, ``controls_per_task``); only the per-task entries become rows, each with its mean."""
    evaluation = json.loads((paths.ROOT / "data" / "models" / model / "eval.json").read_text())
    tasks = list(evaluation["all"])
    settings = [k for k, v in evaluation.items() if isinstance(v, dict) and set(v) == set(tasks)]
    rows = tables.eval_rows(evaluation, model)
    assert [r[1] for r in rows] == settings and "all" in settings
    for row, setting in zip(rows, settings):
        accs = [100 * c / n for c, n in (evaluation[setting][t] for t in tasks)]
        assert row[2:] == [f"{a:.1f}" for a in accs] + [f"{sum(accs) / len(accs):.1f}"]


def test_finding_table_gives_accuracy_chance_one_frame_and_flags_small_n():
    from mapflow_utils.data import QASample

    acc = {"all": {"a": [3, 4], "b": [10, 20]}, "one_random": {"a": [1, 4], "b": [5, 20]}}
    samples = [QASample("a", i, "v.mp4", "q", ("x", "y"), "x") for i in range(4)] + \
        [QASample("b", i, "v.mp4", "q", ("x", "y", "z", "w"), "x") for i in range(20)]
    text = tables.finding_table(acc, tables.chance(samples))
    assert "| a | 75 | 50 | 25 | 4 (small) |" in text and "| b | 50 | 25 | 25 | 20 |" in text
