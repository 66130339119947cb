"""Result types and their analysis, pure numpy (no model, no torch): knockout sweeps with their bootstrap bands,
App. E's interval rule and effective layer ranges, and the pathway / side-by-side results. The chapters' tables,
claims and plots read these types; the experiments produce them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from . import flows as F


@dataclass
class SweepResult:
    """%change of the predicted answer's probability per flow, sample and window position.

    ``change[flow]``: float ``[N, n_layers]``; ``tasks``: the task of each of the N samples (baseline-correct only
    when the sweep was run with ``only_correct``); ``n_seen``: samples tried per task.
    """

    change: dict[str, np.ndarray]
    tasks: list[str]
    n_seen: dict[str, int]
    window: int
    skipped: list[str] = field(default_factory=list)  # questions whose video could not be decoded mid-run

    def correct(self) -> dict[str, list[int]]:
        """Baseline accuracy per task, ``{task: [correct, seen]}`` (for a sweep run with ``only_correct``)."""
        return {t: [self.tasks.count(t), n] for t, n in self.n_seen.items()}

    def summary(self, flow: str, task: str | None = None, n_boot: int = 1000, seed: int = 0):
        """Mean and bootstrap 95% CI per layer: ``(mean [n_layers], lo, hi, N)``."""
        x = self.change[flow]
        if task is not None:
            x = x[[t == task for t in self.tasks]]
        return bootstrap_mean(x, n_boot, seed) + (len(x),)


def bootstrap_mean(x: np.ndarray, n_boot: int = 1000, seed: int = 0):
    """Mean over axis 0 with a percentile bootstrap 95% interval: ``(mean, lo, hi)``, each ``[x.shape[1]]``."""
    if len(x) == 0:
        nan = np.full(x.shape[1:], np.nan)
        return nan, nan, nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    boots = x[idx].mean(1)
    return x.mean(0), np.percentile(boots, 2.5, axis=0), np.percentile(boots, 97.5, axis=0)


def probability_curves(probs: dict, select=None, what: str = "option") -> dict[str, tuple]:
    """Fig. 8's two curves from :func:`~mapflow_utils.experiments.option_probabilities`: the true ``what``'s
    probability and the false ones' mean, in percent, each ``(mean, lo, hi, N)`` per layer. ``select``: a boolean
    mask over the questions (e.g. one task's: ``probs["tasks"] == task``)."""
    sel = np.ones(len(probs["true"]), bool) if select is None else np.asarray(select)
    return {f"true {what}": bootstrap_mean(probs["true"][sel] * 100) + (int(sel.sum()),),
            f"false {what}s (mean)": bootstrap_mean(probs["false"][sel] * 100) + (int(sel.sum()),)}


@dataclass
class Lines:
    """Knockout curves to draw, ``label -> (SweepResult, flow)``, for any task or pooled (:meth:`curves`)."""

    lines: Mapping[str, tuple[SweepResult, str]]

    @classmethod
    def flows(cls, result: SweepResult, flows: Sequence[str]) -> "Lines":
        """One line per flow of one sweep."""
        return cls({f: (result, f) for f in flows})

    def curves(self, task: str | None = None) -> dict[str, tuple]:
        """``{label: (mean, lo, hi, N)}`` on ``task``'s questions (None: all)."""
        return {label: r.summary(flow, task) for label, (r, flow) in self.lines.items()}


@dataclass
class ProbabilityLines:
    """Fig. 8's curves (:func:`probability_curves`) for any task or pooled (:meth:`curves`)."""

    probs: dict
    what: str = "option"

    def curves(self, task: str | None = None) -> dict[str, tuple]:
        return probability_curves(self.probs, None if task is None else self.probs["tasks"] == task, self.what)


@dataclass
class PathwayResult:
    """Table 3 (or Table A) for one model and data set.

    ``acc``: ``{label: {task: [correct, n]}}`` for ``full``, ``pathways`` and each random draw; ``random_labels``:
    the draws' labels; ``edges``: :func:`pathways.edge_counts` on the first question (kept, total) both ways.
    """

    acc: dict
    random_labels: list[str]
    edges: dict[str, tuple[int, int]]

    def kept(self, way: str = "paper") -> float:
        """Share of edges kept (0-1), ``paper`` (all valid pairs over layers) or ``video_question``."""
        k, n = self.edges[way]
        return k / n


@dataclass
class KeyResults:
    """The key measurements of one (Video-FT, ImageLLM) pair, for comparing models side by side (App. A/B).

    ``sweep``: the Video-FT's sweep over :data:`KEY_FLOWS`; ``image_sweep``: the ImageLLM's cross-frame sweep;
    ``probs``: :func:`option_probabilities` (standard lens); ``ranges``/``interval``: App. E on ``sweep``;
    ``pathways``: Table 3; ``accuracy``: the Video-FT's accuracy with all frames and one frame.
    """

    n_layers: int
    n_parameters: int
    window: int
    sweep: SweepResult
    image_sweep: SweepResult
    probs: dict
    interval: int
    ranges: "Ranges"
    pathways: PathwayResult
    accuracy: dict = field(default_factory=dict)  # experiments.subject_accuracy: {mode: {task: [correct, n]}}


#: The three flows whose layer ranges App. E selects, by the sweep names of ``experiments.FLOWS``.
RANGED = {"cross_frame": F.CROSS_FRAME, "video_question": F.VIDEO_QUESTION, "question_last": F.QUESTION_LAST}
#: ... plus video→last, for a model whose own route runs there ("own routes"; the paper blocks it everywhere).
RANGED_OWN = {**RANGED, "video_last": F.VIDEO_LAST}


def interval_size(n_layers: int, paper_interval: int = 5, paper_layers: int = 32) -> int:
    """The paper's 5-of-32-layer interval scaled to ``n_layers`` (at least 1)."""
    return max(1, round(paper_interval * n_layers / paper_layers))


def interval_means(curve: np.ndarray, size: int) -> list[tuple[int, int, float]]:
    """Mean of a per-layer curve over consecutive intervals: ``[(lo, hi, mean)]`` (0-indexed, inclusive)."""
    out = []
    for lo in range(0, len(curve), size):
        hi = min(len(curve), lo + size) - 1
        out.append((lo, hi, float(np.nanmean(curve[lo:hi + 1]))))
    return out


#: App. E's rule: an interval counts when its mean %change is below this; the ranges are read on this task's
#: questions (the paper's Table E), or on all tasks when it has none.
RANGE_THRESHOLD = -5.0
RANGE_TASK = "action_antonym"


def layer_range(curve: np.ndarray, size: int, threshold: float = RANGE_THRESHOLD) -> tuple[int, int] | None:
    """App. E's rule: the span from the first to the last interval whose mean %change is below ``threshold``
    (``None`` when no interval is)."""
    kept = [(lo, hi) for lo, hi, m in interval_means(curve, size) if m < threshold]
    return (kept[0][0], kept[-1][1]) if kept else None


@dataclass(frozen=True)
class Ranges:
    """The effective layer ranges (0-indexed, inclusive; None: the flow matters in no interval)."""

    cross_frame: tuple[int, int] | None
    video_question: tuple[int, int] | None
    question_last: tuple[int, int] | None
    video_last: tuple[int, int] | None = None  # the paper's mask: None, blocked in every layer


def ranges_from_sweep(sweep, size: int, task: str | None = RANGE_TASK, threshold: float = RANGE_THRESHOLD,
                      own_routes: bool = False) -> Ranges:
    """App. E's ranges from a sweep with the three ranged flows (pooled over ``task``'s questions, or all tasks when
    that task is absent); ``own_routes`` also gives video→last its range by the same rule (the sweep needs it)."""
    if task is not None and task not in set(sweep.tasks):
        task = None
    flows = RANGED_OWN if own_routes else RANGED
    rng = {k: layer_range(sweep.summary(flow, task)[0], size, threshold) for k, flow in flows.items()}
    return Ranges(**rng)


# ------------------------------------------------------------------ the first-order estimate (beyond the paper)


@dataclass
class MapResult:
    """The whole map of one model: the estimated Δ log p of blocking each (query block, key block) pair in each
    layer alone, per baseline-correct question: ``delta [N, n_layers, n, n]`` (NaN: not attributed), the blocks'
    ``names`` (rows = queries, columns = keys) and each question's task."""

    names: list[str]
    delta: np.ndarray
    tasks: list[str]

    def mean_pct(self, task: str | None = None) -> np.ndarray:
        """Mean estimated %change over the questions (of ``task``), ``[n_layers, n, n]``."""
        d = self.delta if task is None else self.delta[[t == task for t in self.tasks]]
        if not len(d):
            return np.full(self.delta.shape[1:], np.nan)
        with warnings.catch_warnings():  # cells no question attributes (the system prompt's rows) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(pct(d), axis=0)


def pct(delta_logp: float | np.ndarray) -> float | np.ndarray:
    """%change of a probability whose log moves by ``delta_logp``."""
    return 100.0 * np.expm1(delta_logp)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties get their mean rank); NaN when either side is constant."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):  # ties: their mean rank
        tie = x == v
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


