"""The synthetic generator: determinism, TVBench layout, and the static-bias rule (no single frame answers)."""

import json

import numpy as np
import pytest

from mapflow_utils.data import PAPER_TASKS, load_tvbench, sample_indices
from mapflow_utils.synthetic import (COLORS, LONG, REVERSIBLE, SynthConfig, _mover, generate_clip, image_sample,
                                     write_tvbench)


def sampled(clip, num_frames=8, fps=8):
    """The frames a model sees: segment midpoints inside start/end, ``[T, H, W, 3]``."""
    return clip.frames[sample_indices(len(clip.frames), num_frames, fps, clip.start, clip.end)]


def test_same_seed_gives_identical_json_and_frames(tmp_path):
    a = write_tvbench(tmp_path / "a", n_per_task=3, seed=5)
    b = write_tvbench(tmp_path / "b", n_per_task=3, seed=5)
    c = write_tvbench(tmp_path / "c", n_per_task=3, seed=6, tasks=["moving_direction"])
    for task in PAPER_TASKS:
        assert (a / "json" / f"{task}.json").read_bytes() == (b / "json" / f"{task}.json").read_bytes()
    da, db = load_tvbench(a), load_tvbench(b)
    for sa, sb in zip(da, db):
        assert np.array_equal(sa.frames(), sb.frames())
    assert (a / "json/moving_direction.json").read_bytes() != (c / "json/moving_direction.json").read_bytes()


def test_written_frames_decode_losslessly(tmp_path):
    root = write_tvbench(tmp_path, n_per_task=1, seed=3, tasks=["object_count"])
    s = load_tvbench(root, tasks=["object_count"])[0]
    clip = generate_clip("object_count", 3, 0)
    diff = np.abs(s.frames().astype(int) - sampled(clip).astype(int)).max()
    assert diff <= 2  # RGB -> YUV 4:4:4 -> RGB rounding only


@pytest.mark.parametrize("cfg", [SynthConfig(), LONG], ids=["short", "long"])
@pytest.mark.parametrize("task", PAPER_TASKS)
def test_first_and_last_sampled_frames_carry_nothing(task, cfg):
    t = 8 if cfg.n_frames == 16 else 32
    for i in range(12):
        clip = generate_clip(task, 0, i, cfg)
        f = sampled(clip, t)
        assert f[0].max() == 0 and f[-1].max() == 0, (task, i)
        assert f[1:-1].reshape(len(f) - 2, -1).max(axis=1).min() > 0  # the rest is content


@pytest.mark.parametrize("task", REVERSIBLE)
def test_opposite_answer_is_the_same_frames_backwards(task):
    """Any single frame is as likely under either answer: the twin clip with the opposite answer shows exactly the
    same frames in reverse order (and the play direction is a fair coin)."""
    coins = []
    for i in range(25):
        fwd = generate_clip(task, 1, i, reverse=False)
        rev = generate_clip(task, 1, i, reverse=True)
        assert np.array_equal(sampled(rev), sampled(fwd)[::-1]), (task, i)
        assert fwd.answer != rev.answer and fwd.candidates == rev.candidates
        assert not np.array_equal(sampled(rev), sampled(fwd))  # the clip really changes over time
        coins.append(generate_clip(task, 1, i).meta["reversed"])
    assert 5 <= sum(coins) <= 20


def _color_pixels(frame, color):
    return int((np.abs(frame.astype(int) - np.array(COLORS[color])).sum(-1) == 0).sum())


def test_object_count_always_shows_three_target_squares():
    """The number of visible asked-about squares never depends on the answer (the pilots' count leak)."""
    cfg = SynthConfig()
    answers = set()
    for i in range(40):
        clip = generate_clip("object_count", 2, i)
        color = clip.question.split()[2]
        answers.add(clip.answer)
        for f in sampled(clip)[1:-1]:
            assert _color_pixels(f, color) == 3 * cfg.obj ** 2, (i, color)
    assert answers == {"0", "1", "2", "3"}


