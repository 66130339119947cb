"""Helpers for the book's pages: tables as Markdown, the data chapter's task table."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from .data import TASK_INFO, QADataset


def markdown_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A GitHub/MyST Markdown table; ``|`` in cells is escaped."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def task_rows(ds: QADataset) -> list[list[Any]]:
    """The book's Table 1: per task, the paper's example beside ours, N, options per question and chance (%)."""
    rows = []
    for task, items in ds.by_task().items():
        name, reasoning, paper_q, paper_o = TASK_INFO.get(task, (task, "", "", ""))
        ex = items[0]
        n_opts = Counter(len(s.candidates) for s in items)
        chance = 100 * sum(c / k for k, c in n_opts.items()) / len(items)
        rows.append([name, reasoning, paper_q, paper_o, ex.question, " / ".join(ex.candidates), len(items),
                     "/".join(str(k) for k in sorted(n_opts)), f"{chance:.1f}"])
    return rows


TASK_HEADERS = ["task", "reasoning type", "paper: question", "paper: options", "ours: question", "ours: options",
                "N", "options", "chance %"]


def eval_rows(evaluation: dict, label: str = "") -> list[list[Any]]:
    """Rows ``[label, frames, acc per task…, mean]`` (percent) of a shipped ``eval.json``."""
    tasks = list(evaluation["all"])
    rows = []
    for mode, res in evaluation.items():
        if mode == "image_qa":
            continue
        accs = [100 * res[t][0] / res[t][1] for t in tasks]
        rows.append([label, mode] + [f"{a:.1f}" for a in accs] + [f"{sum(accs) / len(accs):.1f}"])
    return rows


def mean_accuracy(res: dict) -> float:
    """Mean over tasks of the per-task accuracy (percent) of ``{task: (correct, n)}``."""
    return 100 * sum(c / n for c, n in res.values()) / len(res)


def model_rows(model_dirs: dict) -> list[list[Any]]:
    """One row per model folder: parameters, text layers/width, video tokens per frame, training steps and time."""
    import json
    from pathlib import Path

    rows = []
    for label, d in model_dirs.items():
        d = Path(d)
        cfg = json.loads((d / "config.json").read_text())
        runs = sorted((d / "training").glob("*/train.json")) if (d / "training").is_dir() else []
        metas = [json.loads(r.read_text()) for r in runs]
        t, v = cfg["text_config"], cfg["vision_config"]
        steps = " + ".join(str(m["steps_done"]) for m in metas) or "?"
        minutes = sum(m["wall_minutes"] for m in metas) if metas else float("nan")
        params = metas[-1]["parameters"] / 1e6 if metas else float("nan")
        rows.append([label, f"{params:.2f} M", f"{t['num_hidden_layers']} x {t['hidden_size']}",
                     (v["image_size"] // v["patch_size"] // 2) ** 2, steps, f"{minutes:.0f}"])
    return rows


MODEL_HEADERS = ["model", "parameters", "text layers x width", "video tokens / frame", "training steps",
                 "CPU minutes"]
