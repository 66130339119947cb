"""The book's tables: Markdown rendering, the row builders of every chapter's tables (ours beside the paper's), and
the readers of shipped artefacts (training logs, model evaluations). Pure: no model runs here."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from . import flows as F
from . import paper, results
from .data import QADataset
from .synthetic import image_sample
from .models import SUPPORT, family_named
from .paper import numbers, subject_config, subjects


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
        info = paper.task_info(task)
        name, reasoning, paper_q, paper_o = info["name"], info["reasoning"], info["question"], info["options"]
        ex = items[0]
        n_opts = Counter(len(s.candidates) for s in items)
        chance = 100 * sum(c / k for k, c in n_opts.items()) / len(items)
        rows.append([name, reasoning, paper_q, paper_o, ex.question, " / ".join(ex.candidates), len(items),
                     "/".join(str(k) for k in sorted(n_opts)), f"{chance:.1f}"])
    return rows


TASK_HEADERS = ["task", "reasoning type", "paper: question", "paper: options", "ours: question", "ours: options",
                "N", "options", "chance %"]


def eval_rows(evaluation: results.Evaluation, label: str = "") -> list[list[Any]]:
    """Rows ``[label, frames, acc per task…, mean]`` (percent) of a shipped evaluation, one per control."""
    return [[label, mode] + [f"{evaluation.accuracy(mode, t):.1f}" for t in evaluation.tasks]
            + [f"{evaluation.accuracy(mode):.1f}"] for mode in evaluation.controls]


def mean_accuracy(res: dict) -> float:
    """Mean over tasks of the per-task accuracy (percent) of ``{task: (correct, n)}``."""
    return 100 * sum(c / n for c, n in res.values()) / len(res)


def model_rows(model_dirs: dict) -> list[list[Any]]:
    """One row per model folder: parameters, text layers/width, video tokens per frame, training steps and time."""
    import json
    from pathlib import Path

    from .models import smol

    rows = []
    for label, d in model_dirs.items():
        d = Path(d)
        cfg = json.loads((d / "config.json").read_text())
        runs = sorted((d / "training").glob("*/train.json")) if (d / "training").is_dir() else []
        metas = [json.loads(r.read_text()) for r in runs]
        t, v = cfg["text_config"], cfg["vision_config"]
        steps = " + ".join(str(m["steps_done"]) for m in metas) or "?"
        minutes = sum(m["wall_minutes"] for m in metas) if metas else float("nan")
        if smol.is_parts(d):
            params = smol.parameter_count(d) / 1e6
        else:
            params = metas[-1]["parameters"] / 1e6 if metas else float("nan")
        rows.append([label, f"{params:.2f} M", f"{t['num_hidden_layers']} x {t['hidden_size']}",
                     (v["image_size"] // v["patch_size"] // 2) ** 2, steps, f"{minutes:.0f}"])
    return rows


MODEL_HEADERS = ["model", "parameters", "text layers x width", "video tokens / frame", "training steps",
                 "CPU minutes"]


def relative_change(acc: dict, label: str, base: str = "full") -> dict[str, float]:
    """Per-task relative accuracy change (%) of ``acc[label]`` against ``acc[base]`` (``accuracy_under``)."""
    out = {}
    for task, (c, n) in acc[label].items():
        c0 = acc[base][task][0]
        out[task] = float("nan") if c0 == 0 else 100 * (c - c0) / c0
    return out


def mechanism_rows(sweep) -> list[list[Any]]:
    """Per flow: N, the lowest pooled mean %change and its layer (1-indexed), and the mean over layers."""
    rows = []
    for flow in sweep.change:
        mean, lo, hi, n = sweep.summary(flow)
        i = int(np.nanargmin(mean)) if n else 0
        rows.append([flow, n, f"{mean[i]:.1f}" if n else "", i + 1 if n else "",
                     f"{np.nanmean(mean):.1f}" if n else ""])
    return rows


MECHANISM_HEADERS = ["flow blocked", "N", "lowest mean %change", "at layer", "mean over layers"]


def table2_rows(acc: dict, tasks: Sequence[str]) -> list[list[Any]]:
    """Table 2 beside the paper's: relative accuracy change per task for each half, and our full accuracy."""
    theirs = paper.numbers()["table2_cross_frame_accuracy_change"]
    rows = []
    for part in [k for k in acc if k != "full"]:
        ours = relative_change(acc, part)
        key = part.replace(" ", "_")
        rows.append([part, "paper"] + [f"{theirs[key][t]:.1f}" if key in theirs and t in theirs[key] else ""
                                       for t in tasks])
        rows.append([part, "ours"] + [f"{ours.get(t, float('nan')):.1f}" for t in tasks])
    rows.append(["(full attention)", "ours: accuracy %"] + [f"{100 * acc['full'][t][0] / acc['full'][t][1]:.1f}"
                                                            if t in acc["full"] else "" for t in tasks])
    return rows