@dataclass
class Agreement:
    """How an estimated sweep matches the exact one, per flow: Spearman ρ over the window positions of each question
    (``rho[flow]``, ``[N]``, NaN where the exact curve is flat), and the mean curves' largest gap."""

    rho: dict[str, np.ndarray]
    gap: dict[str, float]
    n: int

    @classmethod
    def of(cls, estimate: SweepResult, exact: SweepResult, flows: Sequence[str]) -> "Agreement":
        if estimate.tasks != exact.tasks:
            raise ValueError("the estimate and the exact sweep cover different questions: run both on the same "
                             "samples, model and answer format")
        rho = {f: np.array([spearman(e, x) for e, x in zip(estimate.change[f], exact.change[f])]) for f in flows}
        gap = {f: float(np.nanmax(np.abs(estimate.change[f].mean(0) - exact.change[f].mean(0))))
               if len(exact.tasks) else float("nan") for f in flows}
        return cls(rho, gap, len(exact.tasks))

    def median(self, flow: str) -> float:
        r = self.rho[flow]
        return float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")

    def worst(self, flow: str) -> float:
        r = self.rho[flow]
        return float(np.nanmin(r)) if np.isfinite(r).any() else float("nan")

    def rows(self) -> list[list[str]]:
        """``[flow, median ρ, worst ρ, questions with a flat exact curve, largest gap of the mean curves]``."""
        return [[f, f"{self.median(f):.2f}", f"{self.worst(f):.2f}", str(int(np.isnan(r).sum())),
                 f"{self.gap[f]:.1f} points"] for f, r in self.rho.items()]


