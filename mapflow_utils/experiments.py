"""The experiments the chapters call: knockout sweeps, accuracy under knockouts, answer probabilities, the keyword
lens, attention onto frames, and the §3.5 / App. A-B helpers. Questions are prepared by
:mod:`mapflow_utils.evaluate`; results are the types of :mod:`mapflow_utils.results`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from . import flows as F
from .engine import attribution as AT
from .engine import pathways
from . import prompts as P
from .engine.attention import attention_rows, video_maps
from .cache import ResultCache
from .evaluate import (Prepared, control_frames, guarded, predict, prepare, progress_bar, report_skipped,
                       require_correct)
from .engine.knockout import applied, run_sweep
from .engine.lens import answer_probability, last_position_top, top_tokens
from .models import answer_format as own_format, default_dtype, load
from .paper import paper_window
from .results import (RANGE_TASK, RANGE_THRESHOLD, RANGED, RANGED_OWN, Agreement, KeyResults, MapResult,
                      PathwayResult, Ranges, SweepResult, interval_means, interval_size, ranges_from_sweep)
from .engine.specs import CROSS_FRAME, Block, KnockoutSpec, sweep_specs, window as window_layers


def model_name(adapter) -> str:
    """The model's folder or hub id for messages (its class name when it has none)."""
    return str(getattr(adapter.model, "name_or_path", "") or type(adapter.model).__name__)


# ---------------------------------------------------------------------------------------------- sweeps

#: The flows of the paper's figures, as blocks (source ↛ target): Figs. 2, 3, 6 and 7.
FLOWS: dict[str, tuple[Block, ...]] = {
    F.CROSS_FRAME: (CROSS_FRAME,),
    F.VIDEO_QUESTION: (Block("video", "question"),),
    F.VIDEO_LAST: (Block("video", "last"),),
    F.QUESTION_LAST: (Block("question", "last"),),
    F.LAST_LAST: (Block("last", "last"),),
    F.NON_OPTION_LAST: (Block("non_option", "last"),),
    F.TRUE_OPTION_LAST: (Block("true_option", "last"),),
    F.FALSE_OPTIONS_LAST: (Block("false_options", "last"),),
    F.VIDEO_NON_OPTION: (Block("video", "non_option"),),
    F.NON_OPTION_TRUE_OPTION: (Block("non_option", "true_option"),),
    F.VIDEO_TRUE_OPTION: (Block("video", "true_option"),),
}

#: The flows each figure shows, in the figures' order (Fig. 3: video, question and last; Fig. 6: the question's
#: parts into the last position; Fig. 7: the video into the question's parts).
FIGURE_FLOWS: dict[str, tuple[str, ...]] = {
    "Fig. 3": (F.VIDEO_QUESTION, F.VIDEO_LAST, F.QUESTION_LAST, F.LAST_LAST),
    "Fig. 6": (F.NON_OPTION_LAST, F.TRUE_OPTION_LAST, F.FALSE_OPTIONS_LAST),
    "Fig. 7": (F.VIDEO_NON_OPTION, F.NON_OPTION_TRUE_OPTION, F.VIDEO_TRUE_OPTION),
}


def half_specs(n_layers: int) -> dict[str, KnockoutSpec]:
    """Table 2's two knockouts: cross-frame attention blocked in the first half of the layers, and in the second."""
    half = n_layers // 2
    return {"first half": KnockoutSpec((CROSS_FRAME,), range(half), "first half"),
            "second half": KnockoutSpec((CROSS_FRAME,), range(half, n_layers), "second half")}


def all_layers(block: Block, n_layers: int) -> KnockoutSpec:
    """``block`` in every layer (e.g. Fig. 5: cross-frame attention blocked throughout)."""
    return KnockoutSpec((block,), range(n_layers), f"{block} everywhere")


def lens_subset(samples, per_task: int = 8) -> list:
    """The first ``per_task`` questions of each task (the keyword lens of Fig. 4 reads every video token of every
    layer, so it runs on a subset)."""
    by_task: dict[str, list] = {}
    for s in samples:
        by_task.setdefault(s.task, []).append(s)
    return [s for items in by_task.values() for s in items[:per_task]]