def test_moving_direction_positions_do_not_reveal_the_axis():
    """Positions along the motion axis and across it have the same distribution, so a single frame cannot tell a
    horizontal mover from a vertical one (max CDF gap over 6,000 draws)."""
    rng = np.random.default_rng(0)
    cfg = SynthConfig()
    along, across = [], []
    for _ in range(6000):
        m = _mover(rng, cfg)
        k = rng.integers(1, cfg.content - 1)
        pos = m.positions()[k]
        along.append(pos[m.axis])
        across.append(pos[1 - m.axis])
    grid = np.linspace(0, cfg.size, 200)
    gap = np.abs((np.array(along)[:, None] <= grid).mean(0) - (np.array(across)[:, None] <= grid).mean(0)).max()
    assert gap < 0.04, gap


def _ridge_accuracy(x_train, y_train, x_test, y_test, lam=10.0):
    """One-vs-rest ridge classifier (closed form) on float features; returns test accuracy."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt, xs = (x_train - mu) / sd, (x_test - mu) / sd
    classes = np.unique(y_train)
    t = (y_train[:, None] == classes[None]).astype(float) * 2 - 1
    w = np.linalg.solve(xt.T @ xt + lam * np.eye(xt.shape[1]), xt.T @ t)
    return float((classes[(xs @ w).argmax(1)] == y_test).mean())


def _features(frame, color):
    """8x8x3 colour layout plus an 8x8 map of the asked-about colour (when the question names one)."""
    layout = frame.reshape(8, 8, 8, 8, 3).mean((1, 3)).ravel() / 255.0
    mask = np.zeros((64, 64)) if color is None else (np.abs(frame.astype(int) - COLORS[color]).sum(-1) == 0)
    return np.concatenate([layout, mask.reshape(8, 8, 8, 8).mean((1, 3)).ravel()])


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_single_frame_classifier_stays_near_chance(task):
    """A classifier that sees one frame (a random middle one) is near chance, while the same classifier that sees
    the first and last content frames does far better on the direction task: the test has power."""
    n = 360
    single, pair, labels = [], [], []
    rng = np.random.default_rng(0)
    for i in range(n):
        clip = generate_clip(task, 11, i)
        f = sampled(clip)
        color = next((w for w in clip.question.split() if w in COLORS), None)
        single.append(_features(f[rng.integers(1, 7)], color))
        pair.append(np.concatenate([_features(f[1], color), _features(f[6], color)]))
        labels.append(clip.answer)
    y = np.array(labels)
    chance = max(np.mean(y == c) for c in np.unique(y))
    x = np.array(single)
    acc = _ridge_accuracy(x[:270], y[:270], x[270:], y[270:])
    assert acc < chance + 0.15, (task, acc, chance)
    if task == "moving_direction":
        p = np.array(pair)
        acc2 = _ridge_accuracy(p[:270], y[:270], p[270:], y[270:])
        assert acc2 > chance + 0.3, (acc2, chance)


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_options_have_unique_first_words_and_balanced_answers(task):
    positions = []
    for i in range(60):
        clip = generate_clip(task, 4, i)
        first = [c.split()[0] for c in clip.candidates]
        assert len(set(first)) == len(first), clip.candidates
        assert clip.answer in clip.candidates
        positions.append(clip.candidates.index(clip.answer))
    # the answer's position among the options is not a shortcut
    counts = np.bincount(positions)
    assert counts.min() >= 60 / len(counts) * 0.4, counts


def test_image_samples_are_deterministic_and_consistent():
    a, b = image_sample(0, 5), image_sample(0, 5)
    assert np.array_equal(a.image, b.image) and a.caption == b.caption and a.qa == b.qa
    for i in range(30):
        s = image_sample(1, i)
        assert s.image.shape == (64, 64, 3)
        for question, cands, answer in s.qa:
            assert answer in cands and len({c.split()[0] for c in cands}) == len(cands)
        n_squares = s.caption.count(" square ")
        assert s.qa[-1][2] == str(n_squares)


def test_json_records_follow_tvbench_fields(synth_root):
    for task in PAPER_TASKS:
        recs = json.loads((synth_root / "json" / f"{task}.json").read_text())
        for r in recs:
            assert {"video", "question", "candidates", "answer"} <= set(r)
            assert (synth_root / "video" / task / r["video"]).is_file()
            assert ("start" in r) == (task == "action_sequence")