# ----------------------------------------------------------------------------------- a model's shipped evaluation


@dataclass
class Evaluation:
    """A model's shipped evaluation (``eval.json``, written by ``mapflow card``), read by one rule: a **control** is
    an entry holding ``{task: [correct, n]}`` for exactly the video tasks of ``all`` (``all``, ``first``, …,
    ``shuffled``, and for the SmolLM2 pair ``content`` and ``fresh_split``); image QA is ``{kind: [correct, n]}``
    per answer format; everything else (the answer format, per-question hits, counts) stays in ``other``."""

    controls: dict[str, dict[str, list[int]]]
    image_qa: dict[str, dict[str, list[int]]]
    other: dict

    #: image-QA entries by answer format
    IMAGE_KEYS = {"image_qa": "letter", "image_qa_content": "content"}

    @classmethod
    def of(cls, d: Mapping) -> "Evaluation":
        tasks = set(d["all"])
        controls = {k: v for k, v in d.items() if isinstance(v, dict) and set(v) == tasks}
        image = {k: v for k, v in d.items() if k in cls.IMAGE_KEYS and isinstance(v, dict)}
        return cls(controls, image, {k: v for k, v in d.items() if k not in controls and k not in image})

    @classmethod
    def read(cls, model_dir) -> "Evaluation":
        import json
        from pathlib import Path

        return cls.of(json.loads((Path(model_dir) / "eval.json").read_text()))

    @property
    def tasks(self) -> list[str]:
        return list(self.controls["all"])

    def accuracy(self, control: str = "all", task: str | None = None) -> float:
        """Accuracy (percent) of one control on one task, or the mean over tasks of the per-task accuracies."""
        res = self.controls[control]
        if task is not None:
            c, n = res[task]
            return 100 * c / n
        return 100 * sum(c / n for c, n in res.values()) / len(res)
