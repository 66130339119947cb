"""The book's widgets: what a reader can choose, and that the choice drives the right figure without a kernel."""

import numpy as np
import pytest

from mapflow_utils import plots, results

TASKS = ["action_antonym", "object_count"]


def _sweep(seed: int) -> results.SweepResult:
    rng = np.random.default_rng(seed)
    tasks = ["action_antonym"] * 3 + ["object_count"] * 2
    return results.SweepResult(change={f: rng.normal(size=(5, 4)) for f in ("a→b", "c→d")}, tasks=tasks,
                               n_seen={"action_antonym": 3, "object_count": 2}, window=1)


def _links(widget) -> list:
    """The jslinks that touch ``widget`` (every live widget, from ipywidgets' registry)."""
    from ipywidgets.widgets.widget import _instances
    from ipywidgets.widgets.widget_link import Link

    return [w for w in _instances.values() if isinstance(w, Link) and widget in (w.source[0], w.target[0])]


def test_lines_give_each_task_and_the_pool():
    sweep = _sweep(0)
    lines = results.Lines.flows(sweep, ["a→b", "c→d"])
    assert lines.curves("object_count")["c→d"][3] == 2 and lines.curves()["a→b"][3] == 5
    np.testing.assert_allclose(lines.curves("action_antonym")["a→b"][0], sweep.change["a→b"][:3].mean(0))
    probs = {"true": np.ones((5, 4)) * 0.5, "false": np.zeros((5, 4)), "tasks": np.array(sweep.tasks)}
    curves = results.ProbabilityLines(probs).curves("object_count")
    assert curves["true option"][3] == 2 and np.allclose(curves["true option"][0], 50)


def test_curve_explorer_has_a_linked_selector_per_level_and_a_figure_per_leaf():
    import ipywidgets as widgets

    a, b = _sweep(0), _sweep(1)
    figures = {"Fig. X": {"pretrained": results.Lines.flows(a, ["a→b"]), "from scratch": results.Lines.flows(b, ["a→b"])},
               "Fig. Y": {"pretrained": results.Lines.flows(a, ["c→d"])}}
    root = plots.curve_explorer(figures, TASKS)
    choose, stack = root.children
    assert isinstance(choose, widgets.Dropdown) and choose.description == "figure"
    assert [label for label, _ in choose.options] == ["Fig. X", "Fig. Y"]
    assert any(l.target == (stack, "selected_index") and l.source == (choose, "index") for l in _links(choose))
    subject_choose, subject_stack = stack.children[0].children
    assert subject_choose.description == "subject" and len(subject_stack.children) == 2
    task_choose, task_stack = subject_stack.children[1].children
    assert [label for label, _ in task_choose.options] == ["action antonym", "object count", "all tasks"]
    assert all(isinstance(im, widgets.Image) and im.value[:4] == b"\x89PNG" for im in task_stack.children)
    # the leaves differ (each is its own subject and task), so the selector shows different figures
    assert len({im.value for im in task_stack.children}) == 3


def test_explorer_keeps_choices_across_branches_and_shows_single_choices_as_labels():
    """Changing "figure" must not reset "task": every task dropdown with the same choices is linked to the others.
    A level with one entry (Fig. Y has one subject) is a label, not a dropdown of one option."""
    import ipywidgets as widgets

    a = _sweep(0)
    figures = {"Fig. X": {"pretrained": results.Lines.flows(a, ["a→b"]), "from scratch": results.Lines.flows(a, ["c→d"])},
               "Fig. Y": {"pretrained": results.Lines.flows(a, ["c→d"])}}
    root = plots.curve_explorer(figures, TASKS)

    def dropdowns(w):
        own = [w] if isinstance(w, widgets.Dropdown) else []
        return own + [d for c in getattr(w, "children", ()) for d in dropdowns(c)]

    tasks = [d for d in dropdowns(root) if d.description == "task"]
    assert len(tasks) == 3 and all(len(d.options) == 3 for d in tasks)
    linked = {frozenset({id(l.source[0]), id(l.target[0])}) for t in tasks for l in _links(t)
              if l.source[1] == l.target[1] == "index" and isinstance(l.target[0], widgets.Dropdown)}
    # three task dropdowns, chained: a-b and b-c, so one choice reaches all of them
    assert len(linked) == 2, "the task dropdowns of different figures/subjects are not linked: a choice resets"
    fig_y = root.children[1].children[1]
    assert isinstance(fig_y.children[0], widgets.Label) and fig_y.children[0].value == "subject: pretrained"
    assert not [d for d in dropdowns(root) if len(d.options) < 2], "a dropdown that offers a single option"


def test_layer_slider_counts_layers_from_one():
    import matplotlib.pyplot as plt

    root = plots.layer_slider([plt.figure() for _ in range(3)])
    (play, slider, labels), stack = root.children[0].children, root.children[1]
    assert slider.readout is False and [l.value for l in labels.children] == [f"layer {i} of 3" for i in (1, 2, 3)]
    assert len(stack.children) == 3
