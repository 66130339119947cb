"""The verdict rules of the paper's claims, one frozen dataclass per claim: its thresholds are used by ``verdict(...)``
(the logic) and by ``text`` (the rule shown beside the verdict), so the words cannot drift from the code. Pure
functions of numbers; :mod:`mapflow_utils.claims` measures those numbers from results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

VERDICTS = ("reproduces", "partly", "does not reproduce")


def grade(strong: bool, weak: bool) -> str:
    """``reproduces`` when the strong condition holds, ``partly`` when only the weak one does."""
    return VERDICTS[0] if strong else VERDICTS[1] if weak else VERDICTS[2]


def _frac(x: float) -> str:
    return {1 / 3: "1/3", 2 / 3: "2/3", 1 / 2: "1/2", 3 / 4: "3/4", 7 / 8: "7/8"}.get(x, f"{x:g}")


@dataclass(frozen=True)
class CrossFrameRule:
    """Fig. 2 / Fig. Q: the Video-FT's lowest pooled mean %change (over all layers) lies in the early-to-middle
    layers; the ImageLLM's lowest in those layers is much shallower."""

    strong: float = -10.0
    weak: float = -5.0
    image_ratio: float = 0.5
    early: float = 2 / 3

    def layers(self, n_layers: int) -> slice:
        return slice(0, max(1, round(self.early * n_layers)))

    def verdict(self, video: float, video_hi: float, image: float, layer: int, n_layers: int) -> str:
        """``video``: the Video-FT's lowest over all layers, at 1-indexed ``layer`` of ``n_layers``; ``image``: the
        ImageLLM's lowest within :meth:`layers`."""
        early = layer <= self.layers(n_layers).stop
        strong = early and video <= self.strong and video_hi < 0 and -image < -video * self.image_ratio
        return grade(strong, early and video <= self.weak)

    @property
    def text(self) -> str:
        return (f"the Video-FT's lowest pooled mean lies in the first {_frac(self.early)} of the layers, <= "
                f"{self.strong:g}% (95% CI below 0), and the ImageLLM's drop there (if any) is less than "
                f"{self.image_ratio:g} times as deep; partly if that lowest is <= {self.weak:g}%; a lowest later "
                "does not reproduce")


@dataclass(frozen=True)
class HalvesRule:
    """Table 2: mean relative accuracy change with cross-frame attention blocked in each half of the layers."""

    strong: float = -10.0
    second_within: float = 5.0

    def verdict(self, first: float, second: float) -> str:
        return grade(first <= self.strong and abs(second) <= self.second_within, first < second)

    @property
    def text(self) -> str:
        return (f"mean relative accuracy change: first half <= {self.strong:g}% and |second half| <= "
                f"{self.second_within:g}%; partly if first < second")


@dataclass(frozen=True)
class WindowsRule:
    """Fig. T: lowest pooled mean per window size."""

    small_above: float = -5.0
    large_below: float = -10.0

    def verdict(self, lows: Sequence[float]) -> str:
        strong = lows[0] > self.small_above and all(v <= self.large_below for v in lows[1:])
        return grade(strong, all(a >= b for a, b in zip(lows, lows[1:])))

    @property
    def text(self) -> str:
        return (f"lowest pooled mean: smallest window > {self.small_above:g}% and the others <= "
                f"{self.large_below:g}%; partly if the drop deepens with k")


@dataclass(frozen=True)
class Fig3Rule:
    """Fig. 3: the lowest pooled means of video→question, question→last, video→last, last→last and their layers."""

    strong: float = -10.0
    weak: float = -5.0
    minor_ratio: float = 0.5
    vq_by: float = 2 / 3
    ql_after: float = 1 / 3

    def verdict(self, vq: float, vq_layer: int, ql: float, ql_layer: int, vl: float, ll: float, n_layers: int) -> str:
        """Lowest pooled means and their 1-indexed layers (of ``n_layers``)."""
        deep = min(vq, ql)
        placed = vq_layer <= self.vq_by * n_layers and ql_layer > self.ql_after * n_layers
        strong = vq <= self.strong and ql <= self.strong and vq_layer < ql_layer and placed and \
            min(vl, ll) > deep * self.minor_ratio
        return grade(strong, vq_layer <= ql_layer and deep <= self.weak)

    @property
    def text(self) -> str:
        return (f"lowest pooled means: video→question and question→last both <= {self.strong:g}%, video→question "
                f"earlier and within the first {_frac(self.vq_by)} of the layers, question→last after the first "
                f"{_frac(self.ql_after)}; video→last and last→last shallower than {self.minor_ratio:g} times the "
                f"deeper; partly if the order holds and one <= {self.weak:g}%")


