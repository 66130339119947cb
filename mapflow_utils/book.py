"""Helpers for the book's pages: tables as Markdown, the data chapter's task table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

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
        if mode in ("image_qa", "hits"):
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

    from . import smol

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


# ------------------------------------------------------------------------------------------------ claims

VERDICTS = ("reproduces", "partly", "does not reproduce")


def paper_numbers() -> dict:
    """The paper's numbers (``data/paper/numbers.yaml``)."""
    import yaml

    from .paths import DATA

    return yaml.safe_load((DATA / "paper" / "numbers.yaml").read_text())


def grade(strong: bool, weak: bool) -> str:
    """``reproduces`` when the strong condition holds, ``partly`` when only the weak one does."""
    return VERDICTS[0] if strong else VERDICTS[1] if weak else VERDICTS[2]


@dataclass
class Claim:
    """One claim of the paper, its number, ours, and the verdict by a stated rule."""

    figure: str
    claim: str
    paper: str
    ours: str
    verdict: str
    rule: str


def claims_table(claims: Sequence["Claim"]) -> str:
    """The chapter's verdict table (Markdown)."""
    return markdown_table([[c.figure, c.claim, c.paper, c.ours, f"**{c.verdict}**", c.rule] for c in claims],
                          ["figure", "the paper's claim", "paper", "ours", "verdict", "rule"])


def _early(n_layers: int) -> slice:
    """Early-to-middle layers: the first two thirds of the depth."""
    return slice(0, max(1, round(2 * n_layers / 3)))


def claim_cross_frame(video, image, figure: str = "Fig. 2", claim: str = "fig2") -> Claim:
    """Fig. 2 (and Fig. Q, open-ended): cross-frame knockout in early-to-middle layers hurts the Video-FT, barely
    its ImageLLM base.

    ``video``/``image``: SweepResults with a ``cross-frame`` flow; ``claim``: key of the paper's claim text. Rule:
    take the most negative pooled mean %change over the first two thirds of the layers; reproduces if the
    Video-FT's is <= -10 % with the 95% interval below 0 and the ImageLLM's drop (if any) is less than half as
    deep; partly if the Video-FT's is <= -5 %.
    """
    def lowest(r):
        mean, lo, hi, n = r.summary("cross-frame")
        sl = _early(len(mean))
        i = int(np.nanargmin(mean[sl]))
        return float(mean[sl][i]), float(hi[sl][i]), i + 1, n

    v, v_hi, v_layer, nv = lowest(video)
    m, _, m_layer, nm = lowest(image)
    strong = v <= -10 and v_hi < 0 and -m < -v / 2  # an ImageLLM whose probability rises has no drop
    return Claim(figure, paper_numbers()["claims"][claim], "qualitative (drops in early-middle layers)",
                 f"Video-FT {v:.1f}% at layer {v_layer} (N={nv}); ImageLLM {m:.1f}% at layer {m_layer} (N={nm})",
                 grade(strong, v <= -5), "lowest pooled mean in the first 2/3 of the layers: Video-FT <= -10% "
                 "(95% CI below 0) and ImageLLM's drop (if any) less than half as deep; partly if Video-FT <= -5%")


def relative_change(acc: dict, label: str, base: str = "full") -> dict[str, float]:
    """Per-task relative accuracy change (%) of ``acc[label]`` against ``acc[base]`` (``accuracy_under``)."""
    out = {}
    for task, (c, n) in acc[label].items():
        c0 = acc[base][task][0]
        out[task] = float("nan") if c0 == 0 else 100 * (c - c0) / c0
    return out


