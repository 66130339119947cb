"""The perception-pretrained vision tower (our CLIP): labels read exactly from the generator's pixels, the pooled
features the LLM receives, the count truth the generator records, and the probes."""

import numpy as np
import pytest
import torch

from mapflow_utils import perception as P
from mapflow_utils.probes import fit_probe
from mapflow_utils.synthetic import COLORS, SCENES, SynthConfig, generate_clip, scene_background


def test_no_scene_texture_uses_an_object_colour():
    for s in SCENES:
        assert (P.pixel_classes(scene_background(s, 64)[None]) == 0).all(), s


def test_a_square_covers_exactly_its_sub_cells():
    img = scene_background("forest", 64).copy()
    img[18:30, 36:48] = COLORS["blue"]  # rows 18-29, cols 36-47
    tg = P.token_targets(img[None])
    m = tg["mask"][0].reshape(P.GRID * P.GRID, len(P.OBJECT_COLORS), P.SUB, P.SUB)
    blue = P.OBJECT_COLORS.index("blue")
    assert m[:, [c for c in range(len(P.OBJECT_COLORS)) if c != blue]].sum() == 0
    # the oracle: count the square's pixels (rows 18-29, cols 36-47) inside each sub-cell of token (row 1, col 2)
    cell = 64 // (P.GRID * P.SUB)
    expect = np.zeros((P.SUB, P.SUB))
    for i in range(P.SUB):
        for j in range(P.SUB):
            y0, x0 = 16 + i * cell, 32 + j * cell
            rows = max(0, min(y0 + cell, 30) - max(y0, 18))
            cols = max(0, min(x0 + cell, 48) - max(x0, 36))
            expect[i, j] = rows * cols / cell ** 2
    assert 0 < expect.sum() < P.SUB ** 2  # partly covered: the test can tell sub-cells apart
    np.testing.assert_allclose(m[1 * P.GRID + 2, blue].numpy(), expect)
    assert float(m[:, blue].sum()) == pytest.approx(12 * 12 / (64 // (P.GRID * P.SUB)) ** 2)  # every pixel counted once
    assert int(tg["scene"][0]) == SCENES.index("forest")
    assert int(P.token_targets(np.zeros((1, 64, 64, 3), np.uint8))["scene"][0]) == P.SCENE_CLASSES.index("black")


def test_pooled_features_are_what_the_projector_receives():
    from transformers import LlamaConfig, LlavaNextVideoConfig, LlavaNextVideoForConditionalGeneration

    tower = P.new_tower(P.TowerConfig(hidden=32, layers=1, heads=2), seed=1).eval()
    text = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=1, vocab_size=100)
    cfg = LlavaNextVideoConfig(vision_config=tower.config, text_config=text, vision_feature_layer=-1,
                               vision_feature_select_strategy="default", spatial_pool_stride=2,
                               spatial_pool_mode="average", video_token_index=99, image_token_index=98)
    model = LlavaNextVideoForConditionalGeneration(cfg).eval()
    model.model.vision_tower.load_state_dict(tower.state_dict())
    model.model.multi_modal_projector = torch.nn.Identity()
    frames = P.training_frames(0, 0, clips=1, images=0)
    with torch.no_grad():
        px = P.pixels(frames)
        out = model.model.get_video_features(pixel_values_videos=px[None])
        out = getattr(out, "pooler_output", out)
        out = out[0] if isinstance(out, (tuple, list)) else out
        ours = P.pooled_features(tower, px)
    torch.testing.assert_close(out.reshape(ours.shape), ours)


def test_training_frames_depend_only_on_seed_and_step():
    a, b = P.training_frames(3, 7, 2, 2), P.training_frames(3, 7, 2, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, P.training_frames(3, 8, 2, 2))


def test_count_truth_matches_the_pixels():
    cfg = SynthConfig()
    c = generate_clip("object_count", 0, 5, cfg)
    off = c.meta["content_offset"]
    assert len(c.meta["squares"]) == 3 + cfg.distractors + 1
    for sq in c.meta["squares"]:
        assert len(sq["x"]) == cfg.content
        for k in (0, cfg.content // 2, cfg.content - 1):
            x0, y0 = int(round(sq["x"][k])), int(round(sq["y"]))
            # a pixel well inside the square has its colour (squares never overlap: one lane each)
            assert tuple(c.frames[off + k, y0 + 5, x0 + 5]) == COLORS[sq["color"]]
    asked = c.question.split()[2]
    moving = sum(sq["x"][0] != sq["x"][1] for sq in c.meta["squares"] if sq["color"] == asked)
    assert str(moving) == c.answer


def test_probe_separates_what_is_separable_and_not_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 5, generator=g)
    y = (x[:, 0] > 0).long()
    assert fit_probe(x[:2000], y[:2000], x[2000:], y[2000:], 2) > 0.95
    noise = torch.randint(0, 2, (3000,), generator=g)
    assert fit_probe(x[:2000], noise[:2000], x[2000:], noise[2000:], 2) < 0.6


def test_attention_probe_reads_order_only_with_the_frame_index():
    """Each clip: 4 frames x 2 tokens, one token marked with colour 0 and one with colour 1 in different frames; the
    question asks about one colour: does it come first? One attention layer with the frame index reads it; without
    the frame index the tokens are a set, so order is unreadable (the no-time control)."""
    from mapflow_utils.probes import fit_attention_probe

    g = torch.Generator().manual_seed(0)
    n, frames, per = 1200, 4, 2
    x = 0.1 * torch.randn(n, frames * per, 3, generator=g)
    when = torch.stack([torch.randperm(frames, generator=g)[:2] for _ in range(n)])  # frame of colour 0 and 1
    for c in range(2):
        x[torch.arange(n), when[:, c] * per + torch.randint(0, per, (n,), generator=g), c] += 1.0
    q = torch.randint(0, 2, (n,), generator=g)
    y = (when[torch.arange(n), q] < when[torch.arange(n), 1 - q]).long()
    frame = torch.arange(frames).repeat_interleave(per)
    split = (x[:900], q[:900], y[:900], x[900:], q[900:], y[900:], 2)
    assert fit_attention_probe(*split, frame=frame) > 0.8  # measured 0.91; majority 0.59
    assert fit_attention_probe(*split, frame=None) < 0.65  # measured 0.52


def test_frame_by_frame_caption_reads_colour_and_cell_from_the_pixels():
    bg = scene_background("beach", 64)
    a, b = bg.copy(), bg.copy()
    a[2:14, 2:14] = COLORS["red"]  # centre (7.5, 7.5): northwest
    b[40:52, 22:34] = COLORS["red"]  # centre (45.5, 27.5): south
    b[20:32, 44:56] = COLORS["blue"]  # centre (25.5, 49.5): east
    frames = np.stack([np.zeros_like(a), a, b, bg])
    assert P.frame_by_frame(frames) == "1 black . 2 red northwest . 3 red south , blue east . 4 nothing ."


def test_last_token_probe_finds_what_a_trained_model_carries():
    """The shipped from-scratch tiny Video-FT answers Moving Direction by content well above chance: a linear probe
    of the answer at its last position must beat the majority class; the same probe on the ImageLLM (never trained
    on time) must not do as well."""
    from mapflow_utils import models, paths
    from mapflow_utils.probes import last_token_probe

    def probe(path):
        model, processor, _ = models.load(path)
        return last_token_probe(model, processor, "moving_direction", n=100, answer_format=models.answer_format(path))

    video = probe(paths.VIDEO_MODEL)
    assert video["best"] >= video["majority"] + 0.2, video
    assert probe(paths.IMAGE_MODEL)["best"] < video["best"], video


def test_head_movement_labels_compose_the_count_answer(tmp_path):
    """The mask-head movement read-out's labels come from the generator's truth: for every clip, the squares that
    move in a pair inside the first half are exactly the count answer (what ``count_from_head_movement`` composes)."""
    from mapflow_utils import perception as P

    run = P.train_tower(P.TowerStageConfig(steps=1, clips=1, images=1, log_every=1), tmp_path / "t", log=lambda *_: 0)
    change, moved, first, answers = P.head_movement_data(P.load_tower(run), P.load_heads(run), seed=5, n_clips=6)
    assert change.shape == moved.shape == (6, 3, len(first)) and (change >= 0).all()
    assert torch.equal(moved[:, :, first].any(-1).sum(1), answers)
