"""The adapter on tiny random-weight copies of every supported video-LLM class (see mapflow_utils/tiny_vlms.py)."""

import functools

import numpy as np
import pytest
import torch

from mapflow_utils import models, paths
from mapflow_utils.data import load_tvbench
from mapflow_utils.models import SUPPORT, UnsupportedModelError, adapter_for
from mapflow_utils.prompts import build_prompt
from mapflow_utils.spans import expansion_range as _expansion
from mapflow_utils.models.tiny_vlms import FAMILIES, build_tiny, save_tiny


def expansion_range(unexpanded, expanded):
    return _expansion(unexpanded, expanded)[1]


NUM_FRAMES = 8
#: What each family passes to its language model as ``position_ids`` (None: the text model counts 0..L-1).
POSITION_ROWS = {name: None for name in FAMILIES} | {"Qwen2VLForConditionalGeneration": 3,
                                                      "Qwen2_5_VLForConditionalGeneration": 3}
#: Number of frame ranges for 8 frames (Qwen: one per temporal group of temporal_patch_size=2 frames).
NUM_RANGES = {name: NUM_FRAMES for name in FAMILIES} | {"Qwen2VLForConditionalGeneration": 4,
                                                         "Qwen2_5_VLForConditionalGeneration": 4}

pytestmark = pytest.mark.filterwarnings("error::UserWarning")


@functools.lru_cache(maxsize=None)
def samples():
    ds = load_tvbench(paths.SYNTHETIC)
    return [ds[i] for i in (0, 150, 350)]  # three tasks


@functools.lru_cache(maxsize=None)
def prepared(name: str, i: int = 0, fmt: str = "letter"):
    """(adapter, processor inputs, unexpanded ids, video range) for sample ``i``."""
    model, processor = build_tiny(name)
    adapter = adapter_for(model, processor)
    s = samples()[i]
    text = build_prompt(processor, s.question, s.candidates, fmt, task=s.task).text
    inputs = adapter.inputs(s.frames(NUM_FRAMES), text)
    unexpanded = processor.tokenizer(text)["input_ids"]
    return adapter, inputs, unexpanded, expansion_range(unexpanded, inputs["input_ids"][0].tolist())


def forward(adapter, inputs):
    with torch.no_grad():
        return adapter.model(**inputs).logits


@pytest.fixture(params=FAMILIES)
def name(request):
    return request.param


def test_every_family_is_supported_and_tiny():
    from mapflow_utils.models.tiny_vlms import TEXT

    assert FAMILIES == tuple(SUPPORT)
    for n in FAMILIES:
        model, processor = build_tiny(n)
        text = model.config.text_config
        for key in ("num_hidden_layers", "num_attention_heads", "num_key_value_heads", "hidden_size"):
            assert getattr(text, key) == TEXT[key], (n, key)
        want = SUPPORT[n].processor_class or SUPPORT[n].model_class.replace("ForConditionalGeneration", "Processor")
        assert type(processor).__name__ == want
        assert sum(p.numel() for p in model.parameters()) < 400_000


def test_adapter_parts(name):
    adapter, inputs, _, video = prepared(name)
    model = adapter.model
    assert adapter.family is SUPPORT[name]
    assert adapter.language_model is getattr(model.model, "text_model" if name.startswith("SmolVLM") else
                                             "language_model")
    assert adapter.num_layers == 3 == len(adapter.language_model.layers)
    assert adapter.final_norm is adapter.language_model.norm
    assert adapter.lm_head is model.lm_head
    assert adapter.input_embeddings.weight.shape == (len(adapter.tokenizer), 64)
    # the video token id is what fills the video range (InternVL: <IMG_CONTEXT>), and is not a hard-coded id
    ids = inputs["input_ids"][0]
    in_video = (ids == adapter.video_token_id).nonzero().flatten().tolist()
    assert in_video and all(i in video for i in in_video)
    assert adapter.tokenizer.convert_ids_to_tokens(adapter.video_token_id) in (
        "<video>", "<|video_pad|>", "<IMG_CONTEXT>", "<image>")  # PLLaVA: the one <image> stands for the video


def test_forward_gives_finite_logits(name):
    adapter, inputs, _, _ = prepared(name)
    logits = forward(adapter, inputs)
    assert logits.shape == (1, inputs["input_ids"].shape[1], len(adapter.tokenizer))
    assert torch.isfinite(logits).all()
    if name.startswith("Qwen"):
        assert "mm_token_type_ids" in inputs and int((inputs["mm_token_type_ids"] == 2).sum()) == 16
    # the logits depend on the video
    other = dict(inputs)
    key = "pixel_values" if name.startswith(("InternVL", "Pllava", "SmolVLM")) else "pixel_values_videos"
    other[key] = inputs[key].flip(1 if name.startswith("SmolVLM") else 0) + 0.5  # SmolVLM: [1, T, 3, H, W]
    assert (forward(adapter, other) - logits).abs().max() > 1e-4