@dataclass(frozen=True)
class Fig4Rule:
    """Fig. 4: peaks (1-indexed layers) of the normalised top-1 frequency of spatial and temporal keywords."""

    spatial_within: float = 1 / 3
    gap: int = 1
    temporal_by: float = 3 / 4

    def verdict(self, spatial_peak: int | None, temporal_peak: int | None, n_layers: int) -> str:
        if spatial_peak is None or temporal_peak is None:
            return VERDICTS[2]
        strong = spatial_peak <= max(1, round(self.spatial_within * n_layers)) and \
            spatial_peak + self.gap <= temporal_peak <= self.temporal_by * n_layers
        return grade(strong, temporal_peak > spatial_peak)

    @property
    def text(self) -> str:
        return (f"normalised top-1 frequency: spatial peak in the first {_frac(self.spatial_within)} of the layers, "
                f"temporal peak >= {self.gap} layer(s) later and within the first {_frac(self.temporal_by)} (the "
                "middle, not the end); partly if later at all; does not reproduce without enough keyword hits")


@dataclass(frozen=True)
class Fig5Rule:
    """Fig. 5: share of the query word's attention on the first half of the frames, in the middle layers."""

    start: float = 0.5
    drop: float = 0.1
    weak_drop: float = 0.02
    middle: tuple[float, float] = (1 / 3, 2 / 3)

    def layers(self, n_layers: int) -> slice:
        """The middle layers the rule averages over (0-indexed slice, at least one layer)."""
        lo = int(self.middle[0] * n_layers)
        return slice(lo, max(lo + 1, int(self.middle[1] * n_layers)))

    def verdict(self, with_cf: float, without_cf: float) -> str:
        return grade(with_cf > self.start and without_cf < with_cf - self.drop, without_cf < with_cf - self.weak_drop)

    @property
    def text(self) -> str:
        return (f"in the middle {_frac(self.middle[0])}-{_frac(self.middle[1])} of the layers: start share > "
                f"{self.start:g} with cross-frame attention and > {self.drop:g} lower without; partly if > "
                f"{self.weak_drop:g} lower")


@dataclass(frozen=True)
class Fig6Rule:
    """Fig. 6: lowest pooled means of true option→last and non-option question→last; highest of false options→last."""

    strong: float = -10.0

    def verdict(self, true_option: float, non_option: float, false_max: float) -> str:
        return grade(true_option <= self.strong and true_option < non_option and false_max > 0,
                     true_option < non_option)

    @property
    def text(self) -> str:
        return (f"true option→last <= {self.strong:g}% and deeper than non-option question→last, and false "
                "options→last > 0 at some layer; partly if true option→last is the deeper")


@dataclass(frozen=True)
class RoutesRule:
    """Fig. 7: a route counts when its lowest pooled mean is <= ``threshold``; tasks matching the paper's route."""

    threshold: float = -10.0
    weak_matches: int = 2

    def route(self, direct: float, to_question: float, question_to_option: float) -> str:
        d = direct <= self.threshold
        via = to_question <= self.threshold and question_to_option <= self.threshold
        return "both" if d and via else "direct" if d else "via question" if via else "neither"

    def verdict(self, matches: int, n_tasks: int) -> str:
        return grade(matches == n_tasks, matches >= self.weak_matches)

    @property
    def text(self) -> str:
        return (f"a route counts when its lowest pooled mean <= {self.threshold:g}%; reproduces if every task "
                f"matches the paper, partly if >= {self.weak_matches}")