def flow_specs(flows: dict[str, tuple] | list[str], window: int, n_layers: int) -> tuple[dict[str, tuple], list]:
    """``flows`` (names of :data:`FLOWS`, or ``{name: blocks}``) as a dict, and one spec per flow and window position
    (flow after flow, ``n_layers`` each): what a sweep computes, exactly or estimated."""
    if not isinstance(flows, dict):
        flows = {f: FLOWS[f] for f in flows}
    return flows, [spec for blocks in flows.values() for spec in sweep_specs(blocks, window, n_layers)]


def knockout_sweep(adapter, samples, flows: dict[str, tuple] | list[str], window: int,
                   answer_format: P.AnswerFormat = "content", only_correct: bool = True, batch_size: int = 32,
                   num_frames: int = 8, progress: bool = False, results_dir=None) -> SweepResult:
    """For every sample and flow, block the flow in a window of ``window`` layers centred on each layer and record
    the %change of the clean prediction's probability (the paper's protocol: baseline-correct samples only).

    ``results_dir``: cache per sample (see :mod:`mapflow_utils.cache`); a rerun is instant and an interrupted run
    resumes.
    """

    flows, specs = flow_specs(flows, window, adapter.num_layers)
    n = adapter.num_layers
    cache = ResultCache(results_dir, "knockout_sweep", adapter, {
        "flows": {k: repr(v) for k, v in flows.items()}, "window": window, "format": answer_format,
        "num_frames": num_frames, "only_correct": only_correct})

    def compute(s):
        prep = prepare(adapter, s, answer_format, num_frames)
        if only_correct and not prep.correct:
            return {"correct": np.array(0)}
        probs = run_sweep(adapter, prep.clean, prep.spans, specs, prep.answer_ids, batch_size=batch_size).numpy()
        return {"correct": np.array(int(prep.correct)), "change": percent_change(prep, probs)}

    sweep, _ = _collect_sweep(samples, cache, compute, flows, n, window, "knockout sweep", progress,
                              lambda r: "change" in r and (not only_correct or int(r["correct"])))
    if only_correct:
        require_correct(len(sweep.tasks), sum(sweep.n_seen.values()), model_name(adapter), "the knockout sweep")
    return sweep


def _collect_sweep(samples, cache, compute, flows, n: int, window: int, what: str, progress: bool, keep):
    """The per-question loop of a sweep: cached results (``compute`` on a miss), questions that fail listed and
    left out, the kept ones' ``change`` split per flow: ``(SweepResult, kept raw results)``."""
    change: dict[str, list] = {f: [] for f in flows}
    tasks, seen, skipped, kept = [], {}, [], []
    for s in progress_bar(samples, what, progress):
        r = guarded(s, lambda: cache.get_or_compute(s, lambda: compute(s)), skipped)
        if r is None:
            continue
        seen[s.task] = seen.get(s.task, 0) + 1
        if not keep(r):
            continue
        for i, name in enumerate(flows):
            change[name].append(r["change"][i * n:(i + 1) * n])
        tasks.append(s.task)
        kept.append(r)
    report_skipped(skipped, what)
    arr = {f: np.array(v).reshape(len(tasks), n) for f, v in change.items()}
    return SweepResult(arr, tasks, seen, window, skipped), kept


def percent_change(prep: Prepared, probs: np.ndarray) -> np.ndarray:
    """%change of the clean prediction's probability under each knockout (``probs``: :func:`run_sweep`'s
    ``[specs, answers]``), the paper's metric."""
    pred = prep.predicted
    base = float(torch.softmax(prep.clean.logits, -1)[prep.answer_ids[pred]])
    return (probs[:, pred] - base) / base * 100


def pair_sweeps(video, image, samples, flows, window: int, answer_format: P.AnswerFormat = "content",
                batch_size: int = 32, progress: bool = False, results_dir=None) -> dict[str, SweepResult]:
    """The same :func:`knockout_sweep` on a Video-FT and its ImageLLM base: ``{"Video-FT": …, "ImageLLM": …}``
    (the paper's contrast, Figs. 2 and Q)."""
    return {name: knockout_sweep(m, samples, flows, window, answer_format, batch_size=batch_size, progress=progress,
                                 results_dir=results_dir) for name, m in (("Video-FT", video), ("ImageLLM", image))}