@pytest.mark.parametrize("i", [0, 1, 2])
def test_frame_ranges_partition_the_video(name, i):
    adapter, inputs, unexpanded, video = prepared(name, i)
    ids = inputs["input_ids"][0].tolist()
    tok = adapter.tokenizer
    # the prompt around the video is unchanged, and the video range holds every video token
    assert ids[:video.start] == unexpanded[:video.start]
    assert len(video) > 0 and ids.count(adapter.video_token_id) == sum(t == adapter.video_token_id for t in
                                                                       ids[video.start:video.stop])
    ranges = adapter.frame_ranges(inputs["input_ids"], video, NUM_FRAMES)
    assert len(ranges) == NUM_RANGES[name]
    assert ranges[0].start == video.start and ranges[-1].stop == video.stop
    assert all(a.stop == b.start for a, b in zip(ranges, ranges[1:]))
    assert all(len(r) > 0 for r in ranges)
    video_tok = tok.convert_ids_to_tokens(adapter.video_token_id)
    pieces = [tok.decode(ids[r.start:r.stop]) for r in ranges]
    counts = [sum(t == adapter.video_token_id for t in ids[r.start:r.stop]) for r in ranges]
    if name == "InternVLForConditionalGeneration":
        for k, piece in enumerate(pieces):
            assert piece.lstrip("\n").startswith(f"Frame{k + 1}: <img>") and piece.endswith("</img>")
            assert counts[k] == 4 and piece.count(video_tok) == 4
    elif name.startswith("VideoLlama3"):  # timestamps at fps 1; token compression leaves <= 4 tokens per frame
        for k, piece in enumerate(pieces):
            assert piece.startswith(f"Time {k:.1f}s:")
            assert piece.rstrip(",").endswith(video_tok)
            assert 1 <= counts[k] <= 4 and piece.count(video_tok) == counts[k]
        assert counts[0] == 4  # the first frame is never compressed
    elif name.startswith("SmolVLM"):  # the intro goes to frame 1, the closing blank line to the last frame
        block = "<fake_token_around_image><global-img>" + video_tok * 4 + "<fake_token_around_image>"
        assert pieces[0].startswith("You are provided the following series of eight frames from a 0:00:07")
        for k, piece in enumerate(pieces):
            assert piece.split("\n\n")[1 if k == 0 else 0].rstrip("\n") in (f"Frame from 00:{k:02d}:" + block,
                                                                            f"\nFrame from 00:{k:02d}:" + block)
            assert counts[k] == 4
        assert pieces[-1].endswith(block + "\n\n")
    else:  # only video tokens; OneVision's newline token goes to the last frame
        assert all(piece == video_tok * len(r) for piece, r in zip(pieces, ranges))
        extra = [0] * (len(ranges) - 1) + [1 if name.startswith("LlavaOnevision") else 0]
        assert [len(r) for r in ranges] == [4 + e for e in extra]


def test_frame_ranges_reject_a_wrong_frame_count(name):
    adapter, inputs, _, video = prepared(name)
    with pytest.raises(ValueError):
        adapter.frame_ranges(inputs["input_ids"], video, 5)


def test_videollama3_compression_keeps_frames_apart():
    adapter, _, _, _ = prepared("VideoLlama3ForConditionalGeneration")
    s = samples()[0]
    text = build_prompt(adapter.processor, s.question, s.candidates, "letter", task=s.task).text
    still = np.repeat(s.frames(NUM_FRAMES)[:1], NUM_FRAMES, axis=0)  # nothing changes: 1 token per later frame
    ids = adapter.inputs(still, text)["input_ids"][0].tolist()
    video = expansion_range(adapter.tokenizer(text)["input_ids"], ids)
    frames = adapter.frame_ranges(ids, video, NUM_FRAMES)
    counts = [ids[r.start:r.stop].count(adapter.video_token_id) for r in frames]
    assert counts == [4] + [1] * (NUM_FRAMES - 1)


@pytest.mark.parametrize("family", [n for n in FAMILIES if SUPPORT[n].needs_fps])
def test_fps_reaches_the_processor(family):
    adapter, _, _, _ = prepared(family)
    s = samples()[0]
    text = build_prompt(adapter.processor, s.question, s.candidates, "letter", task=s.task).text
    inputs = adapter.inputs(s.frames(NUM_FRAMES), text, fps=2.0)
    if family.startswith("Qwen2_5"):  # seconds per temporal group = temporal_patch_size / fps
        assert inputs["second_per_grid_ts"].tolist() == [1.0]
    elif family.startswith("SmolVLM"):  # whole seconds: frame 3 at 1.5 s is "00:01"
        ids = inputs["input_ids"][0].tolist()
        video = expansion_range(adapter.tokenizer(text)["input_ids"], ids)
        frames = adapter.frame_ranges(ids, video, NUM_FRAMES)
        assert adapter.tokenizer.decode(ids[frames[3].start:frames[3].stop]).startswith("\nFrame from 00:01:")
        assert "from a 0:00:03 [H:MM:SS] video" in adapter.tokenizer.decode(ids)
    else:
        ids = inputs["input_ids"][0].tolist()
        video = expansion_range(adapter.tokenizer(text)["input_ids"], ids)
        frames = adapter.frame_ranges(ids, video, NUM_FRAMES)
        assert adapter.tokenizer.decode(ids[frames[3].start:frames[3].stop]).startswith("Time 1.5s:")


