"""The paper's claims as data: what we measured, the verdict by a stated rule, and the files the claims page reads.

A ``claim_*`` function measures what its rule (:mod:`mapflow_utils.rules`: thresholds typed once, used by the logic
and the rule text alike) needs from a result (:mod:`mapflow_utils.results` types, or arrays) and returns a
:class:`Claim`; the paper's side comes from :mod:`mapflow_utils.paper` (``data/paper/numbers.yaml``).

A chapter shows its claims with :func:`show`, which also writes them to ``<chapter>.claims.json`` beside the
executed notebook (the runner passes ``claims_file``); the claims page reads those files with :func:`collect`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import flows as F
from . import paper
from .rules import (VERDICTS, AgreementRule, ConfirmedRangesRule, CrossFrameRule, Fig3Rule, Fig4Rule, Fig5Rule,
                    Fig6Rule, HalvesRule, OpenRouteRule, PathwaysRule, RiseRule, RoutesRule, WindowsRule)
from .tables import markdown_table, overall_accuracy, random_accuracy, ranges_text, relative_change
from .paths import write_if_changed

@dataclass
class Claim:
    """One claim of the paper, its number, ours, and the verdict by a stated rule. ``key`` names the glue values
    (``<key>_ours``, ``<key>_verdict``) and the claim in the claims files."""

    key: str
    figure: str
    claim: str
    paper: str
    ours: str
    verdict: str
    rule: str
    numbers: dict = field(default_factory=dict)  # the measured values the verdict was computed from
    #: where this claim on this subject is counted, when not here (App. A/B reruns the book's subject beside others:
    #: its rows repeat §3.2-3.5's claims, shown for the comparison, counted once, in their own chapter)
    counted_in: str = ""

    def glue(self) -> None:
        """Glue ``<key>_ours`` and ``<key>_verdict`` for the chapter's prose (MyST-NB)."""
        from myst_nb import glue

        glue(f"{self.key}_ours", self.ours, display=False)
        glue(f"{self.key}_verdict", self.verdict, display=False)


# ------------------------------------------------------------------------------------------------ claims

def lowest(result, flow: str, task: str | None = None, layers: slice | None = None) -> tuple[float, int, int, float]:
    """Lowest pooled mean %change of ``flow`` (within ``layers``): ``(value, 1-indexed layer, N, upper CI there)``."""
    mean, lo, hi, n = result.summary(flow, task)
    sl = layers or slice(0, len(mean))
    m = mean[sl]
    if n == 0 or len(m) == 0 or np.all(np.isnan(m)):
        return float("nan"), 0, n, float("nan")
    i = int(np.nanargmin(m))
    return float(m[i]), sl.start + i + 1, n, float(hi[sl][i])


def claim_cross_frame(video, image, key: str = "fig2", figure: str = "Fig. 2", claim: str = "fig2",
                      rule: CrossFrameRule = CrossFrameRule()) -> Claim:
    """Fig. 2 (and Fig. Q, open-ended): cross-frame knockout in early-to-middle layers hurts the Video-FT, barely
    its ImageLLM base. ``video``/``image``: sweeps with a ``cross-frame`` flow."""
    n_layers = len(video.summary(F.CROSS_FRAME)[0])
    v, lv, nv, v_hi = lowest(video, F.CROSS_FRAME)
    m, lm, nm, _ = lowest(image, F.CROSS_FRAME, layers=rule.layers(n_layers))
    return Claim(key, figure, paper.claim_text(claim), paper.stated("fig2"),
                 f"Video-FT {v:.1f}% at layer {lv} of {n_layers} (N={nv}); ImageLLM {m:.1f}% at layer {lm} (N={nm})",
                 rule.verdict(v, v_hi, m, lv, n_layers), rule.text,
                 {"video": v, "video_hi": v_hi, "image": m, "layer": lv, "n_layers": n_layers})


def claim_halves(acc: dict, rule: HalvesRule = HalvesRule()) -> Claim:
    """Table 2: blocking cross-frame attention in the first half of the layers costs accuracy, in the second half
    almost nothing (``acc``: ``accuracy_under`` with labels ``first half`` and ``second half``)."""
    p = paper.numbers()["table2_cross_frame_accuracy_change"]
    first = float(np.nanmean(list(relative_change(acc, "first half").values())))
    second = float(np.nanmean(list(relative_change(acc, "second half").values())))
    p1, p2 = np.mean(list(p["first_half"].values())), np.mean(list(p["second_half"].values()))
    return Claim("t2", "Table 2", "Blocking cross-frame attention in the first half of the layers costs accuracy; in "
                 "the second half it barely does.", f"first {p1:.1f}%, second {p2:.1f}% (mean of {len(p['first_half'])} tasks)",
                 f"first {first:.1f}%, second {second:.1f}%", rule.verdict(first, second), rule.text,
                 {"first": first, "second": second})


