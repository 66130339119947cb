"""The paper's facts, read from ``data/paper/numbers.yaml`` and nowhere else (no number of the paper is typed in code).

Derived texts (e.g. Fig. 3's deepest interval of the 7B model) are computed here from those numbers.
"""

from __future__ import annotations

import functools

from .paths import DATA

NUMBERS = DATA / "paper" / "numbers.yaml"
#: The paper's main model, whose numbers the chapters show beside ours.
MAIN_MODEL = "LLaVA-NeXT-7B-Video-FT"


@functools.lru_cache(maxsize=1)
def numbers() -> dict:
    """The parsed ``numbers.yaml`` (cached; treat it as read-only)."""
    import yaml

    return yaml.safe_load(NUMBERS.read_text())


def claim_text(key: str) -> str:
    """The paper's claim, in words, by key (``fig2``, ``fig3``, … ``appC``, ``figT``)."""
    return numbers()["claims"][key]


def stated(key: str) -> str:
    """What the paper reports for a claim that has no single number (``paper_values`` in numbers.yaml)."""
    return numbers()["paper_values"][key]


def interval_label(i: int, size: int) -> str:
    """1-indexed label of the ``i``-th interval of ``size`` layers: ``L11-15``."""
    return f"L{size * i + 1}-{size * i + size}"


def deepest_interval(flow: str, model: str = MAIN_MODEL) -> tuple[float, str]:
    """Table E(b): the most negative interval mean of ``flow`` for ``model`` and its label, ``(-21.5, "L11-15")``."""
    curve = numbers()["tableE_interval_change"][model][flow]
    i = min(range(len(curve)), key=lambda j: curve[j])
    return curve[i], interval_label(i, numbers()["setup"]["interval"])


def routes() -> dict[str, str]:
    """Fig. 7: the paper's route from the video to the true option, per task."""
    return dict(numbers()["fig7_routes"])


def task_info(task: str) -> dict[str, str]:
    """Table 1 for one task: ``name``, ``reasoning``, the paper's example ``question`` and ``options`` (empty
    strings and the task's own name for a task the paper does not list)."""
    row = numbers()["table1_tasks"].get(task, {})
    return {"name": row.get("name", task), "reasoning": row.get("reasoning", ""),
            "question": row.get("question", ""), "options": row.get("options", "")}


#: Where the one-command configs of the paper's subjects live (written by
#: :func:`mapflow_utils.experiments.write_subject_configs`).
CONFIGS = DATA.parent / "configs" / "paper"


def subjects() -> dict[str, dict]:
    """The paper's models: name → ``slug``, ``video_model``, ``image_model`` (hub ids), ``video_tokens``, and
    ``layers`` (from the setup)."""
    layers = numbers()["setup"]["layers"]
    return {name: dict(s, layers=layers[name]) for name, s in numbers()["subjects"].items()}