def test_language_model_reproduces_the_logits(name):
    adapter, inputs, _, video = prepared(name)
    seen = {}
    hook = adapter.language_model.register_forward_pre_hook(lambda m, args, kwargs: seen.update(kwargs),
                                                            with_kwargs=True)
    try:
        logits = forward(adapter, inputs)
    finally:
        hook.remove()
    ids = inputs["input_ids"]
    embeds, positions = seen["inputs_embeds"], seen.get("position_ids")
    assert embeds.shape == (1, ids.shape[1], 64)
    # exactly the video tokens got new embeddings (InternVL: <IMG_CONTEXT>; OneVision: incl. the newline)
    changed = (embeds - adapter.input_embeddings(ids)).abs().amax(-1) > 0
    assert torch.equal(changed, ids == adapter.video_token_id)
    if POSITION_ROWS[name] is None:
        assert positions is None
    else:  # mRoPE: (t, h, w) rows; equal on text, spread over h/w on the video
        assert positions.shape == (3, 1, ids.shape[1])
        text_pos = positions[:, 0, :video.start]
        assert torch.equal(text_pos[0], text_pos[1]) and torch.equal(text_pos[0], text_pos[2])
        vid = positions[:, 0, video.start:video.stop]
        assert len(set(vid[1].tolist())) == 2 and len(set(vid[2].tolist())) == 2  # 2x2 merged grid
        assert len(set(vid[0].tolist())) == 4  # 4 temporal groups
    with torch.no_grad():
        out = adapter.language_model(inputs_embeds=embeds, position_ids=positions)
        again = adapter.lm_head(out.last_hidden_state)
    assert (again - logits).abs().max() <= 1e-5
    # the same stack takes `cache=` / `use_cache=` (prefix reuse)
    from transformers import DynamicCache

    cache = DynamicCache(config=adapter.model.config.text_config)
    with torch.no_grad():
        adapter.language_model(inputs_embeds=embeds, position_ids=positions, cache=cache, use_cache=True)
    assert cache.get_seq_length() == ids.shape[1]


def test_save_and_load_round_trip_offline(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    adapter, inputs, _, _ = prepared(name)
    model, processor, loaded = models.load(save_tiny(name, tmp_path))  # what the "your model" page runs
    assert type(model) is type(adapter.model) and type(processor) is type(adapter.processor)
    assert type(getattr(processor, "video_processor", None)) is type(getattr(adapter.processor, "video_processor",
                                                                             None))
    assert loaded.family is SUPPORT[name] and loaded.video_token_id == adapter.video_token_id
    s = samples()[0]
    text = build_prompt(processor, s.question, s.candidates, "letter", task=s.task).text
    again = loaded.inputs(s.frames(NUM_FRAMES), text)
    assert torch.equal(again["input_ids"], inputs["input_ids"])
    assert (forward(loaded, again) - forward(adapter, inputs)).abs().max() <= 1e-6


def test_expansion_range_cases():
    # placeholder 9 replaced by other tokens
    assert expansion_range([1, 2, 9, 3], [1, 2, 5, 6, 7, 3]) == range(2, 5)
    # the expansion repeats the placeholder (Qwen: <|video_pad|> -> n x <|video_pad|>), at the start of the text
    assert expansion_range([8, 9, 7, 3], [8, 9, 9, 9, 7, 3]) == range(1, 4)
    assert expansion_range([9, 3], [9, 9, 9, 3]) == range(0, 3)
    # ... and ending with the placeholder, after per-frame text (VideoLLaMA3: "Time 0.0s:" + <|video_pad|> ...)
    assert expansion_range([1, 9, 3], [1, 4, 9, 9, 4, 9, 9, 3]) == range(1, 7)
    assert expansion_range([1, 9], [1, 4, 9, 9]) == range(1, 4)
    with pytest.raises(ValueError):
        expansion_range([1, 9, 3], [1, 9, 3])


def test_unsupported_model_names_the_supported_classes(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    _, processor = build_tiny(FAMILIES[0])
    with pytest.raises(UnsupportedModelError) as err:
        adapter_for(model, processor)
    assert "LlamaForCausalLM" in str(err.value) and all(n in str(err.value) for n in FAMILIES)
    model.save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="Qwen2_5_VLForConditionalGeneration"):
        models.load(tmp_path)


def test_too_old_transformers_names_the_fix(monkeypatch):
    import re as _re

    pyproject = (paths.ROOT / "pyproject.toml").read_text()
    pin = _re.escape(_re.search(r'"transformers==([^"]+)"', pyproject).group(1))
    model, processor = build_tiny(FAMILIES[0])
    monkeypatch.setattr(models, "transformers_version", lambda: "4.40.0")
    with pytest.raises(RuntimeError, match=rf"4\.40\.0.*pip install 'transformers=={pin}'"):
        adapter_for(model, processor)
    with pytest.raises(RuntimeError, match=rf"transformers=={pin}"):
        models.load(paths.ROOT / "no-such-model")