def claim_windows(results: dict, rule: WindowsRule = WindowsRule()) -> Claim:
    """§D.3 / Fig. T: ``{window: sweep}``; a 1-layer window barely changes the probability, larger ones do."""
    lows = {k: lowest(r, F.CROSS_FRAME)[0] for k, r in sorted(results.items())}
    return Claim("figT", "Fig. T (§D.3)", paper.claim_text("figT"), paper.stated("figT"),
                 ", ".join(f"k={k}: {v:.1f}%" for k, v in lows.items()), rule.verdict(list(lows.values())),
                 rule.text, {str(k): v for k, v in lows.items()})


def claim_fig3(result, rule: Fig3Rule = Fig3Rule()) -> Claim:
    """Fig. 3: video→question in early-middle layers, question→last later; video→last and last→last matter little."""
    vq, lvq, n, _ = lowest(result, F.VIDEO_QUESTION)
    ql, lql, _, _ = lowest(result, F.QUESTION_LAST)
    vl, lvl, _, _ = lowest(result, F.VIDEO_LAST)
    ll, lll, _, _ = lowest(result, F.LAST_LAST)
    (pv, iv), (pq, iq) = paper.deepest_interval("video_question"), paper.deepest_interval("question_last")
    return Claim("fig3", "Fig. 3", paper.claim_text("fig3"),
                 f"7B, Table E(b): video→question {pv:.1f}% ({iv}), question→last {pq:.1f}% ({iq})",
                 f"video→question {vq:.1f}% (layer {lvq}), question→last {ql:.1f}% (layer {lql}), video→last "
                 f"{vl:.1f}% (layer {lvl}), last→last {ll:.1f}% (layer {lll}); N={n}",
                 rule.verdict(vq, lvq, ql, lql, vl, ll, len(result.summary(F.VIDEO_QUESTION)[0])), rule.text,
                 {"video_question": vq, "question_last": ql, "video_last": vl, "last_last": ll})


def claim_fig4(norm: dict, n_layers: int, rule: Fig4Rule = Fig4Rule()) -> Claim:
    """Fig. 4: spatial keywords peak in very early layers, temporal ones in middle layers (normalised frequencies
    per layer, ``{"spatial": [n], "temporal": [n]}``)."""
    peaks = {g: (None if norm.get(g) is None or np.all(np.isnan(norm[g])) else int(np.nanargmax(norm[g])) + 1)
             for g in ("spatial", "temporal")}
    ps, pt = peaks["spatial"], peaks["temporal"]
    ours = "too few keyword hits to tell" if None in (ps, pt) else \
        f"spatial peak at layer {ps}, temporal peak at layer {pt}"
    return Claim("fig4", "Fig. 4", paper.claim_text("fig4"), paper.stated("fig4"), ours,
                 rule.verdict(ps, pt, n_layers), rule.text, {"spatial_peak": ps, "temporal_peak": pt})