def option_probabilities(adapter, samples, answer_format: P.AnswerFormat = "content", variant: str = "standard",
                         only_correct: bool = True, num_frames: int = 8, results_dir=None) -> dict[str, np.ndarray]:
    """Layerwise probability of the true option and of the false options at the last position (Fig. 8):
    ``{"true": [N, n_points], "false": [N, n_points], "tasks": [N]}`` (false = mean over the false options).
    ``results_dir``: per-sample cache of the probabilities."""

    cache = ResultCache(results_dir, "option_probabilities", adapter, {
        "variant": variant, "format": answer_format, "num_frames": num_frames})

    def compute(s):
        prep = prepare(adapter, s, answer_format, num_frames)
        p = answer_probability(adapter, prep.clean, prep.answer_ids, variant).numpy()  # [n_points, options]
        return {"correct": np.array(int(prep.correct)), "p": p}

    true, false, tasks, skipped = [], [], [], []
    for s in samples:
        r = guarded(s, lambda: cache.get_or_compute(s, lambda: compute(s)), skipped)
        if r is None or (only_correct and not int(r["correct"])):
            continue
        a = s.answer_index
        true.append(r["p"][:, a])
        false.append(np.delete(r["p"], a, axis=1).mean(1))
        tasks.append(s.task)
    report_skipped(skipped, "answer probabilities")
    if only_correct:
        require_correct(len(tasks), len(samples) - len(skipped), model_name(adapter), "the layerwise answer probability")
    return {"true": np.array(true), "false": np.array(false), "tasks": np.array(tasks)}


def generate(adapter, prep: Prepared, spec=None, max_new_tokens: int = 6) -> str:
    """Greedy continuation of the prompt, in the clean model or under a knockout ``spec`` (Table B's answers)."""

    L = prep.spans.length
    with torch.no_grad(), applied(adapter, spec, prep.spans, length=L + max_new_tokens, calls=None):
        out = adapter.model.generate(**prep.inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=adapter.tokenizer.pad_token_id)
    return adapter.tokenizer.decode(out[0, L:], skip_special_tokens=True).strip()


def accuracy_under(adapter, samples, specs: dict[str, object], answer_format: P.AnswerFormat = "content",
                   num_frames: int = 8, batch_size: int = 32, results_dir=None) -> dict[str, dict[str, list[int]]]:
    """Accuracy over *all* samples (as the paper's Table 2 divides) with each knockout spec and without ("full"):
    ``{label: {task: [correct, n]}}``."""

    labels = ["full"] + list(specs)
    all_specs = [KnockoutSpec((), ())] + list(specs.values())  # a spec may be a callable of the spans
    cache = ResultCache(results_dir, "accuracy_under", adapter, {
        "specs": {k: repr(v) for k, v in specs.items()}, "format": answer_format, "num_frames": num_frames})

    def compute(s):
        prep = prepare(adapter, s, answer_format, num_frames)
        resolved = [sp(prep.spans) if callable(sp) else sp for sp in all_specs]
        probs = run_sweep(adapter, prep.clean, prep.spans, resolved, prep.answer_ids, batch_size=batch_size)
        return {"hit": (probs.argmax(-1) == s.answer_index).numpy().astype(np.int64)}

    return _tally_hits(samples, cache, compute, labels, "accuracy under knockout")


def _tally_hits(samples, cache, compute, labels: Sequence[str], what: str) -> dict[str, dict[str, list[int]]]:
    """``{label: {task: [correct, n]}}`` from each sample's cached (or computed) ``hit`` row, one entry per label;
    a sample whose video or record fails is left out and listed (``what`` names the experiment)."""
    out: dict[str, dict[str, list[int]]] = {l: {} for l in labels}
    skipped: list[str] = []
    for s in samples:
        r = guarded(s, lambda: cache.get_or_compute(s, lambda: compute(s)), skipped)
        if r is None:
            continue
        for l, h in zip(labels, r["hit"]):
            c = out[l].setdefault(s.task, [0, 0])
            c[0] += int(h)
            c[1] += 1
    report_skipped(skipped, what)
    return out


