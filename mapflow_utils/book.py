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