def claim_halves(acc: dict) -> Claim:
    """Table 2: blocking cross-frame attention in the first half of the layers costs accuracy, in the second half
    almost nothing. Rule: mean over tasks of the relative accuracy change; reproduces if the first half's is
    <= -10 % and the second half's within ±5 %; partly if the first half costs more than the second."""
    paper = paper_numbers()["table2_cross_frame_accuracy_change"]
    first = np.nanmean(list(relative_change(acc, "first half").values()))
    second = np.nanmean(list(relative_change(acc, "second half").values()))
    p1, p2 = np.mean(list(paper["first_half"].values())), np.mean(list(paper["second_half"].values()))
    return Claim("Table 2", "Blocking cross-frame attention in the first half of the layers costs accuracy; in the "
                 "second half it barely does.", f"first {p1:.1f}%, second {p2:.1f}% (mean of 5 tasks)",
                 f"first {first:.1f}%, second {second:.1f}%", grade(first <= -10 and abs(second) <= 5,
                                                                    first < second),
                 "mean relative accuracy change: first half <= -10% and |second half| <= 5%; partly if first < "
                 "second")


def claim_windows(results: dict) -> Claim:
    """§D.3 / Fig. T: a 1-layer window barely changes the probability, larger windows give clear drops. Rule:
    reproduces if the smallest window's lowest pooled mean is above -5 % and every larger one's is below -10 %;
    partly if the drop deepens with the window."""
    lows = {k: float(np.nanmin(r.summary("cross-frame")[0])) for k, r in sorted(results.items())}
    ks = list(lows)
    strong = lows[ks[0]] > -5 and all(lows[k] <= -10 for k in ks[1:])
    weak = all(lows[a] >= lows[b] for a, b in zip(ks, ks[1:]))
    return Claim("Fig. T (§D.3)", paper_numbers()["claims"]["figT"], "k=1: barely; k=5,9,13: clear drops",
                 ", ".join(f"k={k}: {v:.1f}%" for k, v in lows.items()), grade(strong, weak),
                 "lowest pooled mean: smallest window > -5% and the others <= -10%; partly if deeper with k")


def _lowest(result, flow: str, task: str | None = None) -> tuple[float, int, int]:
    """Lowest pooled mean %change of ``flow``: (value, 1-indexed layer, N)."""
    mean, lo, hi, n = result.summary(flow, task)
    if n == 0 or np.all(np.isnan(mean)):
        return float("nan"), 0, n
    i = int(np.nanargmin(mean))
    return float(mean[i]), i + 1, n


def claim_fig3(result) -> Claim:
    """Fig. 3: video→question in early-middle layers, question→last later; video→last and last→last matter little.
    Rule: reproduces if video→question and question→last both reach <= -10 % with video→question's lowest layer
    before question→last's, and video→last and last→last stay shallower than half the deeper of the two; partly if
    the order holds and one of them reaches <= -5 %."""
    vq, lq, n = _lowest(result, "video→question")
    ql, lql, _ = _lowest(result, "question→last")
    vl, lvl, _ = _lowest(result, "video→last")
    ll, lll, _ = _lowest(result, "last→last")
    deep = min(vq, ql)
    strong = vq <= -10 and ql <= -10 and lq < lql and min(vl, ll) > deep / 2
    weak = lq <= lql and min(vq, ql) <= -5
    ours = (f"video→question {vq:.1f}% (layer {lq}), question→last {ql:.1f}% (layer {lql}), video→last {vl:.1f}% "
            f"(layer {lvl}), last→last {ll:.1f}% (layer {lll}); N={n}")
    return Claim("Fig. 3", paper_numbers()["claims"]["fig3"], "7B, Table E(b): video→question -21.5% (L11-15), "
                 "question→last -19.3% (L16-20)", ours, grade(strong, weak),
                 "lowest pooled means: both <= -10% and video→question earlier; video→last, last→last shallower "
                 "than half; partly if the order holds and one <= -5%")


def claim_fig4(norm: dict, n_layers: int) -> Claim:
    """Fig. 4: spatial keywords peak in very early layers, temporal keywords in middle layers. Rule on the normalised
    frequencies: reproduces if the spatial peak lies in the first third and the temporal peak at least one layer
    later; partly if the temporal peak is later at all."""
    sp, tp = norm.get("spatial"), norm.get("temporal")
    if sp is None or tp is None or np.all(np.isnan(sp)) or np.all(np.isnan(tp)):
        return Claim("Fig. 4", paper_numbers()["claims"]["fig4"], "qualitative", "too few keyword hits to tell",
                     VERDICTS[2], "needs keywords with enough top-1 hits")
    ps, pt = int(np.nanargmax(sp)) + 1, int(np.nanargmax(tp)) + 1
    strong = ps <= max(1, round(n_layers / 3)) and pt >= ps + 1
    return Claim("Fig. 4", paper_numbers()["claims"]["fig4"], "spatial early, temporal middle (13B, Action Sequence)",
                 f"spatial peak at layer {ps}, temporal peak at layer {pt}", grade(strong, pt > ps),
                 "normalised top-1 frequency: spatial peak in the first third and temporal peak >= 1 layer later; "
                 "partly if later at all")