#: The frame controls every chapter's opening box compares the subject against (see :func:`subject_accuracy`).
BOX_CONTROLS = ("all", "one_random")


def subject_accuracy(adapter, samples, answer_format: P.AnswerFormat = "content", num_frames: int = 8,
                     seed: int = 0, results_dir=None) -> dict[str, dict[str, list[int]]]:
    """How well the subject answers a chapter's questions, with all frames and with one random content frame
    repeated (:data:`BOX_CONTROLS`; :func:`~mapflow_utils.evaluate.control_frames`): ``{mode: {task: [correct,
    n]}}``. Cached per question; the random frame is drawn from ``seed`` and the question's id, so a cached answer
    and a recomputed one see the same frame."""
    import zlib


    cache = ResultCache(results_dir, "subject_accuracy", adapter,
                        {"format": answer_format, "num_frames": num_frames, "seed": seed, "modes": BOX_CONTROLS})

    def compute(s):
        frames = s.frames(num_frames)
        rng = np.random.default_rng([seed, zlib.crc32(s.uid.encode())])
        return {"hit": np.array([predict(adapter, s.question, s.candidates, answer_format,
                                         control_frames(frames, mode, rng), s.task) == s.answer_index
                                 for mode in BOX_CONTROLS], np.int64)}

    return _tally_hits(samples, cache, compute, BOX_CONTROLS, "subject accuracy")


# ------------------------------------------------------------------------------------------ §3.3 helpers

#: Keywords of the synthetic grammar (the paper's Table D lists nouns and verbs of its prompts the same way).
SPATIAL_WORDS = ("red", "green", "blue", "yellow", "purple", "cyan", "beach", "forest", "desert", "snow", "city",
                 "night", "square", "box", "tube")
TEMPORAL_WORDS = ("up", "down", "left", "right", "moves", "grow", "shrink", "fill", "empty", "enter", "leave",
                  "jump", "slide", "flash", "blink", "swell", "then", "start", "end", "moving")


def lens_readout(adapter, samples, answer_format: P.AnswerFormat = "content", k: int = 8,
                 variant: str = "standard", num_frames: int = 8) -> dict:
    """The logit lens at the last position of the first baseline-correct question of ``samples``, layer by layer:
    ``{"question", "answer", "options", "tokens" [n_points][k] (decoded), "probs" [n_points, k], "answer_token"}``
    (the answer token is what the model must output: the letter, or the option's first token)."""

    for s in samples:
        prep = prepare(adapter, s, answer_format, num_frames)
        if not prep.correct:
            continue
        ids, probs = last_position_top(adapter, prep.clean, k, variant)
        decode = adapter.tokenizer.decode
        return {"question": s.question, "answer": s.answer, "options": list(s.candidates),
                "tokens": [[repr(decode([int(t)]))[1:-1] for t in row] for row in ids],
                "probs": probs.numpy(), "answer_token": repr(decode([prep.answer_ids[s.answer_index]]))[1:-1]}
    raise ValueError(f"{model_name(adapter)} answers none of the {len(samples)} questions correctly: raise n_per_task")


def keyword_ids(tokenizer, words) -> dict[str, list[int]]:
    """Token ids of each keyword: the first token of the word alone and after a space (as in running text)."""
    out = {}
    for w in words:
        ids = {tokenizer(v, add_special_tokens=False)["input_ids"][0] for v in (w, " " + w)}
        out[w] = sorted(ids)
    return out