def overall_accuracy(res: dict) -> float:
    """Accuracy (%) over all questions of ``{task: (correct, n)}``."""
    return 100 * sum(c for c, _ in res.values()) / max(1, sum(n for _, n in res.values()))


def random_accuracy(acc: dict, random_labels: Sequence[str]) -> tuple[float, float]:
    """Mean and standard deviation (%) of the overall accuracy over the random-blocking draws."""
    rand = [overall_accuracy(acc[l]) for l in random_labels]
    return float(np.mean(rand)), float(np.std(rand))


def pathway_rows(results: dict) -> list[list[Any]]:
    """Rows ``[label, edges kept, overall %, per-task %…]`` for several
    :class:`~mapflow_utils.results.PathwayResult` (``{name: result}``; labels ``"name, full"`` …)."""
    return [[f"{name}, {row[0]}", "100%" if row[0] == "full" else f"{100 * r.kept():.0f}%"] + row[1:]
            for name, r in results.items() for row in accuracy_rows(r.acc)]


def read_run(run_dir) -> tuple[list[dict], dict]:
    """A training run's ``log.jsonl`` records and ``train.json`` metadata."""
    import json
    from pathlib import Path

    run_dir = Path(run_dir)
    records = [json.loads(l) for l in (run_dir / "log.jsonl").read_text().splitlines() if l.strip()]
    return records, json.loads((run_dir / "train.json").read_text())


def training_logs(model_dir) -> dict[str, list[dict]]:
    """Loss records of every training run shipped with a model (``<model>/training/<run>``), by run name (folders
    without a ``log.jsonl``, such as ``attempts/``, are not runs)."""
    from pathlib import Path

    return {run.name: read_run(run)[0] for run in sorted((Path(model_dir) / "training").glob("*"))
            if (run / "log.jsonl").is_file()}


def letter_attempt(run_dir, seed: int = 999, n: int = 200) -> dict:
    """The letter attempt's curve and its summary: records, steps, minutes, final letter accuracy and the chance
    level of the held-out image questions it was measured on (mean of 1 / number of options)."""

    records, meta = read_run(run_dir)
    accs = [r["letter_accuracy"] for r in records if "letter_accuracy" in r]
    chance = float(np.mean([1 / len(c) for i in range(n) for _, c, _ in image_sample(seed, i).qa]))
    return {"records": records, "steps": meta["steps_done"], "minutes": meta["wall_minutes"],
            "final": accs[-1] if accs else float("nan"), "chance": chance}


def chance(samples) -> dict[str, list[float]]:
    """Expected hits of uniform guessing per task, ``{task: [expected correct, n]}`` (rows for accuracy_rows)."""
    out: dict[str, list[float]] = {}
    for s in samples:
        c = out.setdefault(s.task, [0.0, 0])
        c[0] += 1 / len(s.candidates)
        c[1] += 1
    return out


#: Fewer questions than this behind a curve or a task's accuracy: the book says the panel is too small to read.
SMALL_N = 10


def finding_table(accuracy: dict[str, dict[str, list[int]]], chance_by_task: dict[str, list[float]]) -> str:
    """The opening box's accuracy table (Markdown): per task, the subject's accuracy on the chapter's questions with
    N, chance, and one random frame (``accuracy``: :func:`~mapflow_utils.experiments.subject_accuracy`)."""
    tasks = list(accuracy["all"])

    def pct(c: list) -> str:
        return f"{100 * c[0] / c[1]:.0f}" if c[1] else "n/a"

    def small(n: int) -> str:
        return f"{n} (small)" if n < SMALL_N else str(n)

    rows = [[t.replace("_", " "), pct(accuracy["all"][t]), pct(chance_by_task[t]),
             pct(accuracy["one_random"].get(t, [0, 0])), small(accuracy["all"][t][1])] for t in tasks]
    return markdown_table(rows, ["task", "all %", "chance %", "1 frame %", "N"])


