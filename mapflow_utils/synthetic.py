"""Seeded synthetic TVBench-like videos for the paper's five tasks, plus image data for the image-only base.

Every clip is a few coloured squares on a textured scene, written as a real mp4 (lossless H.264, 4:4:4) with a
``json/<task>.json`` record in TVBench's layout, so :func:`mapflow_utils.data.load_tvbench` reads it like the real
benchmark. Question and option styles follow the paper's Table 1; each option's first word is unique within its
question, so the answer can be scored on its first token (the ``content`` answer format).

(Over 400 lines on purpose: one cohesive generator, read top to bottom as drawing primitives → the five task
renderers → image samples → files; splitting it would separate each renderer from the guarantees below that it
keeps.)

**No single frame answers a question** (TVBench's static-bias rule), by construction:

* Every clip fades in from and out to black: its first ``lead`` and last ``lead - 1`` frames are black, so the
  first and last sampled frames (8 segment midpoints by default) are identical for every answer. The content in
  between is an odd number of frames centred on the video's middle, so the sampled content frames are symmetric
  in time and playing a clip backwards reverses exactly its sampled frames.
* Action Antonym, Action Sequence, Scene Transition and Moving Direction are rendered forward and then, on a fair
  coin drawn before anything else, played backwards; playing backwards maps every answer to its opposite (grow ↔
  shrink, "A then B" ↔ "B then A", "X to Y" ↔ "Y to X", left ↔ right, up ↔ down). So any single frame is equally
  likely to come from a clip with either answer; only the order of frames tells them apart. For Moving Direction
  the horizontal and vertical trajectories also have the same position distribution on both axes.
* Object Count: the asked-about squares are always three, one per lane, whether 0, 1, 2 or 3 of them move at the
  beginning; positions are uniform whether a square moves or not. Motion is visible only across frames.

``tests/test_synthetic.py`` checks each of these statements on generated data.

Motion is at least half a vision patch per sampled frame (6 px at 64×64 with 8-px patches), squares fill a patch,
and nothing wraps around the frame edge.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .data import PAPER_TASKS, sample_indices

__all__ = [
    "SynthConfig",
    "LONG",
    "Clip",
    "ImageSample",
    "COLORS",
    "SCENES",
    "QUESTIONS",
    "generate_clip",
    "clip_frames",
    "image_sample",
    "IMAGE_KINDS",
    "write_mp4",
    "write_tvbench",
]

#: Object colours (RGB); names are the grammar's colour words.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (40, 205, 70),
    "blue": (55, 95, 245),
    "yellow": (245, 225, 40),
    "purple": (175, 70, 230),
    "cyan": (40, 215, 225),
}
WHITE = (255, 255, 255)

#: Scene names; each is a fixed, muted background texture (see :func:`scene_background`).
SCENES: tuple[str, ...] = ("beach", "forest", "desert", "snow", "city", "night")

#: The 3×3 position words of image captions (one token each in the grammar).
CELLS: tuple[str, ...] = ("northwest", "north", "northeast", "west", "center", "east", "southwest", "south",
                          "southeast")

QUESTIONS: dict[str, str] = {
    "action_antonym": "What is the action being performed in the video?",
    "action_sequence": "What did the {color} square do first?",
    "scene_transition": "How does the scene change in the video?",
    "moving_direction": "Which direction does the {color} square move in the video?",
    "object_count": "How many {color} squares are moving when the video begins?",
}

ANTONYMS: tuple[tuple[str, str], ...] = (("grow", "shrink"), ("fill", "empty"), ("enter", "leave"))
ACTIONS: dict[str, str] = {"jump": "jumps", "slide": "slides", "flash": "flashes", "blink": "blinks",
                           "swell": "swells"}
DIRECTIONS: tuple[str, ...] = ("up", "down", "left", "right")
_OPPOSITE = {"up": "down", "down": "up", "left": "right", "right": "left"}


@dataclass(frozen=True)
class SynthConfig:
    """Geometry and timing of the synthetic clips.

    Attributes:
        size: frame height = width in pixels.
        n_frames: frames per clip (8 segment midpoints are sampled from them by default).
        fps: frame rate written to the mp4 (``start``/``end`` are in seconds at this rate).
        lead: black frames at the start (``lead - 1`` at the end: fade in/out); keep
            ``lead >= n_frames / num_sampled_frames`` so the first and last sampled frames are black.
        obj: side of a square in pixels (fill at least one vision patch).
        travel: pixels a moving square covers over the clip's content (Moving Direction, Action Antonym "enter").
        distractors: extra squares of other colours whose behaviour is independent of the answer.
    """

    size: int = 64
    n_frames: int = 16
    fps: int = 8
    lead: int = 2
    obj: int = 12
    travel: int = 30
    distractors: int = 1

    @property
    def content(self) -> int:
        """Number of non-black frames (odd: frames ``lead`` … ``n_frames - lead``)."""
        return self.n_frames - 2 * self.lead + 1


#: The long-video variant (§D.1 / Table A): 64 frames, meant to be sampled at 32 (``lead`` = 64 / 32).
LONG = SynthConfig(n_frames=64, lead=2)


@dataclass
class Clip:
    """One generated question: frames ``[N, H, W, 3]`` uint8 plus the TVBench record fields."""

    task: str
    frames: np.ndarray
    question: str
    candidates: list[str]
    answer: str
    caption: str
    start: float | None = None
    end: float | None = None
    meta: dict = field(default_factory=dict)

    def record(self, video: str, question_id: str) -> dict:
        """The TVBench json record of this clip."""
        rec = {"video": video, "question": self.question, "candidates": list(self.candidates),
               "answer": self.answer, "question_id": question_id, "caption": self.caption}
        if self.start is not None:
            rec["start"], rec["end"] = self.start, self.end
        return rec


@dataclass
class ImageSample:
    """One still image ``[H, W, 3]`` uint8 with a dense caption and question/candidates/answer triples."""

    image: np.ndarray
    caption: str
    qa: list[tuple[str, list[str], str]]


# ------------------------------------------------------------------------------------------ drawing


def scene_background(name: str, size: int) -> np.ndarray:
    """A fixed muted texture for scene ``name``: uint8 ``[size, size, 3]``."""
    img = np.zeros((size, size, 3), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    if name == "beach":
        img[:] = (205, 185, 135)
        img[: int(size * 0.4)] = (140, 185, 220)
    elif name == "forest":
        img[:] = (35, 85, 45)
        img[(xx // 4) % 3 == 0] = (20, 60, 30)
    elif name == "desert":
        img[:] = (185, 135, 80)
        img[((yy + 2 * np.sin(xx / 5)) // 6).astype(int) % 2 == 0] = (160, 110, 65)
    elif name == "snow":
        img[:] = (215, 218, 225)
        img[(yy % 9 == 4) & (xx % 9 == 4)] = (150, 150, 165)
    elif name == "city":
        img[:] = (95, 95, 105)
        img[((yy // 8) % 2 == 0) & ((xx // 8) % 2 == 1)] = (70, 70, 80)
    elif name == "night":
        img[:] = (15, 15, 55)
        img[(yy % 7 == 3) & ((xx + yy) % 11 == 5)] = (200, 200, 170)
    else:
        raise ValueError(f"unknown scene {name!r}; known: {SCENES}")
    return img


def _square(img: np.ndarray, x: float, y: float, side: float, color: tuple[int, int, int]) -> None:
    """Fill an axis-aligned square with top-left corner (x, y), clipped to the image (in place)."""
    s = img.shape[0]
    x0, y0 = int(round(x)), int(round(y))
    x1, y1 = int(round(x + side)), int(round(y + side))
    img[max(0, y0):min(s, y1), max(0, x0):min(s, x1)] = color


def _outline(img: np.ndarray, x: int, y: int, w: int, h: int, color=WHITE, t: int = 2) -> None:
    """Draw a hollow rectangle (in place)."""
    img[y:y + t, x:x + w] = color
    img[y + h - t:y + h, x:x + w] = color
    img[y:y + h, x:x + t] = color
    img[y:y + h, x + w - t:x + w] = color


def _colors(rng: np.random.Generator, k: int) -> list[str]:
    names = list(COLORS)
    return [names[i] for i in rng.permutation(len(names))[:k]]


# ------------------------------------------------------------------------------------------- tasks
# Each renderer returns the content frames played forward, the forward answer, the candidates and a caption
# function of ``reverse``. Renderers may not draw from ``rng`` differently depending on ``reverse``.


def _times(cfg: SynthConfig) -> np.ndarray:
    """Content time u in [0, 1] of each content frame: ``[content]``."""
    return np.linspace(0.0, 1.0, cfg.content)


def _render_antonym(rng, cfg, bg):
    pair = ANTONYMS[rng.integers(len(ANTONYMS))]
    color, dcolor = _colors(rng, 2)
    s, o = cfg.size, cfg.obj
    u = _times(cfg)
    frames = np.repeat(bg[None], cfg.content, 0)
    distract = _mover(rng, cfg) if cfg.distractors else None
    if distract is not None:  # drawn first: the asked-about square stays on top
        distract.draw(frames, dcolor)
    if pair[0] == "grow":
        lo, hi = o // 2, int(o * 1.75)
        cx, cy = rng.uniform(hi / 2, s - hi / 2, size=2)
        for k, uk in enumerate(u):
            side = lo + (hi - lo) * uk
            _square(frames[k], cx - side / 2, cy - side / 2, side, COLORS[color])
        noun, verbs = "square", ("grows", "shrinks")
    elif pair[0] == "fill":
        w, h = o + 4, int(s * 0.6)
        x, y = int(rng.integers(0, s - w)), int(rng.integers(0, s - h))
        for k, uk in enumerate(u):
            level = int(round((h - 4) * uk))
            frames[k, y + h - 2 - level:y + h - 2, x + 2:x + w - 2] = COLORS[color]
            _outline(frames[k], x, y, w, h)
        noun, verbs = "tube", ("fills", "empties")
    else:  # enter the box
        b, travel = o + 8, min(cfg.travel, 22)
        bx, by = (int(v) for v in rng.integers(0, s - b + 1, size=2))
        axis = int(rng.integers(2))
        p = (bx, by)[axis] + 4  # the square's resting coordinate inside the box along the motion axis
        fits = {1: p + o + travel <= s, -1: p - travel >= 0}
        side = 1 if fits[1] and (not fits[-1] or rng.random() < 0.5) else -1
        for k, uk in enumerate(u):
            off = side * travel * (1 - uk)
            px, py = bx + 4 + (off if axis == 0 else 0), by + 4 + (off if axis == 1 else 0)
            _outline(frames[k], bx, by, b, b)
            _square(frames[k], px, py, o, COLORS[color])
        noun, verbs = "square", ("enters the box", "leaves the box")

    def caption(rev: bool) -> str:
        c = f"{color} {noun} {verbs[int(rev)]} ."
        return c + (f" {distract.caption(dcolor, rev)}" if distract is not None else "")

    return frames, pair[0], list(pair), QUESTIONS["action_antonym"], caption


def _render_sequence(rng, cfg, bg):
    names = list(ACTIONS)
    a1, a2 = (names[i] for i in rng.permutation(len(names))[:2])
    slots = [(0, 1), (0, 2), (1, 2)][rng.integers(3)]
    color, dcolor = _colors(rng, 2)
    s, o = cfg.size, cfg.obj
    # agent and distractor in separate halves so a jump/slide/swell never overlaps the other square
    halves = rng.permutation(2)
    x = rng.uniform(12, s - o - 12)
    ys = [rng.uniform(12 + h * s / 2, (h + 1) * s / 2 - o - 2) for h in halves]
    d_act, d_slot = names[rng.integers(len(names))], int(rng.integers(3))
    dx = rng.uniform(12, s - o - 12)
    u = _times(cfg)
    slot_of = np.minimum((u * 3).astype(int), 2)
    # an action lasts the middle of its third of the clip, so it is seen in >= 2 sampled frames
    active = np.abs(u * 3 - slot_of - 0.5) <= 0.4
    frames = np.repeat(bg[None], cfg.content, 0)
    for k in range(cfg.content):
        for (ax, ay, col, acts) in ((x, ys[0], color, {slots[0]: a1, slots[1]: a2}), (dx, ys[1], dcolor,
                                                                                      {d_slot: d_act})):
            act = acts.get(int(slot_of[k])) if active[k] else None
            _act_square(frames[k], ax, ay, o, COLORS[col], act)

    def caption(rev: bool) -> str:
        first, second = (a2, a1) if rev else (a1, a2)
        return (f"{color} square {ACTIONS[first]} then {ACTIONS[second]} . "
                f"{dcolor} square {ACTIONS[d_act]} .")

    return frames, a1, [a1, a2], QUESTIONS["action_sequence"].format(color=color), caption


def _act_square(img, x, y, o, color, act):
    """Draw a square performing a transient action (None: at rest)."""
    if act == "blink":
        return
    if act == "jump":
        y -= 10
    elif act == "slide":
        x += 10
    elif act == "flash":
        color = WHITE
    elif act == "swell":
        x, y, o = x - o * 0.3, y - o * 0.3, o * 1.6
    _square(img, x, y, o, color)


def _render_scene(rng, cfg, bg_unused):
    i, j = rng.permutation(len(SCENES))[:2]
    s1, s2 = SCENES[i], SCENES[j]
    tau = rng.uniform(0.3, 0.7)
    color = _colors(rng, 1)[0]
    x, y = rng.uniform(0, cfg.size - cfg.obj, size=2)
    u = _times(cfg)
    b1, b2 = scene_background(s1, cfg.size), scene_background(s2, cfg.size)
    frames = np.stack([b1 if uk < tau else b2 for uk in u]).copy()
    for f in frames:
        _square(f, x, y, cfg.obj, COLORS[color])

    def caption(rev: bool) -> str:
        a, b = (s2, s1) if rev else (s1, s2)
        return f"{a} then {b} . {color} square {CELLS[_cell(x, y, cfg)]} ."

    return frames, f"{s1} to {s2}", [f"{s1} to {s2}", f"{s2} to {s1}"], QUESTIONS["scene_transition"], caption


@dataclass
class _Mover:
    """A square moving along one axis with constant speed (forward direction: right or down)."""

    axis: int
    center: np.ndarray
    perp: float
    travel: float
    obj: int
    times: np.ndarray

    def positions(self) -> np.ndarray:
        """Top-left corners ``[content, 2]``."""
        pos = np.repeat(self.center[None].astype(float), len(self.times), 0)
        pos[:, self.axis] += self.travel * (self.times - 0.5)
        pos[:, 1 - self.axis] += self.perp
        return pos

    def direction(self, reverse: bool) -> str:
        d = "right" if self.axis == 0 else "down"
        return _OPPOSITE[d] if reverse else d

    def draw(self, frames: np.ndarray, color: str) -> None:
        for f, (x, y) in zip(frames, self.positions()):
            _square(f, x, y, self.obj, COLORS[color])

    def caption(self, color: str, reverse: bool) -> str:
        return f"{color} square moves {self.direction(reverse)} ."


def _mover(rng, cfg) -> _Mover:
    """A moving square whose positions have the same distribution on both axes (see the module docstring)."""
    half = cfg.travel / 2
    center = rng.uniform(half, cfg.size - cfg.obj - half, size=2)
    return _Mover(axis=int(rng.integers(2)), center=center, perp=float(rng.uniform(-half, half)),
                  travel=cfg.travel, obj=cfg.obj, times=_times(cfg))


def _render_direction(rng, cfg, bg):
    colors = _colors(rng, 1 + cfg.distractors)
    movers = [_mover(rng, cfg) for _ in colors]
    frames = np.repeat(bg[None], cfg.content, 0)
    for m, c in list(zip(movers, colors))[::-1]:  # the asked-about square is drawn on top
        m.draw(frames, c)
    target = movers[0]
    fwd = target.direction(False)
    cands = [fwd, _OPPOSITE[fwd]] + [d for d in DIRECTIONS if d not in (fwd, _OPPOSITE[fwd])]

    def caption(rev: bool) -> str:
        return " ".join(m.caption(c, rev) for m, c in zip(movers, colors))

    return frames, fwd, cands, QUESTIONS["moving_direction"].format(color=colors[0]), caption


def _render_count(rng, cfg, bg):
    """Three squares of the asked colour and ``distractors + 1`` others, one per lane; k of the three move in the
    first half of the clip, a different number in the second half."""
    n_other = cfg.distractors + 1
    color, *others = _colors(rng, 1 + n_other)
    k_start = int(rng.integers(4))
    k_end = int([k for k in range(4) if k != k_start][rng.integers(3)])
    lanes = rng.permutation(3 + n_other)
    lane_h = cfg.size / len(lanes)
    speed = 3.0  # pixels per frame: >= half an 8-px patch between sampled frames (every 2nd frame by default)
    span = cfg.size - cfg.obj
    moving_start = set(rng.permutation(3)[:k_start].tolist())
    moving_end = set(rng.permutation(3)[:k_end].tolist())
    squares = []  # (color, lane, moves_in_first_half, moves_in_second_half)
    for i in range(3):
        squares.append((color, lanes[i], i in moving_start, i in moving_end))
    for i, c in enumerate(others):
        squares.append((c, lanes[3 + i], bool(rng.random() < 0.5), bool(rng.random() < 0.5)))
    frames = np.repeat(bg[None], cfg.content, 0)
    half = cfg.content // 2
    truth = []  # perception labels (never in a question): per square its colour, lane, top y and x per content frame
    for c, lane, m1, m2 in squares:
        x, v = rng.uniform(0, span), speed * (1 if rng.random() < 0.5 else -1)
        y = lane * lane_h + (lane_h - cfg.obj) / 2
        xs: list[float] = []
        truth.append({"color": c, "lane": int(lane), "y": float(y), "x": xs})
        for k in range(cfg.content):
            _square(frames[k], x, y, cfg.obj, COLORS[c])
            xs.append(float(x))
            if (m1 if k < half else m2):
                x += v
                if x < 0 or x > span:  # reflect at the frame edge
                    x, v = (-x, -v) if x < 0 else (2 * span - x, -v)

    def caption(rev: bool) -> str:
        return f"{k_start} {color} moving at the start . {k_end} {color} moving at the end ."

    cands = ["0", "1", "2", "3"]
    return frames, str(k_start), cands, QUESTIONS["object_count"].format(color=color), caption, {"squares": truth}


_RENDER = {
    "action_antonym": _render_antonym,
    "action_sequence": _render_sequence,
    "scene_transition": _render_scene,
    "moving_direction": _render_direction,
    "object_count": _render_count,
}
#: Tasks whose opposite answer is the same clip played backwards.
REVERSIBLE = ("action_antonym", "action_sequence", "scene_transition", "moving_direction")


def _rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(kind.encode()), index])


def _cell(x: float, y: float, cfg: SynthConfig) -> int:
    c = cfg.size / 3
    cx, cy = (x + cfg.obj / 2) // c, (y + cfg.obj / 2) // c
    return int(min(2, cy) * 3 + min(2, cx))


def generate_clip(
    task: str, seed: int, index: int, cfg: SynthConfig = SynthConfig(), reverse: bool | None = None
) -> Clip:
    """Generate question ``index`` of ``task`` for ``seed``: deterministic, independent of other indices.

    ``reverse`` forces the play direction of a reversible task (default: a fair coin, drawn first); the same
    ``(seed, index)`` with the other direction gives the same frames in reverse order and the opposite answer.
    Action Sequence clips come with one second of unrelated footage before and after, and ``start``/``end``
    bracketing the question's part, as TVBench's Action Sequence records do.
    """
    if task not in _RENDER:
        raise ValueError(f"unknown synthetic task {task!r}; choose from {sorted(_RENDER)}")
    rng = _rng(seed, task, index)
    coin = bool(rng.random() < 0.5)
    rev = coin if reverse is None else bool(reverse)
    if task not in REVERSIBLE:
        rev = False
    bg = scene_background(SCENES[rng.integers(len(SCENES))], cfg.size)
    content, fwd_answer, cands, question, caption, *truth = _RENDER[task](rng, cfg, bg)
    answer = fwd_answer
    if rev:
        content = content[::-1]
        answer = cands[1] if task != "moving_direction" else _OPPOSITE[fwd_answer]
    order = rng.permutation(len(cands))
    cands = [cands[i] for i in order]
    black = np.zeros((cfg.lead, cfg.size, cfg.size, 3), np.uint8)
    frames = np.concatenate([black, content, black[1:]])
    start = end = None
    if task == "action_sequence":
        pad = cfg.fps  # one second on each side, with the agent doing other things (a trap for loaders that
        # ignore start/end)
        trap_rng = _rng(seed, "action_sequence/pad", index)
        trap = [_render_sequence(trap_rng, replace(cfg, n_frames=pad + 2 * cfg.lead), bg)[0][:pad] for _ in "ab"]
        frames = np.concatenate([trap[0], frames, trap[1]])
        start, end = pad / cfg.fps, (pad + cfg.n_frames) / cfg.fps
    return Clip(task=task, frames=np.ascontiguousarray(frames), question=question, candidates=cands,
                answer=answer, caption=caption(rev), start=start, end=end,
                meta={"reversed": rev, "content_offset": cfg.lead, **(truth[0] if truth else {})})


#: The kinds of :func:`image_sample`'s questions, in the order of its ``qa`` list.
IMAGE_KINDS: tuple[str, ...] = ("scene", "color", "position", "count")


def clip_frames(task: str, seed: int, index: int, cfg: SynthConfig = SynthConfig(), num_frames: int = 8):
    """``(clip, sampled frames [T, H, W, 3], their indices [T])``: question ``index`` of ``task`` as a VideoLLM sees
    it (segment midpoints inside ``start``/``end``, :func:`mapflow_utils.data.sample_indices`)."""
    c = generate_clip(task, seed, index, cfg)
    idx = sample_indices(len(c.frames), num_frames, cfg.fps, c.start, c.end)
    return c, c.frames[idx], idx


def image_sample(seed: int, index: int, cfg: SynthConfig = SynthConfig()) -> ImageSample:
    """A still image for the image-only base: a scene with 1–3 squares in distinct 3×3 cells.

    Caption grammar: ``"<scene> . <color> square <cell> . …"`` (cells in reading order). Questions ask the scene,
    the colour at a cell, the cell of a colour and the number of squares; each has 4 candidates (3 for the count)
    with unique first words.
    """
    rng = _rng(seed, "image", index)
    scene = SCENES[rng.integers(len(SCENES))]
    img = scene_background(scene, cfg.size)
    n = int(rng.integers(1, 4))
    cells = sorted(rng.permutation(9)[:n].tolist())
    colors = _colors(rng, n)
    c = cfg.size / 3
    for cell, col in zip(cells, colors):
        j = rng.uniform(-2, 2, size=2)
        x = (cell % 3) * c + (c - cfg.obj) / 2 + j[0]
        y = (cell // 3) * c + (c - cfg.obj) / 2 + j[1]
        _square(img, x, y, cfg.obj, COLORS[col])
    caption = f"{scene} . " + " ".join(f"{col} square {CELLS[cell]} ." for cell, col in zip(cells, colors))

    def options(true: str, pool: Sequence[str], k: int = 4) -> list[str]:
        others = [p for p in pool if p != true]
        picked = [others[i] for i in rng.permutation(len(others))[: k - 1]] + [true]
        return [picked[i] for i in rng.permutation(len(picked))]

    i = int(rng.integers(n))
    qa = [
        ("What is the scene?", options(scene, SCENES), scene),
        (f"What color is the square at the {CELLS[cells[i]]}?", options(colors[i], list(COLORS)), colors[i]),
        (f"Where is the {colors[i]} square?", options(CELLS[cells[i]], CELLS), CELLS[cells[i]]),
        ("How many squares are there?", options(str(n), ["1", "2", "3"], 3), str(n)),
    ]
    return ImageSample(image=img, caption=caption, qa=qa)


# --------------------------------------------------------------------------------------------- files


def write_mp4(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Write uint8 ``[T, H, W, 3]`` frames as lossless H.264 (yuv444p, qp 0) with PyAV; deterministic."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        stream.options = {"qp": "0", "threads": "1", "preset": "medium"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_tvbench(
    out: str | Path,
    n_per_task: int = 100,
    seed: int = 0,
    tasks: Sequence[str] = PAPER_TASKS,
    cfg: SynthConfig = SynthConfig(),
    progress: bool = False,
) -> Path:
    """Write ``n_per_task`` clips per task in TVBench's layout under ``out`` and return ``out``.

    ``out/json/<task>.json`` (records with video, question, candidates, answer, question_id, caption and, for
    action_sequence, start/end) and ``out/video/<task>/<task>_<index>.mp4``; plus ``out/synth.json`` with the
    generator's configuration and seed. The json is byte-identical for the same arguments.
    """
    out = Path(out)
    (out / "json").mkdir(parents=True, exist_ok=True)
    iterator: Iterator = ((t, i) for t in tasks for i in range(n_per_task))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(tasks) * n_per_task, desc="synth")
    records: dict[str, list] = {t: [] for t in tasks}
    for task, i in iterator:
        clip = generate_clip(task, seed, i, cfg)
        name = f"{task}_{i:04d}.mp4"
        write_mp4(out / "video" / task / name, clip.frames, cfg.fps)
        records[task].append(clip.record(name, f"{task}_{i:04d}"))
    for task, recs in records.items():
        (out / "json" / f"{task}.json").write_text(json.dumps(recs, indent=1) + "\n", encoding="utf-8")
    meta = {"generator": "mapflow_utils.synthetic", "seed": seed, "n_per_task": n_per_task, "tasks": list(tasks),
            "config": asdict(cfg)}
    (out / "synth.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return out