def keyword_frequency(adapter, samples, words: dict[str, Sequence[str]], variant: str = "standard",
                      answer_format: P.AnswerFormat = "content", num_frames: int = 8, min_hits: int = 5,
                      results_dir=None):
    """Logit lens over every video token (Fig. 4): per layer, how often each keyword is the top-1 token.

    Returns ``(hits, normalised)``: ``hits[group][word]`` = counts ``[n_points]``; ``normalised[group]`` = mean over
    the group's keywords with at least ``min_hits`` hits of their counts normalised to sum 1 over layers
    (``[n_points]``, NaN when no keyword qualifies). ``results_dir``: per-sample cache of the counts.
    """

    ids = {g: keyword_ids(adapter.tokenizer, ws) for g, ws in words.items()}
    order = [(g, w) for g, ws in ids.items() for w in ws]
    cache = ResultCache(results_dir, "keyword_frequency", adapter, {
        "words": {g: list(ws) for g, ws in words.items()}, "variant": variant, "format": answer_format,
        "num_frames": num_frames})

    def compute(s):
        prep = prepare(adapter, s, answer_format, num_frames)
        top = top_tokens(adapter, prep.clean, list(prep.spans.video), 1, variant)[..., 0]  # [points, V]
        return {"counts": np.stack([torch.isin(top, torch.tensor(ids[g][w])).sum(-1).numpy() for g, w in order])}

    hits = {g: {w: None for w in ws} for g, ws in ids.items()}
    for s in samples:
        counts = cache.get_or_compute(s, lambda: compute(s))["counts"]
        for (g, w), c in zip(order, counts):
            hits[g][w] = c if hits[g][w] is None else hits[g][w] + c
    norm = {}
    for g, ws in hits.items():
        rows = [c / c.sum() for c in ws.values() if c is not None and c.sum() >= min_hits]
        n_points = next(iter(ws.values())).shape[0] if ws else 0
        norm[g] = np.mean(rows, 0) if rows else np.full(n_points, np.nan)
    return hits, norm


def word_rows(prep: Prepared, tokenizer, words: Sequence[str]) -> list[int]:
    """Token positions of the question's words among ``words`` (e.g. "begins", "first"), inside the non-option
    question."""
    rows = []
    ids = prep.inputs["input_ids"][0]
    for i in prep.spans.non_option:
        t = tokenizer.decode([int(ids[i])]).strip().strip("?").lower()
        if t and any(w.startswith(t) or t.startswith(w) for w in words if len(t) >= 3):
            rows.append(i)
    return rows