def paper_table_a_rows() -> tuple[list[str], list[list[Any]]]:
    """The paper's Table A (LongVideoBench, LLaVA-NeXT-7B-Video-FT): headers and rows."""
    nums = paper.numbers()
    t, kept = nums["tableA_long_videos"], nums["table3_effective_pathways"]["LLaVA-NeXT-7B-Video-FT"]["kept_share"]
    cats = list(t["full"])
    rows = [["full causal", "100%"] + [t["full"][c] for c in cats],
            ["effective pathways", f"{100 * kept:.0f}%"] + [t["pathways"][c] for c in cats]]
    return ["attention (paper, 7B)", "edges kept"] + [c.replace("_", " ") for c in cats], rows


def accuracy_rows(acc: dict) -> list[list[Any]]:
    """Rows ``[label, overall %, per-task %…]`` of ``accuracy_under``'s result."""
    return [[label, f"{overall_accuracy(res):.1f}"] + [f"{100 * c / n:.1f}" for c, n in res.values()]
            for label, res in acc.items()]


def ranges_rows(ranges=None, models: Sequence[str] | None = None) -> list[list[Any]]:
    """Table E(a): the paper's effective layer ranges per model (all, or ``models``), then ours if given
    (1-indexed, inclusive)."""
    theirs = paper.numbers()["tableE_layer_ranges"]
    rows = [[k] + [f"L{a}-{b}" for a, b in v.values()] for k, v in theirs.items() if models is None or k in models]
    if ranges is None:
        return rows
    ours = (ranges.cross_frame, ranges.video_question, ranges.question_last)
    return rows + [["ours"] + [_range_text(r) for r in ours]]


def paper_table_e_rows(model: str = "LLaVA-NeXT-7B-Video-FT") -> tuple[list[str], list[list[Any]]]:
    """Table E(b) of one of the paper's models: header (5-layer intervals) and rows per flow."""
    e = paper.numbers()["tableE_interval_change"][model]
    n = max(len(v) for v in e.values())
    size = paper.numbers()["setup"]["interval"]
    return ([paper.interval_label(i, size) for i in range(n)],
            [[f] + [f"{v:.1f}" for v in vals] for f, vals in e.items()])


def run_outcome(run: dict, detail: bool = False) -> str:
    """One run of :func:`mapflow_utils.runner.run_on_classes` in words: ``ok``, ``clear stop: <guard>`` (with its message
    when ``detail``), or the error."""
    if "error" not in run:
        return "ok"
    if "stop" in run:
        return f"clear stop: {run['stop'] if detail else run['stop'].split(':')[0]}"
    return run["error"]


def class_run_rows(runs: Sequence[dict]) -> list[list[Any]]:
    """Rows of the "your model" page from :func:`mapflow_utils.runner.run_on_classes`: class, text model, video
    layout, ok/error, seconds, and every ``*_verdict`` the chapter glued."""

    rows = []
    for r in runs:
        fam = family_named(r["class"])
        verdicts = "; ".join(f"{k[:-len('_verdict')]}: {v}" for k, v in r["glue"].items() if k.endswith("_verdict"))
        rows.append([r["class"], fam.text_family if fam else "?", fam.frames if fam else "?", run_outcome(r),
                     f"{r['seconds']:.0f}", verdicts])
    return rows


def real_commands(chapter: str) -> list[list[str]]:
    """Per supported class: the ``mapflow run`` command for its public example checkpoint on a GPU (the paper's own
    subjects have their configs instead: :func:`paper_subject_rows`)."""

    own = {s["video_model"] for s in subjects().values()}
    return [[name, f"`mapflow run {chapter} -p video_model {f.example} -p data_dir /path/to/TVBench "
                   f"-p answer_format letter -p window 9 -p n_per_task 200 -p device cuda "
                   f"--name {name.replace('ForConditionalGeneration', '').lower()}`"]
            for name, f in SUPPORT.items() if f.example not in own]


