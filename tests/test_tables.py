"""The book's table builders on the shipped models' own files."""

import json

import pytest

from mapflow_utils import paths, tables


#: The frame controls every shipped eval.json holds (the SmolLM2 pair's add the content format and a fresh split).
CONTROLS = ["all", "first", "last", "first_content", "last_content", "one_random", "shuffled"]


@pytest.mark.parametrize("model", ["smol-videollm-ft", "tiny-videollm-ft"])
def test_one_reader_tells_controls_from_image_qa_and_settings(model):
    """A shipped eval.json mixes per-task accuracies with image QA, per-question hits and settings (the SmolLM2
    pair's ``answer_format``, ``controls_per_task``); results.Evaluation reads it by one rule, and only the
    controls become rows, each with its mean."""
    from mapflow_utils.results import Evaluation

    raw = json.loads((paths.ROOT / "data" / "models" / model / "eval.json").read_text())
    ev = Evaluation.read(paths.ROOT / "data" / "models" / model)
    smol = model.startswith("smol")
    assert list(ev.controls) == CONTROLS + (["content", "fresh_split"] if smol else [])
    assert set(ev.image_qa) == ({"image_qa", "image_qa_content"} if smol else {"image_qa"})
    assert "hits" in ev.other and ("answer_format" in ev.other) == smol
    rows = tables.eval_rows(ev, model)
    assert [r[1] for r in rows] == list(ev.controls)
    for row, setting in zip(rows, ev.controls):
        accs = [100 * c / n for c, n in (raw[setting][t] for t in ev.tasks)]
        assert row[2:] == [f"{a:.1f}" for a in accs] + [f"{sum(accs) / len(accs):.1f}"]


def test_finding_table_gives_accuracy_chance_one_frame_and_flags_small_n():
    from mapflow_utils.data import QASample

    acc = {"all": {"a": [3, 4], "b": [10, 20]}, "one_random": {"a": [1, 4], "b": [5, 20]}}
    samples = [QASample("a", i, "v.mp4", "q", ("x", "y"), "x") for i in range(4)] + \
        [QASample("b", i, "v.mp4", "q", ("x", "y", "z", "w"), "x") for i in range(20)]
    text = tables.finding_table(acc, tables.chance(samples))
    assert "| a | 75 | 50 | 25 | 4 (small) |" in text and "| b | 50 | 25 | 25 | 20 |" in text