def start_share(per_frame: np.ndarray) -> np.ndarray:
    """Share of the attention on the video that falls on its first half of frames, per layer."""
    t = per_frame.shape[-1]
    return per_frame[..., : t // 2].sum(-1) / per_frame.sum(-1)


def claim_fig5(full: np.ndarray, blocked: np.ndarray, layers: slice) -> Claim:
    """Fig. 5: with cross-frame attention, "begins" attends to the start of the video; without it, to the
    positionally close (late) frames. Rule, over the chosen layers: reproduces if the start share is > 0.5 with
    cross-frame attention and drops by > 0.1 without it; partly if it drops at all."""
    a, b = float(start_share(full)[layers].mean()), float(start_share(blocked)[layers].mean())
    return Claim("Fig. 5", paper_numbers()["claims"]["fig5"], "qualitative (7B, layers 11-20)",
                 f"share of 'begins' attention on the first half of the frames: {a:.2f} with, {b:.2f} without "
                 "cross-frame attention", grade(a > 0.5 and b < a - 0.1, b < a - 0.02),
                 "start share > 0.5 with cross-frame attention and > 0.1 lower without; partly if > 0.02 lower")


def claim_fig6(result) -> Claim:
    """Fig. 6: the last token reads the true option, not the non-option question; blocking a false option can raise
    the probability. Rule: reproduces if true option→last reaches <= -10 % and deeper than non-option question→last,
    and false options→last has a positive mean at some layer; partly if true option→last is the deeper one."""
    t, lt, n = _lowest(result, "true option→last")
    q, lq, _ = _lowest(result, "non-option question→last")
    f_mean = result.summary("false options→last")[0]
    f = float(np.nanmax(f_mean)) if len(f_mean) else float("nan")
    return Claim("Fig. 6", paper_numbers()["claims"]["fig6"], "qualitative", f"true option→last {t:.1f}% (layer "
                 f"{lt}), non-option question→last {q:.1f}% (layer {lq}), false options→last up to {f:+.1f}%; N={n}",
                 grade(t <= -10 and t < q and f > 0, t < q),
                 "true option→last <= -10% and deeper than non-option→last, false options→last > 0 somewhere; "
                 "partly if true option→last is deeper")


PAPER_ROUTES = {"action_antonym": "direct", "action_sequence": "direct", "scene_transition": "direct",
                "moving_direction": "via question", "object_count": "both"}


def routes(result, threshold: float = -10.0) -> dict[str, str]:
    """Fig. 7 per task: ``direct`` (video→true option), ``via question`` (video→non-option question and
    non-option question→true option), ``both`` or ``neither``, each route counting when its lowest pooled mean is
    <= ``threshold``."""
    out = {}
    for task in sorted(set(result.tasks)):
        d = _lowest(result, "video→true option", task)[0] <= threshold
        via = (_lowest(result, "video→non-option question", task)[0] <= threshold and
               _lowest(result, "non-option question→true option", task)[0] <= threshold)
        out[task] = "both" if d and via else "direct" if d else "via question" if via else "neither"
    return out


def claim_fig7(result) -> Claim:
    """Fig. 7: the route from the video to the true option per task. Rule: reproduces if every task's route matches
    the paper's, partly if at least two do."""
    ours = routes(result)
    match = sum(ours.get(t) == r for t, r in PAPER_ROUTES.items())
    return Claim("Fig. 7", paper_numbers()["claims"]["fig7"],
                 ", ".join(f"{t}: {r}" for t, r in PAPER_ROUTES.items()),
                 ", ".join(f"{t}: {r}" for t, r in ours.items()), grade(match == len(PAPER_ROUTES), match >= 2),
                 "a route counts when its lowest pooled mean <= -10%; reproduces if all 5 tasks match, partly if "
                 ">= 2")


def claim_fig8(true: np.ndarray, false: np.ndarray, figure: str = "Fig. 8", claim: str = "fig8",
               paper: str = "7B: rises after ~layer 16 of 32", what: str = "option") -> Claim:
    """Fig. 8 (and Fig. S, open-ended): the true answer's probability at the last position rises sharply right after
    the middle layers, without first favouring false ones. ``true``/``false``: mean probability per layer. Rule:
    reproduces if it first reaches half its final value in the second half of the layers and never trails the false
    answers' mean by more than 1 point before that; partly if it ends above the false ones and rises after the first
    third."""
    n = len(true)
    final = true[-1]
    rise = int(np.argmax(true >= final / 2)) + 1 if final > 0 else n
    ahead = np.all(false[: rise - 1] - true[: rise - 1] <= 0.01)
    strong = rise > n / 2 and ahead and final > false[-1]
    weak = final > false[-1] and rise > n / 3
    return Claim(figure, paper_numbers()["claims"][claim], paper,
                 f"true {what} reaches half its final probability ({100 * final:.1f}%) at layer {rise} of {n}; "
                 f"false {what}s end at {100 * false[-1]:.1f}%", grade(strong, weak),
                 f"rise (half of final) in the second half of the layers, false {what}s never ahead by > 1 point "
                 "before; partly if it ends above them and rises after the first third")


def claim_fig_r(result, threshold: float = -10.0) -> Claim:
    """Fig. R (open-ended QA): with no options to read, the last position itself becomes the checkpoint: the video
    reaches it directly (video→last) and through the question (video→non-option question, non-option
    question→last). Rule: reproduces if video→last and non-option question→last both reach <= ``threshold`` %;
    partly if one of them does."""
    vl, lvl, n = _lowest(result, "video→last")
    ql, lql, _ = _lowest(result, "non-option question→last")
    vq, lvq, _ = _lowest(result, "video→non-option question")
    return Claim("Fig. R", paper_numbers()["claims"]["appC"], "qualitative (7B): both routes converge at the last "
                 "token", f"video→last {vl:.1f}% (layer {lvl}), video→question {vq:.1f}% (layer {lvq}), "
                 f"question→last {ql:.1f}% (layer {lql}); N={n}",
                 grade(vl <= threshold and ql <= threshold, vl <= threshold or ql <= threshold),
                 f"lowest pooled means: video→last and question→last both <= {threshold:.0f}%; partly if one is")


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
    paper = paper_numbers()["table2_cross_frame_accuracy_change"]
    rows = []
    for part in [k for k in acc if k != "full"]:
        ours = relative_change(acc, part)
        key = part.replace(" ", "_")
        rows.append([part, "paper"] + [f"{paper[key][t]:.1f}" if key in paper and t in paper[key] else ""
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
    :class:`~mapflow_utils.experiments.PathwayResult` (``{name: result}``; labels ``"name, full"`` …)."""
    return [[f"{name}, {row[0]}", "100%" if row[0] == "full" else f"{100 * r.kept():.0f}%"] + row[1:]
            for name, r in results.items() for row in accuracy_rows(r.acc)]


def claim_table3(acc: dict, random_labels: Sequence[str], kept_share: float, figure: str = "Table 3") -> Claim:
    """Table 3 (and Table A, long videos): the effective pathways alone keep accuracy, random blocking of as many
    edges does not. Rule: reproduces if the pathways lose at most 3 points against full attention and the random
    draws' mean is at least 5 points below the pathways; partly if the pathways beat the random mean."""
    full, path = overall_accuracy(acc["full"]), overall_accuracy(acc["pathways"])
    r_mean, r_sd = random_accuracy(acc, random_labels)
    nums = paper_numbers()
    paper = nums["table3_effective_pathways"]["LLaVA-NeXT-7B-Video-FT"]
    if figure == "Table A":
        long = nums["tableA_long_videos"]
        paper_text = (f"7B LongVideoBench: full {long['full']['all']}, pathways {long['pathways']['all']} "
                      f"({100 * paper['kept_share']:.0f}% edges kept; no random control)")
    else:
        paper_text = (f"7B TVBench: full {paper['full']['TVBench']}, pathways {paper['pathways']['TVBench']}, "
                      f"random {paper['random']['TVBench']} ({100 * paper['kept_share']:.0f}% edges kept)")
    return Claim(figure, "Keeping only the effective pathways keeps accuracy; random blocking of as many edges "
                 "hurts.", paper_text,
                 f"full {full:.1f}, pathways {path:.1f}, random {r_mean:.1f} ± {r_sd:.1f} ({len(random_labels)} draws; "
                 f"{100 * kept_share:.0f}% edges kept)", grade(path >= full - 3 and r_mean <= path - 5, path > r_mean),
                 "pathways lose <= 3 points and random is >= 5 points below them; partly if pathways beat random")


def read_run(run_dir) -> tuple[list[dict], dict]:
    """A training run's ``log.jsonl`` records and ``train.json`` metadata."""
    import json
    from pathlib import Path

    run_dir = Path(run_dir)
    records = [json.loads(l) for l in (run_dir / "log.jsonl").read_text().splitlines() if l.strip()]
    return records, json.loads((run_dir / "train.json").read_text())


def training_logs(model_dir) -> dict[str, list[dict]]:
    """Loss records of every training run shipped with a model (``<model>/training/<run>``), by run name."""
    from pathlib import Path

    return {run.name: read_run(run)[0] for run in sorted((Path(model_dir) / "training").glob("*"))}


def letter_attempt(run_dir, seed: int = 999, n: int = 200) -> dict:
    """The letter attempt's curve and its summary: records, steps, minutes, final letter accuracy and the chance
    level of the held-out image questions it was measured on (mean of 1 / number of options)."""
    from .synthetic import image_sample

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


def paper_table_a_rows() -> tuple[list[str], list[list[Any]]]:
    """The paper's Table A (LongVideoBench, LLaVA-NeXT-7B-Video-FT): headers and rows."""
    nums = paper_numbers()
    t, kept = nums["tableA_long_videos"], nums["table3_effective_pathways"]["LLaVA-NeXT-7B-Video-FT"]["kept_share"]
    cats = list(t["full"])
    rows = [["full causal", "100%"] + [t["full"][c] for c in cats],
            ["effective pathways", f"{100 * kept:.0f}%"] + [t["pathways"][c] for c in cats]]
    return ["attention (paper, 7B)", "edges kept"] + [c.replace("_", " ") for c in cats], rows


def accuracy_rows(acc: dict) -> list[list[Any]]:
    """Rows ``[label, overall %, per-task %…]`` of ``accuracy_under``'s result."""
    return [[label, f"{overall_accuracy(res):.1f}"] + [f"{100 * c / n:.1f}" for c, n in res.values()]
            for label, res in acc.items()]


def ranges_rows(ranges=None) -> list[list[Any]]:
    """Table E(a): the paper's effective layer ranges per model, then ours if given (1-indexed, inclusive)."""
    paper = paper_numbers()["tableE_layer_ranges"]
    rows = [[k] + [f"L{a}-{b}" for a, b in v.values()] for k, v in paper.items()]
    if ranges is None:
        return rows
    ours = (ranges.cross_frame, ranges.video_question, ranges.question_last)
    return rows + [["ours"] + [_range_text(r) for r in ours]]


def paper_table_e_rows(model: str = "LLaVA-NeXT-7B-Video-FT") -> tuple[list[str], list[list[Any]]]:
    """Table E(b) of one of the paper's models: header (5-layer intervals) and rows per flow."""
    e = paper_numbers()["tableE_interval_change"][model]
    n = max(len(v) for v in e.values())
    return [f"L{5 * i + 1}-{5 * i + 5}" for i in range(n)], [[f] + [f"{v:.1f}" for v in vals] for f, vals in e.items()]


def read_eval(model_dir) -> dict:
    """A model's shipped evaluation (``eval.json``, written by ``mapflow card``)."""
    import json
    from pathlib import Path

    return json.loads((Path(model_dir) / "eval.json").read_text())


def class_run_rows(runs: Sequence[dict]) -> list[list[Any]]:
    """Rows of the "your model" page from :func:`mapflow_utils.cli.run_on_classes`: class, text model, video
    layout, ok/error, seconds, and every ``*_verdict`` the chapter glued."""
    from .models import SUPPORT

    rows = []
    for r in runs:
        fam = SUPPORT.get(r["class"])
        verdicts = "; ".join(f"{k[:-len('_verdict')]}: {v}" for k, v in r["glue"].items() if k.endswith("_verdict"))
        rows.append([r["class"], fam.text_family if fam else "?", fam.frames if fam else "?",
                     "ok" if "error" not in r else r["error"], f"{r['seconds']:.0f}", verdicts])
    return rows


def real_commands(chapter: str) -> list[list[str]]:
    """Per supported class: the ``mapflow run`` command for its public example checkpoint on a GPU."""
    from .models import SUPPORT

    return [[name, f"`mapflow run {chapter} -p video_model {f.example} -p data_dir /path/to/TVBench "
                   f"-p answer_format letter -p window 9 -p n_per_task 200 -p device cuda "
                   f"--name {name.replace('ForConditionalGeneration', '').lower()}`"]
            for name, f in SUPPORT.items()]


def key_claims(r) -> list[Claim]:
    """The verdicts of one pair's :class:`~mapflow_utils.experiments.KeyResults` (Figs. 2, 3, 6, 8 and Table 3)."""
    return [claim_cross_frame(r.sweep, r.image_sweep), claim_fig3(r.sweep), claim_fig6(r.sweep),
            claim_fig8(r.probs["true"].mean(0), r.probs["false"].mean(0)),
            claim_table3(r.pathways.acc, r.pathways.random_labels, r.pathways.kept())]


def labelled_claims(claims_by_name: dict) -> tuple[list[Claim], int]:
    """Claims of several models (or settings), each figure labelled ``"Fig. 2 (name)"``, and for exactly two the
    number of claims on which they agree: ``(claims, n_same)`` (``n_same`` is 0 unless there are two)."""
    out = []
    for name, claims in claims_by_name.items():
        for c in claims:
            c.figure = f"{c.figure} ({name})"
            out.append(c)
    lists = list(claims_by_name.values())
    same = sum(a.verdict == b.verdict for a, b in zip(*lists)) if len(lists) == 2 else 0
    return out, same


def _range_text(rng) -> str:
    return "none" if rng is None else f"L{rng[0] + 1}-{rng[1] + 1}" if rng[1] > rng[0] else f"L{rng[0] + 1}"


def ranges_text(r) -> str:
    """A :class:`~mapflow_utils.pathways.Ranges` in words, 1-indexed (video→last shown when it has a range)."""
    parts = [("cross-frame", r.cross_frame), ("video→question", r.video_question),
             ("question→last", r.question_last)]
    if r.video_last is not None:
        parts.append(("video→last", r.video_last))
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


SCALE_HEADERS = ["model", "layers", "parameters", "accuracy", "window", "cross-frame", "video→question",
                 "question→last", "pathways", "random", "edges kept"]


def collect_claims(notebooks: Sequence) -> list[list[Any]]:
    """Every verdict table (:func:`claims_table` output) in executed chapter notebooks, as rows
    ``[chapter, figure, paper, ours, verdict]`` (the claims-at-a-glance page)."""
    import json
    from pathlib import Path

    head = "| figure | the paper's claim |"
    rows = []
    for nb_path in notebooks:
        nb = json.loads(Path(nb_path).read_text())
        for cell in nb["cells"]:
            for o in cell.get("outputs", []):
                text = "".join(o.get("data", {}).get("text/markdown", ""))
                if not text.startswith(head):
                    continue
                for line in text.splitlines()[2:]:
                    cols = [c.strip() for c in line.strip().strip("|").split(" | ")]
                    if len(cols) >= 5:
                        rows.append([Path(nb_path).stem, cols[0], cols[2], cols[3], cols[4]])
    return rows