@dataclass(frozen=True)
class RiseRule:
    """Fig. 8 / Fig. S: where the true answer's probability first reaches ``half`` of its final value."""

    half: float = 0.5
    late: float = 1 / 2
    end: float = 3 / 4
    weak_late: float = 1 / 3
    weak_end: float = 7 / 8
    lead: float = 0.01  # probability: the false answers' mean may lead by at most this much before the rise

    def rise_layer(self, true: np.ndarray) -> int:
        """1-indexed layer where ``true`` first reaches ``half`` of its final value (the last layer if never)."""
        final = true[-1]
        return int(np.argmax(true >= final * self.half)) + 1 if final > 0 else len(true)

    def verdict(self, true: np.ndarray, false: np.ndarray) -> str:
        n, rise = len(true), self.rise_layer(true)
        ahead = bool(np.all(false[: rise - 1] - true[: rise - 1] <= self.lead))
        strong = n * self.late < rise <= n * self.end and ahead and true[-1] > false[-1]
        return grade(strong, true[-1] > false[-1] and n * self.weak_late < rise <= n * self.weak_end)

    def text(self, what: str = "option") -> str:
        return (f"rise ({self.half:g} of final) right after the middle: after the first {_frac(self.late)} of the "
                f"layers and within the first {_frac(self.end)}, false {what}s never ahead by > "
                f"{100 * self.lead:g} point before; partly if it ends above them and rises between "
                f"{_frac(self.weak_late)} and {_frac(self.weak_end)} of the depth; a rise at the very end does not "
                "reproduce")


@dataclass(frozen=True)
class OpenRouteRule:
    """Fig. R: lowest pooled means of video→last and non-option question→last (open-ended QA)."""

    threshold: float = -10.0

    def verdict(self, video_last: float, question_last: float) -> str:
        a, b = video_last <= self.threshold, question_last <= self.threshold
        return grade(a and b, a or b)

    @property
    def text(self) -> str:
        return f"lowest pooled means: video→last and question→last both <= {self.threshold:g}%; partly if one is"


@dataclass(frozen=True)
class PathwaysRule:
    """Table 3 / Table A: overall accuracy (points) with full attention, the pathways only, and random blocking."""

    max_loss: float = 3.0
    random_gap: float = 5.0

    def verdict(self, full: float, pathways: float, random: float) -> str:
        return grade(pathways >= full - self.max_loss and random <= pathways - self.random_gap, pathways > random)

    @property
    def text(self) -> str:
        return (f"pathways lose <= {self.max_loss:g} points and random is >= {self.random_gap:g} points below "
                "them; partly if the pathways beat random")


@dataclass(frozen=True)
class AboveChanceRule:
    """A model's accuracy against the chance level (both 0-1): "clearly above" with a margin."""

    margin: float = 0.1

    def verdict(self, accuracy: float, chance: float) -> str:
        return "clearly above" if accuracy > chance + self.margin else "not clearly above"

    @property
    def text(self) -> str:
        return f"clearly above when more than {100 * self.margin:g} points above chance"


@dataclass(frozen=True)
class AgreementRule:
    """Beyond the paper: the first-order estimate agrees with the exact knockout sweep when, flow by flow, the median
    over questions of Spearman's ρ between the estimated and exact %change over the window positions is high."""

    strong: float = 0.8
    weak: float = 0.5

    def verdict(self, medians: Sequence[float]) -> str:
        finite = [m for m in medians if np.isfinite(m)]
        return grade(bool(finite) and min(finite) >= self.strong, bool(finite) and min(finite) >= self.weak)

    @property
    def text(self) -> str:
        return (f"every flow's median per-question Spearman ρ (estimate vs exact, over the window positions) >= "
                f"{self.strong:g}; partly if every one is >= {self.weak:g}")


@dataclass(frozen=True)
class ConfirmedRangesRule:
    """Beyond the paper: §3.5's layer ranges read off the estimate and confirmed by exact knockouts at the
    candidate positions only are the exhaustive sweep's, for a fraction of its exact knockouts."""

    max_share: float = 0.5

    def verdict(self, same: bool, share: float) -> str:
        return grade(same and share <= self.max_share, same)

    @property
    def text(self) -> str:
        return (f"the confirmed ranges equal the exhaustive sweep's with at most {self.max_share:.0%} of its exact "
                "knockouts; partly if they are equal with more")