def paper_subject_rows(chapter: str) -> list[list[Any]]:
    """Rows of the "your model" page's paper subjects: the model, its depth, video tokens and the knockout window of
    its config, the command that runs ``chapter`` in the paper's setup, and the paper's numbers it should give back
    (Table 3's TVBench accuracy with full attention; Table E(a)'s effective layer ranges)."""

    acc, ranges = numbers()["table3_effective_pathways"], numbers()["tableE_layer_ranges"]
    rows = []
    for name, s in subjects().items():
        r = ranges[name]
        spans = ", ".join(f"{results.RANGED_OWN.get(k, k)} L{a}-{b}" for k, (a, b) in r.items())
        rows.append([name, s["layers"], s["video_tokens"].replace("x", "×"), subject_config(name)["window"],
                     f"`mapflow run {chapter} -f configs/paper/{s['slug']}.yaml`",
                     f"{acc[name]['full']['TVBench']:.1f}", spans])
    return rows


def _range_text(rng) -> str:
    return "none" if rng is None else f"L{rng[0] + 1}-{rng[1] + 1}" if rng[1] > rng[0] else f"L{rng[0] + 1}"


def ranges_text(r) -> str:
    """A :class:`~mapflow_utils.results.Ranges` in words, 1-indexed (video→last shown when it has a range)."""
    parts = [(F.CROSS_FRAME, r.cross_frame), (F.VIDEO_QUESTION, r.video_question),
             (F.QUESTION_LAST, r.question_last)]
    if r.video_last is not None:
        parts.append((F.VIDEO_LAST, r.video_last))
    return ", ".join(f"{name} {_range_text(rng)}" for name, rng in parts)


def scale_rows(results: dict) -> list[list[Any]]:
    """App. A/B side by side, one row per model: size, accuracy, window, App. E ranges and Table 3 (the verdicts
    follow in their own table)."""
    rows = []
    for name, r in results.items():
        acc = r.pathways.acc
        r_mean, r_sd = random_accuracy(acc, r.pathways.random_labels)
        rows.append([name, r.n_layers, f"{r.n_parameters / 1e6:.2f}M", f"{overall_accuracy(acc['full']):.1f}",
                     r.window, _range_text(r.ranges.cross_frame), _range_text(r.ranges.video_question),
                     _range_text(r.ranges.question_last), f"{overall_accuracy(acc['pathways']):.1f}",
                     f"{r_mean:.1f} ± {r_sd:.1f}", f"{100 * r.pathways.kept():.0f}%"])
    return rows


SCALE_HEADERS = ["model", "layers", "parameters", "accuracy", "window", F.CROSS_FRAME, F.VIDEO_QUESTION,
                 F.QUESTION_LAST, "pathways", "random", "edges kept"]


def table_e_rows(sweep, size: int, task: str | None = results.RANGE_TASK) -> list[list]:
    """Table E(b) rows (ours): interval means per ranged flow, with the 1-indexed interval labels as header row."""
    if task is not None and task not in set(sweep.tasks):
        task = None
    rows = []
    for key, flow in results.RANGED_OWN.items():
        if flow not in sweep.change:
            continue
        means = results.interval_means(sweep.summary(flow, task)[0], size)
        rows.append([flow] + [f"{m:.1f}" for _, _, m in means])
    header = [f"L{lo + 1}-{hi + 1}" if hi > lo else f"L{lo + 1}" for lo, hi, _ in
              results.interval_means(sweep.summary(results.RANGED["cross_frame"], task)[0], size)]
    return [header] + rows


def pathway_texts(res) -> dict[str, str]:
    """Glue-ready texts of a :class:`~mapflow_utils.results.PathwayResult`: edges kept both ways (%), the
    pathways' overall accuracy and the random draws' mean ± sd."""
    r_mean, r_sd = random_accuracy(res.acc, res.random_labels)
    return {"kept": f"{100 * res.kept():.0f}", "kept_vq": f"{100 * res.kept('video_question'):.0f}",
            "pathways": f"{overall_accuracy(res.acc['pathways']):.1f}", "random": f"{r_mean:.1f} ± {r_sd:.1f}"}


def eval_texts(evaluation: results.Evaluation) -> dict[str, str]:
    """Glue-ready mean accuracies (%) of a shipped evaluation, per control (``all``, ``shuffled`` …)."""
    return {mode: f"{evaluation.accuracy(mode):.1f}" for mode in evaluation.controls}