def start_share(per_frame: np.ndarray) -> np.ndarray:
    """Share of the attention on the video that falls on its first half of frames, per layer."""
    t = per_frame.shape[-1]
    return per_frame[..., : t // 2].sum(-1) / per_frame.sum(-1)


def claim_fig5(full: np.ndarray, blocked: np.ndarray, rule: Fig5Rule = Fig5Rule()) -> Claim:
    """Fig. 5: with cross-frame attention, "begins" attends to the start of the video; without it, to the late
    frames. ``full``/``blocked``: attention per layer and frame ``[n_layers, frames]``."""
    layers = rule.layers(len(full))
    a, b = float(start_share(full)[layers].mean()), float(start_share(blocked)[layers].mean())
    return Claim("fig5", "Fig. 5", paper.claim_text("fig5"), paper.stated("fig5"),
                 f"share of 'begins' attention on the first half of the frames, layers {layers.start + 1}-"
                 f"{layers.stop}: {a:.2f} with, {b:.2f} without cross-frame attention", rule.verdict(a, b), rule.text,
                 {"with": a, "without": b})


def claim_fig6(result, rule: Fig6Rule = Fig6Rule()) -> Claim:
    """Fig. 6: the last token reads the true option, not the non-option question; blocking a false option can
    raise the probability."""
    t, lt, n, _ = lowest(result, F.TRUE_OPTION_LAST)
    q, lq, _, _ = lowest(result, F.NON_OPTION_LAST)
    f_mean = result.summary(F.FALSE_OPTIONS_LAST)[0]
    f = float(np.nanmax(f_mean)) if len(f_mean) and not np.all(np.isnan(f_mean)) else float("nan")
    return Claim("fig6", "Fig. 6", paper.claim_text("fig6"), paper.stated("fig6"),
                 f"true option→last {t:.1f}% (layer {lt}), non-option question→last {q:.1f}% (layer {lq}), false "
                 f"options→last up to {f:+.1f}%; N={n}", rule.verdict(t, q, f), rule.text,
                 {"true_option": t, "non_option": q, "false_max": f})


def routes(result, rule: RoutesRule = RoutesRule()) -> dict[str, str]:
    """Fig. 7 per task: ``direct``, ``via question``, ``both`` or ``neither`` (see :class:`RoutesRule`)."""
    return {task: rule.route(lowest(result, F.VIDEO_TRUE_OPTION, task)[0],
                             lowest(result, F.VIDEO_NON_OPTION, task)[0],
                             lowest(result, F.NON_OPTION_TRUE_OPTION, task)[0])
            for task in sorted(set(result.tasks))}


def route_rows(result, rule: RoutesRule = RoutesRule()) -> list[list[str]]:
    """Rows ``[task, the paper's route, ours]`` of Fig. 7's table."""
    theirs = paper.routes()
    return [[t, theirs.get(t, ""), r] for t, r in routes(result, rule).items()]


def claim_fig7(result, rule: RoutesRule = RoutesRule()) -> Claim:
    """Fig. 7: the route from the video to the true option per task, against the paper's."""
    ours, theirs = routes(result, rule), paper.routes()
    match = sum(ours.get(t) == r for t, r in theirs.items())
    return Claim("fig7", "Fig. 7", paper.claim_text("fig7"), ", ".join(f"{t}: {r}" for t, r in theirs.items()),
                 ", ".join(f"{t}: {r}" for t, r in ours.items()), rule.verdict(match, len(theirs)), rule.text,
                 {"matches": match})


def claim_fig8(true: np.ndarray, false: np.ndarray, key: str = "fig8", figure: str = "Fig. 8", claim: str = "fig8",
               what: str = "option", rule: RiseRule = RiseRule()) -> Claim:
    """Fig. 8 (and Fig. S, open-ended, ``key="figS"``): the true answer's probability at the last position rises
    right after the middle layers without first favouring false ones (mean probability per layer)."""
    rise = rule.rise_layer(true)
    return Claim(key, figure, paper.claim_text(claim), paper.stated(key),
                 f"true {what} reaches half its final probability ({100 * true[-1]:.1f}%) at layer {rise} of "
                 f"{len(true)}; false {what}s end at {100 * false[-1]:.1f}%", rule.verdict(true, false),
                 rule.text(what), {"rise_layer": rise, "final_true": float(true[-1]), "final_false": float(false[-1])})


def claim_fig_r(result, rule: OpenRouteRule = OpenRouteRule()) -> Claim:
    """Fig. R (open-ended QA): the video reaches the last position directly and through the question."""
    vl, lvl, n, _ = lowest(result, F.VIDEO_LAST)
    ql, lql, _, _ = lowest(result, F.NON_OPTION_LAST)
    vq, lvq, _, _ = lowest(result, F.VIDEO_NON_OPTION)
    return Claim("figR", "Fig. R", paper.claim_text("appC"), paper.stated("figR"),
                 f"video→last {vl:.1f}% (layer {lvl}), video→question {vq:.1f}% (layer {lvq}), question→last "
                 f"{ql:.1f}% (layer {lql}); N={n}", rule.verdict(vl, ql), rule.text,
                 {"video_last": vl, "question_last": ql})


def claim_table3(acc: dict, random_labels: Sequence[str], kept_share: float, key: str = "t3",
                 figure: str = "Table 3", rule: PathwaysRule = PathwaysRule()) -> Claim:
    """Table 3 (and Table A, long videos: ``figure="Table A"``): the effective pathways alone keep accuracy,
    random blocking of as many edges does not."""
    full, path = overall_accuracy(acc["full"]), overall_accuracy(acc["pathways"])
    r_mean, r_sd = random_accuracy(acc, random_labels)
    nums = paper.numbers()
    p = nums["table3_effective_pathways"][paper.MAIN_MODEL]
    if figure == "Table A":
        long = nums["tableA_long_videos"]
        paper_text = (f"7B LongVideoBench: full {long['full']['all']}, pathways {long['pathways']['all']} "
                      f"({100 * p['kept_share']:.0f}% edges kept; no random control)")
    else:
        paper_text = (f"7B TVBench: full {p['full']['TVBench']}, pathways {p['pathways']['TVBench']}, "
                      f"random {p['random']['TVBench']} ({100 * p['kept_share']:.0f}% edges kept)")
    return Claim(key, figure, "Keeping only the effective pathways keeps accuracy; random blocking of as many edges "
                 "hurts.", paper_text, f"full {full:.1f}, pathways {path:.1f}, random {r_mean:.1f} ± {r_sd:.1f} "
                 f"({len(random_labels)} draws; {100 * kept_share:.0f}% edges kept)",
                 rule.verdict(full, path, r_mean), rule.text,
                 {"full": full, "pathways": path, "random": r_mean, "kept_share": kept_share})


# ------------------------------------------------------------------ beyond the paper: the first-order estimate

#: What the paper does not claim but this book tests (its side of the table).
NOT_IN_PAPER = "not in the paper (its sweeps are exact knockouts only)"


def claim_estimate(agreement, what: str = "the book's subject", key: str = "est",
                   rule: AgreementRule = AgreementRule()) -> Claim:
    """The first-order estimate (:mod:`mapflow_utils.engine.attribution`) ranks the window positions of every flow as the
    exact sweep does (``agreement``: :class:`~mapflow_utils.results.Agreement`)."""
    med = {f: agreement.median(f) for f in agreement.rho}
    worst_flow = min(med, key=lambda f: med[f] if np.isfinite(med[f]) else np.inf)
    return Claim(key, f"the whole map ({what})",
                 "one forward and one backward per question estimate every knockout of the sweeps as the exact engine "
                 "measures them", NOT_IN_PAPER,
                 f"median per-question ρ {min(med.values()):.2f}-{max(med.values()):.2f} over {len(med)} flows "
                 f"(lowest: {worst_flow}); N={agreement.n}",
                 rule.verdict(list(med.values())), rule.text, {"median_rho": med})


def claim_confirmed_ranges(confirmed, exhaustive, key: str = "est_ranges",
                           rule: ConfirmedRangesRule = ConfirmedRangesRule()) -> Claim:
    """§3.5's ranges from the estimate, confirmed by exact knockouts at the candidates only, against the exhaustive
    exact sweep's (``confirmed``: :class:`~mapflow_utils.experiments.ConfirmedRanges`; ``exhaustive``: Ranges)."""
    paper_ranges = ("cross_frame", "video_question", "question_last")
    same = all(getattr(confirmed.confirmed, k) == getattr(exhaustive, k) for k in paper_ranges)
    share = confirmed.exact_specs / confirmed.exhaustive_specs if confirmed.exhaustive_specs else float("nan")
    return Claim(key, "§3.5 from the map",
                 "the effective-pathway layer ranges (Table E's rule) can be found from the estimate and confirmed "
                 "with exact knockouts on the candidate layers only", NOT_IN_PAPER,
                 f"confirmed {ranges_text(confirmed.confirmed)}; exhaustive {ranges_text(exhaustive)}; "
                 f"{confirmed.exact_specs} of {confirmed.exhaustive_specs} exact knockouts ({share:.0%})",
                 rule.verdict(same, share), rule.text,
                 {"same": same, "share": share, "exact_specs": confirmed.exact_specs,
                  "exhaustive_specs": confirmed.exhaustive_specs})


def key_claims(r) -> list[Claim]:
    """The verdicts of one pair's :class:`~mapflow_utils.results.KeyResults` (Figs. 2, 3, 6, 8 and Table 3)."""
    return [claim_cross_frame(r.sweep, r.image_sweep), claim_fig3(r.sweep), claim_fig6(r.sweep),
            claim_fig8(r.probs["true"].mean(0), r.probs["false"].mean(0)),
            claim_table3(r.pathways.acc, r.pathways.random_labels, r.pathways.kept())]


#: The chapters that measure :func:`key_claims` on the book's subject, by claim key.
KEY_CLAIM_CHAPTERS = {"fig2": "s3_2_temporal", "fig3": "s3_3_integration", "fig6": "s3_3_integration",
                      "fig8": "s3_4_answer", "t3": "s3_5_pathways"}


def labelled(claims_by_name: dict[str, list[Claim]], counted_elsewhere: Sequence[str] = ()) -> tuple[list[Claim], int]:
    """Claims of several models (or settings), each figure labelled ``"Fig. 2 (name)"``, and for exactly two the
    number of claims on which they agree: ``(claims, n_same)`` (``n_same`` is 0 unless there are two). Claims of a
    name in ``counted_elsewhere`` (the book's own subject) are marked as counted in their chapter
    (:data:`KEY_CLAIM_CHAPTERS`), not here."""
    out = [Claim(**{**asdict(c), "figure": f"{c.figure} ({name})", "key": f"{c.key}_{i}",
                    "counted_in": KEY_CLAIM_CHAPTERS.get(c.key, "") if name in counted_elsewhere else c.counted_in})
           for i, (name, claims) in enumerate(claims_by_name.items()) for c in claims]
    lists = list(claims_by_name.values())
    same = sum(a.verdict == b.verdict for a, b in zip(*lists)) if len(lists) == 2 else 0
    return out, same


# ------------------------------------------------------------------------------------------ files and page

HEADERS = ["figure", "the paper's claim", "paper", "ours", "verdict", "rule"]


def table(claims: Sequence[Claim]) -> str:
    """The chapter's verdict table (Markdown)."""
    return markdown_table([[c.figure, c.claim, c.paper, c.ours, f"**{c.verdict}**", c.rule] for c in claims],
                          HEADERS)


def show(claims: Sequence[Claim], claims_file: str | None = None) -> None:
    """Display the verdict table and, when the runner passed ``claims_file``, write the claims there as JSON."""
    from IPython.display import Markdown, display

    display(Markdown(table(claims)))
    if claims_file:
        write(claims, claims_file)


def write(claims: Sequence[Claim], path: str | Path) -> Path:
    """The claims as JSON at ``path`` (rewritten only when they changed: readers never see a half-written file)."""

    return write_if_changed(Path(path), json.dumps([asdict(c) for c in claims], indent=1, ensure_ascii=False,
                                                   default=float) + "\n")


def read(path: str | Path) -> list[Claim]:
    return [Claim(**d) for d in json.loads(Path(path).read_text())]


def collect(files: Sequence[str | Path]) -> list[tuple[str, Claim]]:
    """``[(chapter, claim)]`` from the chapters' claims files (``<chapter>.claims.json``), in the given order."""
    return [(Path(f).name.split(".")[0], c) for f in files if Path(f).exists() for c in read(f)]


GLANCE_HEADERS = ["chapter", "figure", "paper", "ours", "verdict", "rule"]


def glance_rows(collected: Sequence[tuple[str, Claim]]) -> list[list[str]]:
    """Rows :data:`GLANCE_HEADERS` of the claims-at-a-glance page: the chapter as a link, and a repeated claim's
    verdict marked as counted in its own chapter."""
    return [[f"{{doc}}`{chapter}`", c.figure, c.paper, c.ours,
             f"**{c.verdict}**" + (f" (counted in {{doc}}`{c.counted_in}`)" if c.counted_in else ""), c.rule]
            for chapter, c in collected]


def chapter_rows(collected: Sequence[tuple[str, Claim]]) -> list[list[str]]:
    """Rows ``[chapter, headline claim, its verdict, all verdicts]`` of the landing page: one per chapter, its first
    claim as the headline, then how many of its claims reproduce / partly / do not."""
    rows = []
    for name in dict.fromkeys(ch for ch, _ in collected):
        mine = [(ch, c) for ch, c in collected if ch == name]
        head = mine[0][1]
        n = counts(mine)
        if not sum(n.values()):
            continue
        rows.append([f"{{doc}}`{name}`", f"{head.figure}: {head.claim}", f"**{head.verdict}**",
                     " / ".join(str(n[v]) for v in VERDICTS)])
    return rows


def counts(collected: Sequence[tuple[str, Claim]]) -> dict[str, int]:
    """Verdict counts, in :data:`VERDICTS` order; each claim once (a repeat with ``counted_in`` is not counted)."""
    return {v: sum(c.verdict == v and not c.counted_in for _, c in collected) for v in VERDICTS}