def frame_attention(adapter, samples, words: Sequence[str], spec=None, answer_format: P.AnswerFormat = "content",
                    num_frames: int = 8, results_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """Attention of the question's ``words`` onto each frame, per layer (Fig. 5), averaged over samples.

    Returns ``(per_frame [layers, frames], grids [layers, frames, h, w])``: the mass on each frame's tokens (mean
    over heads, the keyword's tokens and samples) and its spatial layout. ``results_dir``: per-sample cache.
    """

    cache = ResultCache(results_dir, "frame_attention", adapter, {
        "words": list(words), "spec": repr(spec), "format": answer_format, "num_frames": num_frames})

    def compute(s):
        prep = prepare(adapter, s, answer_format, num_frames)
        rows = word_rows(prep, adapter.tokenizer, words)
        if not rows:
            return {"found": np.array(0)}
        w = attention_rows(adapter, prep.clean, prep.spans, rows, spec=spec)  # [layers, Q, L]
        return {"found": np.array(1), "grid": video_maps(w, prep.spans).mean(1).numpy()}  # [layers, frames, h, w]

    per, grids, n = None, None, 0
    for s in samples:
        r = cache.get_or_compute(s, lambda: compute(s))
        if not int(r["found"]):
            continue
        g = torch.from_numpy(r["grid"])
        f = g.flatten(2).sum(-1)
        per = f if per is None else per + f
        grids = g if grids is None else grids + g
        n += 1
    if n == 0:
        raise ValueError(f"none of the questions contains any of {list(words)}")
    return (per / n).numpy(), (grids / n).numpy()


def answers_under(adapter, samples_by_task: dict, spec, answer_format: P.AnswerFormat = "content",
                  max_new_tokens: int = 6) -> list[list[str]]:
    """Table B: for the first question of each task, the true answer and the model's greedy answer with full
    attention and under ``spec``: rows ``[task, question, true answer, full, knocked out]``."""
    rows = []
    for task, items in samples_by_task.items():
        prep = prepare(adapter, items[0], answer_format)
        rows.append([task, items[0].question, items[0].answer, generate(adapter, prep, None, max_new_tokens),
                     generate(adapter, prep, spec, max_new_tokens)])
    return rows


# ------------------------------------------------------------------------------------------ §3.5 helpers


def pathway_ranges(adapter, samples, window: int, answer_format: P.AnswerFormat = "content", batch_size: int = 32,
                   num_frames: int = 8, progress: bool = False, results_dir=None):
    """App. E on this model: sweep the ranged flows (and video→last) and apply the interval rule. Returns
    ``(sweep, interval size, Ranges)``: the paper's ranges (video→last blocked everywhere); the "own routes"
    ranges are ``results.ranges_from_sweep(sweep, size, own_routes=True)``."""
    sweep = knockout_sweep(adapter, samples, list(RANGED_OWN.values()), window, answer_format,
                           batch_size=batch_size, num_frames=num_frames, progress=progress, results_dir=results_dir)
    size = interval_size(adapter.num_layers)
    return sweep, size, ranges_from_sweep(sweep, size)


def pathway_accuracy(adapter, samples, ranges, leak: bool = True, n_random: int = 5, seed: int = 0,
                     answer_format: P.AnswerFormat = "content", num_frames: int = 8, batch_size: int = 32,
                     results_dir=None) -> PathwayResult:
    """Accuracy with full attention, with the effective pathways only (``pathways.pathway_spec``) and with
    ``n_random`` seeded random-blocking draws of as many edges (seeds ``seed``, ``seed + 1``, …)."""
    n = adapter.num_layers
    spec = pathways.pathway_spec(ranges, n, leak=leak)
    randoms = {f"random {k}": pathways.RandomControl(spec, n, seed + k) for k in range(n_random)}
    acc = accuracy_under(adapter, samples, {"pathways": spec, **randoms}, answer_format, num_frames=num_frames,
                         batch_size=batch_size, results_dir=results_dir)
    example = prepare(adapter, samples[0], answer_format, num_frames)
    return PathwayResult(acc, list(randoms), pathways.edge_counts(spec, example.spans, n))


# ------------------------------------------------------------------ beyond the paper: the first-order estimate


def estimate_sweep(adapter, samples, flows: dict[str, tuple] | list[str], window: int,
                   answer_format: P.AnswerFormat = "content", num_frames: int = 8, progress: bool = False,
                   results_dir=None) -> tuple[SweepResult, MapResult]:
    """:func:`knockout_sweep`'s %change estimated from one forward and one backward per question
    (:func:`mapflow_utils.engine.attribution.attribute`; a window is the sum of its layers), on the same baseline-correct
    questions, and the whole map of the same questions (every block pair of
    :func:`~mapflow_utils.engine.attribution.map_blocks` in every layer alone). Cached per sample like the sweeps."""

    flows, specs = flow_specs(flows, window, adapter.num_layers)
    n = adapter.num_layers
    cache = ResultCache(results_dir, "estimate_sweep", adapter, {
        "flows": {k: repr(v) for k, v in flows.items()}, "window": window, "format": answer_format,
        "num_frames": num_frames, "estimator": AT.VERSION})

    def compute(s):
        prep = prepare(adapter, s, answer_format, num_frames, graph=True)
        if not prep.correct:
            return {"correct": np.array(0)}
        att = AT.attribute(adapter, prep.clean, prep.spans, prep.answer_ids[prep.predicted])
        blocks = AT.map_blocks(prep.spans)
        return {"correct": np.array(1), "change": att.sweep(specs), "map": att.block_map(blocks),
                "names": np.array([b for b, _ in blocks])}

    sweep, kept = _collect_sweep(samples, cache, compute, flows, n, window, "first-order estimate", progress,
                                 lambda r: bool(int(r["correct"])))
    require_correct(len(sweep.tasks), sum(sweep.n_seen.values()), model_name(adapter), "the first-order estimate")
    maps, names = [r["map"] for r in kept], [[str(x) for x in r["names"]] for r in kept]
    order = list(dict.fromkeys(x for ns in names for x in ns))  # blocks of every question, in sequence order
    grid = np.full((len(kept), n, len(order), len(order)), np.nan)
    for q, (m, ns) in enumerate(zip(maps, names)):
        at = [order.index(x) for x in ns]
        grid[q][:, np.array(at)[:, None], np.array(at)[None, :]] = m
    return sweep, MapResult(order, grid, sweep.tasks)


def exact_sweep(adapter, samples, window: int, answer_format: P.AnswerFormat = "content", num_frames: int = 8,
                batch_size: int = 32, progress: bool = False, results_dir=None) -> SweepResult:
    """Every flow of :data:`FLOWS` swept exactly, as the chapters sweep them (§3.2's cross-frame sweep and §3.3's
    figure flows, under the same cache keys, so a book already built answers from its cache), in one result."""
    figure_flows = [f for group in FIGURE_FLOWS.values() for f in group]
    cross = knockout_sweep(adapter, samples, [F.CROSS_FRAME], window, answer_format, batch_size=batch_size,
                           num_frames=num_frames, progress=progress, results_dir=results_dir)
    rest = knockout_sweep(adapter, samples, figure_flows, window, answer_format, batch_size=batch_size,
                          num_frames=num_frames, progress=progress, results_dir=results_dir)
    change = {**cross.change, **rest.change}
    return SweepResult({f: change[f] for f in FLOWS}, rest.tasks, rest.n_seen, window, rest.skipped)


def estimate_check(model_dir: str, samples, device: str = "cpu", dtype: str | None = None, batch_size: int = 32,
                   results_dir=None):
    """The estimate against the exact sweeps on another Video-FT (its own answer format and the paper's window
    scaled to its depth): ``(Agreement, estimated SweepResult, exact SweepResult)``."""

    _, _, other = load(model_dir, device=device, dtype=dtype or default_dtype(device))
    fmt, window = own_format(model_dir), paper_window(other.num_layers)
    estimate, _ = estimate_sweep(other, samples, list(FLOWS), window, fmt, results_dir=results_dir)
    exact = exact_sweep(other, samples, window, fmt, batch_size=batch_size, results_dir=results_dir)
    return Agreement.of(estimate, exact, list(FLOWS)), estimate, exact


@dataclass
class ConfirmedRanges:
    """§3.5's ranges read off the estimate and confirmed by exact knockouts at the candidate window positions only:
    ``estimated`` (the rule on the estimated curves), ``confirmed`` (the rule on the curves with exact values at the
    candidates), the candidate positions per flow, and the exact specs run (``exact_specs``) against the exhaustive
    sweep's (``exhaustive_specs``), both counted over the questions."""

    estimated: Ranges
    confirmed: Ranges
    candidates: dict[str, list[int]]
    exact_specs: int
    exhaustive_specs: int


def confirm_ranges(adapter, samples, estimate: SweepResult, window: int, answer_format: P.AnswerFormat = "content",
                   num_frames: int = 8, batch_size: int = 32, results_dir=None) -> ConfirmedRanges:
    """App. E's rule on the estimated sweep (its ranged flows), then exact knockouts only at the candidate window
    positions: every layer of an interval the estimate puts below the threshold, and of the intervals next to it
    (where a range could start or end instead). The rule is applied again with those exact values in place."""

    n = adapter.num_layers
    size = interval_size(n)
    task = RANGE_TASK if RANGE_TASK in set(estimate.tasks) else None
    candidates = {}
    for flow in RANGED.values():
        curve = estimate.summary(flow, task)[0]
        below = [i for i, (_, _, m) in enumerate(interval_means(curve, size)) if m < RANGE_THRESHOLD]
        near = sorted({j for i in below for j in (i - 1, i, i + 1) if 0 <= j * size < n})
        candidates[flow] = [l for j in near for l in range(j * size, min(n, (j + 1) * size))]
    pool = [s for s in samples if task is None or s.task == task]
    specs = [(flow, l) for flow, layers in candidates.items() for l in layers]
    spec_objs = [KnockoutSpec(FLOWS[f], window_layers(l, window, n), f"{f}@{l}") for f, l in specs]
    cache = ResultCache(results_dir, "confirm_ranges", adapter, {
        "specs": [s.label for s in spec_objs], "window": window, "format": answer_format, "num_frames": num_frames})

    def compute(s):
        prep = prepare(adapter, s, answer_format, num_frames)
        if not prep.correct or not spec_objs:
            return {"correct": np.array(int(prep.correct))}
        probs = run_sweep(adapter, prep.clean, prep.spans, spec_objs, prep.answer_ids, batch_size=batch_size).numpy()
        return {"correct": np.array(1), "change": percent_change(prep, probs)}

    mixed = {f: estimate.change[f].copy() for f in estimate.change}
    rows = [i for i, t in enumerate(estimate.tasks) if task is None or t == task]
    skipped: list[str] = []
    k = 0
    for s in pool:
        r = guarded(s, lambda: cache.get_or_compute(s, lambda: compute(s)), skipped)
        if r is None or not int(r["correct"]):
            continue
        if k >= len(rows):
            raise ValueError("the estimate covers fewer questions than these samples: pass the same samples")
        for j, (flow, l) in enumerate(specs):
            mixed[flow][rows[k], l] = r["change"][j]
        k += 1
    report_skipped(skipped, "exact confirmation")
    confirmed = SweepResult(mixed, estimate.tasks, estimate.n_seen, estimate.window, skipped)
    return ConfirmedRanges(ranges_from_sweep(estimate, size), ranges_from_sweep(confirmed, size), candidates,
                           len(specs) * k, len(RANGED) * n * k)


# ------------------------------------------------------------------------------------------ App. A/B helpers

#: The flows one sweep of :func:`key_results` covers (Figs. 2, 3, 6 and App. E's three ranged flows).
KEY_FLOWS = (F.CROSS_FRAME, F.VIDEO_QUESTION, F.VIDEO_LAST, F.QUESTION_LAST, F.LAST_LAST,
             F.NON_OPTION_LAST, F.TRUE_OPTION_LAST, F.FALSE_OPTIONS_LAST)


def key_results(video, image, samples, window: int | None = None, answer_format: P.AnswerFormat = "content",
                leak: bool = True, n_random: int = 5, seed: int = 0, batch_size: int = 32, progress: bool = False,
                results_dir=None) -> KeyResults:
    """Run the book's key experiments on one pair. ``window=None``: the paper's 9 of 32 layers scaled to the
    Video-FT's depth (:func:`scaled_windows`)."""
    n = video.num_layers
    window = window or paper_window(n)
    sweep = knockout_sweep(video, samples, list(KEY_FLOWS), window, answer_format, batch_size=batch_size,
                           progress=progress, results_dir=results_dir)
    image_sweep = knockout_sweep(image, samples, [F.CROSS_FRAME], window, answer_format, batch_size=batch_size,
                                 results_dir=results_dir)  # same depth as its Video-FT
    size = interval_size(n)
    ranges = ranges_from_sweep(sweep, size)
    return KeyResults(n, sum(p.numel() for p in video.model.parameters()), window, sweep, image_sweep,
                      option_probabilities(video, samples, answer_format, results_dir=results_dir), size, ranges,
                      pathway_accuracy(video, samples, ranges, leak, n_random, seed, answer_format,
                                       batch_size=batch_size, results_dir=results_dir),
                      subject_accuracy(video, samples, answer_format, results_dir=results_dir))


def scale_results(pairs: dict[str, tuple], samples, window: int | None = None,
                  answer_format: P.AnswerFormat | None = None, leak: bool = True, n_random: int = 5, seed: int = 0,
                  device: str = "cpu", batch_size: int = 32, progress: bool = False,
                  results_dir=None, dtype: str | None = None, device_map: str | None = None) -> dict[str, KeyResults]:
    """App. A/B: :func:`key_results` on every ``name: (Video-FT, ImageLLM)`` pair (folders or hub ids), loaded one
    pair at a time (``dtype`` None: float32 on CPU, bfloat16 on a GPU; ``answer_format`` None: each Video-FT's own,
    :func:`models.answer_format`)."""

    dtype = dtype or default_dtype(device, device_map)
    out = {}
    for name, (v, i) in pairs.items():
        _, _, video = load(v, device=device, dtype=dtype, device_map=device_map)
        _, _, image = load(i, device=device, dtype=dtype, device_map=device_map)
        out[name] = key_results(video, image, samples, window, answer_format or own_format(v), leak, n_random, seed,
                                batch_size=batch_size, progress=progress, results_dir=results_dir)
    return out
