"""The paper's own subjects on tiny stand-ins written in their published layouts: PLLaVA-style LLaVA-NeXT-Video-FT,
its llava-v1.6 image base, and InternVL-Chat V1.5 (Mini-InternVL) converted to transformers' InternVL. Each equals a
plain reference forward of the same math written here; the paper's eval_mvbench prompt is rendered exactly."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mapflow_utils.models import internvl_chat, pllava
from mapflow_utils import models
from mapflow_utils.models.block_processor import VideoBlockProcessor
from mapflow_utils.prompts import SYSTEM_PROMPT, build_prompt
from mapflow_utils.models.tiny_vlms import FRAME, LLAVA_V16, build_tiny, save_tiny

PLLAVA, CHAT = "PllavaForConditionalGeneration", "InternVLChatV1_5"


def _tiny(num_frames=4, pool=(2, 2, 2)):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)  # 4×4 patches per frame
    text = LlamaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=64, max_position_embeddings=256)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=63, vision_feature_layer=-2,
                      vision_feature_select_strategy="default", projector_hidden_act="gelu")
    cfg.pooling_shape, cfg.num_frames, cfg.use_pooling = list(pool), num_frames, True
    torch.manual_seed(0)
    return pllava.PllavaForConditionalGeneration(cfg).eval(), cfg


def test_pllava_pools_after_the_projector_and_matches_a_reference_forward():
    model, cfg = _tiny()
    t, h, w = cfg.pooling_shape
    ids = torch.tensor([[1, 5, 6] + [cfg.image_token_index] * (t * h * w) + [7, 8, 9]])
    pixels = torch.randn(cfg.num_frames, 3, 32, 32)
    with torch.no_grad():
        got = model(input_ids=ids, pixel_values=pixels).logits
        # reference: CLIP per frame (layer -2, CLS dropped) -> projector per patch -> 3-D average pool -> merge
        hs = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]  # [T, 16, 32]
        proj = model.model.multi_modal_projector(hs)  # [T, 16, 48]
        grid = proj.reshape(cfg.num_frames, 4, 4, -1).permute(3, 0, 1, 2)[None]
        pooled = F.avg_pool3d(grid, (2, 2, 2))[0].permute(1, 2, 3, 0).reshape(-1, proj.shape[-1])  # exact halves
        emb = model.get_input_embeddings()(ids)
        emb[0, 3:3 + t * h * w] = pooled
        want = model.lm_head(model.model.language_model(inputs_embeds=emb).last_hidden_state)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_pooling_is_not_llava_next_videos_order():
    """Pooling after the projector differs from pooling before it (LlavaNextVideo's order): the GELU between."""
    model, cfg = _tiny()
    pixels = torch.randn(cfg.num_frames, 3, 32, 32)
    with torch.no_grad():
        hs = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        after = pllava.pool_video(model.model.multi_modal_projector(hs), tuple(cfg.pooling_shape))
        before = model.model.multi_modal_projector(pllava.pool_video(hs, tuple(cfg.pooling_shape)))
    assert not torch.allclose(after, before, atol=1e-4)


def test_legacy_checkpoint_keys_load(tmp_path):
    """The paper's checkpoints use the pre-4.47 LLaVA layout (``language_model.model.*``, ``language_model.lm_head``,
    ``vision_tower.*``, ``multi_modal_projector.linear_1/2``): written that way, they load with the same outputs."""
    import json

    from safetensors.torch import save_file

    model, cfg = _tiny()
    legacy = {}
    for k, v in model.state_dict().items():
        k = (k.replace("model.language_model.", "language_model.model.").replace("lm_head.", "language_model.lm_head.")
             .replace("model.vision_tower.", "vision_tower.").replace("model.multi_modal_projector.", "multi_modal_projector."))
        legacy[k] = v.contiguous()
    assert any(k.startswith("language_model.model.") for k in legacy)
    save_file(legacy, tmp_path / "model.safetensors")
    cfg.save_pretrained(tmp_path)
    loaded = pllava.PllavaForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert json.loads((tmp_path / "config.json").read_text())["pooling_shape"] == [2, 2, 2]
    t, h, w = cfg.pooling_shape
    ids = torch.tensor([[1, 5] + [cfg.image_token_index] * (t * h * w) + [7]])
    pixels = torch.randn(cfg.num_frames, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids, pixel_values=pixels).logits,
                                   model(input_ids=ids, pixel_values=pixels).logits)


def test_current_layout_round_trips(tmp_path):
    model, cfg = _tiny()
    model.save_pretrained(tmp_path)
    loaded = pllava.PllavaForConditionalGeneration.from_pretrained(tmp_path).eval()
    for (k, a), (k2, b) in zip(sorted(model.state_dict().items()), sorted(loaded.state_dict().items())):
        assert k == k2 and torch.equal(a, b), k


# ------------------------------------------------------------------ the paper's prompt (conversation eval_mvbench)

def _frames(n=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, FRAME, FRAME, 3), dtype=np.uint8)


def _eval_mvbench(system: str, roles: tuple[str, str], sep: str, role_sep: str, media: str, question: str) -> str:
    """The paper's conversation rendered from its definition: the system text and "\n", then each message as
    ``role + role_sep + message + sep`` (the video as a user message of its own), then the assistant role and the
    prefill ``Best option:(``. The question: options one per line, then " \n" and the instruction."""
    user, assistant = roles
    return (system + "\n" + sep + user + role_sep + media + sep + user + role_sep + question + sep + assistant
            + role_sep.rstrip(" ") + "Best option:(")


QUESTION = "Question: What happened?\nOptions:\n(A) a\n(B) b \nOnly give the best option."


def _same_tokens(processor, got: str, want: str) -> None:
    assert got == want, f"\n got: {got!r}\nwant: {want!r}"
    tok = processor.tokenizer
    assert tok(got, add_special_tokens=False)["input_ids"] == tok(want, add_special_tokens=False)["input_ids"]


def test_eval_mvbench_prompt_with_vicuna_roles():
    """LLaVA-NeXT-Video-FT (PLLaVA) and its llava-v1.6 base: Vicuna roles "USER"/"ASSISTANT" with ": ", sep " "."""
    _, processor = build_tiny(PLLAVA)
    p = build_prompt(processor, "What happened?", ["a", "b"], "letter")
    want = _eval_mvbench(SYSTEM_PROMPT, ("USER", "ASSISTANT"), " ", ": ", "<image>\n", QUESTION)
    assert want.endswith("(B) b \nOnly give the best option. ASSISTANT:Best option:(")
    _same_tokens(processor, p.text, want)


def test_eval_mvbench_prompt_with_phi3_roles():
    """Mini-InternVL (eval_mvbench_phi3): roles "<|user|>"/"<|assistant|>" with "\n", sep " ", no <|system|>, no
    <|end|>."""
    _, processor = build_tiny(CHAT)
    p = build_prompt(processor, "What happened?", ["a", "b"], "letter")
    want = _eval_mvbench(SYSTEM_PROMPT, ("<|user|>", "<|assistant|>"), " ", "\n", "<img><IMG_CONTEXT></img>\n",
                         QUESTION)
    assert want.startswith(SYSTEM_PROMPT + "\n <|user|>\n<img><IMG_CONTEXT></img>\n <|user|>\nQuestion:")
    assert want.endswith(" \nOnly give the best option. <|assistant|>\nBest option:(")
    _same_tokens(processor, p.text, want)


def test_videollama3_prompt_is_its_own_mvbench_format():
    """VideoLLaMA3 (the paper's third family): its own ChatML roles, the options one per line, then "Answer with the
    option's letter from the given choices directly and only give the best option.", and no prefill: the answer is
    the letter the assistant writes first. Content answers (no letters) keep the paper's instruction."""
    from mapflow_utils.spans import answer_token_ids

    _, processor = build_tiny("VideoLlama3ForConditionalGeneration")
    ad = models.adapter_for(*build_tiny("VideoLlama3ForConditionalGeneration"))  # the family names the style
    assert ad.processor.question_style == "videollama3"
    p = build_prompt(ad.processor, "What happened?", ["a", "b"], "letter")
    want = ("<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n<|video_pad|>\n"
            "Question: What happened?\nOptions:\n(A) a\n(B) b\n"
            "Answer with the option's letter from the given choices directly and only give the best option."
            "<|im_end|>\n<|im_start|>assistant\n")
    _same_tokens(processor, p.text, want)
    assert p.prefix == "" and p.answers == ("A", "B")
    tok = processor.tokenizer
    assert [tok.decode([i]) for i in answer_token_ids(p, tok)] == ["A", "B"]
    content = build_prompt(ad.processor, "What happened?", ["a", "b"], "content")
    assert content.instruction == "Only give the best option." and content.text.endswith("Best option:")


def test_the_paper_subjects_processors_key_the_cache_by_what_shapes_the_inputs():
    """Their processor's fingerprint is its configuration (template, question style, frames), not an object
    address: the same checkpoint loaded twice shares cached results; another question style does not."""
    from mapflow_utils.cache import fingerprint

    import copy

    from mapflow_utils.models.block_processor import VideoBlockProcessor

    _, a = build_tiny(PLLAVA)  # shared by other tests: not modified here
    again = VideoBlockProcessor(a.image_processor, a.tokenizer, a.video_token, a.tokens_per_frame, a.pooled_frames,
                                a.num_frames, a.chat_template)
    assert a.to_json_string() == again.to_json_string() and "0x" not in a.to_json_string()
    other = copy.copy(a)
    other.question_style = "mapflow"
    assert fingerprint(a.to_json_string()) != fingerprint(other.to_json_string())


def test_block_processor_expands_one_placeholder_per_video():
    _, processor = build_tiny(PLLAVA)
    inputs = processor(text="x <image> y", videos=[_frames()])
    assert int((inputs["input_ids"] == processor.video_token_id).sum()) == 8 * 2 * 2  # pooled t x h x w
    assert tuple(inputs["pixel_values"].shape) == (8, 3, FRAME, FRAME)
    _, chat = build_tiny(CHAT)
    ids = chat(text="<img><IMG_CONTEXT></img>", videos=[_frames(3)])["input_ids"]
    assert int((ids == chat.video_token_id).sum()) == 3 * 4  # T x (2x2 after the pixel shuffle)


def test_block_processor_names_the_fix():
    _, processor = build_tiny(PLLAVA)
    with pytest.raises(ValueError, match="num_frames=8"):
        processor(text="<image>", videos=[_frames(4)])
    with pytest.raises(ValueError, match="chat template"):
        processor(text="no placeholder", videos=[_frames()])


# ------------------------------------------------------------------ llava-v1.6: the ImageLLM base of the pair

def test_llava_v16_base_runs_as_the_papers_image_llm(tmp_path):
    """A llava-v1.6 checkpoint (llava_next config, legacy keys, image_newline) loads into the PLLaVA class with the
    paper's pooling (half the patch grid per side, 8 frames): the same function as the PLLaVA model of its weights."""
    reference, processor = build_tiny(PLLAVA)
    model, loaded_processor, adapter = models.load(save_tiny(LLAVA_V16, tmp_path))
    assert type(model) is pllava.PllavaForConditionalGeneration and adapter.family.name == PLLAVA
    assert list(model.config.pooling_shape) == [8, 2, 2] and model.config.num_frames == 8
    assert isinstance(loaded_processor, VideoBlockProcessor)
    inputs = loaded_processor(text=build_prompt(loaded_processor, "q?", ["a", "b"]).text, videos=[_frames()])
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, reference(**inputs).logits)


def test_pllava_checkpoint_keeps_its_published_layout(tmp_path):
    folder = save_tiny(PLLAVA, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llava" and config["pooling_shape"] == [8, 2, 2] and config["num_frames"] == 8
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "multi_modal_projector.linear_1.weight" in keys and "language_model.lm_head.weight" in keys
    assert not any(k.startswith("model.") for k in keys)


@pytest.mark.parametrize("pool", [(4, 2, 2), (4, 3, 3), (8, 2, 2)])
def test_time_pooled_pllava_has_one_frame_span_per_pooled_frame(tmp_path, pool):
    """PLLaVA pools 8 input frames to ``t``: the frame spans are those t pooled frames of h·w tokens each (before,
    (4, 3, 3) stopped with "36 video tokens do not split into 8 equal frames" and (4, 2, 2) gave 8 "frames" of 2)."""
    from mapflow_utils import paths
    from mapflow_utils.data import load_tvbench
    from mapflow_utils.evaluate import prepare

    folder = save_tiny(PLLAVA, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["pooling_shape"] = list(pool)
    (folder / "config.json").write_text(json.dumps(config))
    _, _, ad = models.load(folder)
    spans = prepare(ad, load_tvbench(paths.SYNTHETIC)[0], "letter").spans
    t, h, w = pool
    assert [len(r) for r in spans.frames] == [h * w] * t


# ------------------------------------------------------------------ InternVL-Chat V1.5 → transformers' InternVL

def _internvit(sd, v, pixels):
    """InternViT as the remote code computes it: ``[T, 3, S, S]`` → ``[T, 1 + N, C]`` (no norm after the encoder)."""
    C, H, p, eps = v["hidden_size"], v["num_attention_heads"], v["patch_size"], v["layer_norm_eps"]
    e = "vision_model.embeddings."
    x = F.conv2d(pixels, sd[e + "patch_embedding.weight"], sd[e + "patch_embedding.bias"], stride=p)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd[e + "class_embedding"].expand(len(x), 1, C), x], 1) + sd[e + "position_embedding"]
    B, N, _ = x.shape
    for i in range(v["num_hidden_layers"]):
        w = {k.split(f"layers.{i}.", 1)[1]: t for k, t in sd.items() if f"encoder.layers.{i}." in k}
        y = F.layer_norm(x, (C,), w["norm1.weight"], w["norm1.bias"], eps)
        q, k, val = F.linear(y, w["attn.qkv.weight"], w["attn.qkv.bias"]).reshape(B, N, 3, H, C // H).permute(
            2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) * (C // H) ** -0.5, -1) @ val
        x = x + F.linear(a.transpose(1, 2).reshape(B, N, C), w["attn.proj.weight"], w["attn.proj.bias"]) * w["ls1"]
        y = F.layer_norm(x, (C,), w["norm2.weight"], w["norm2.bias"], eps)
        x = x + F.linear(F.gelu(F.linear(y, w["mlp.fc1.weight"], w["mlp.fc1.bias"])), w["mlp.fc2.weight"],
                         w["mlp.fc2.bias"]) * w["ls2"]
    return x


def _pixel_shuffle_v2(x, r=0.5):
    """InternVL-Chat's ``pixel_shuffle`` (ps_version v2) on ``[n, w, h, c]``."""
    n, w, h, c = x.shape
    x = x.view(n, w, int(h * r), int(c / r)).permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * r), int(w * r), int(c / (r * r)))
    return x.permute(0, 2, 1, 3).contiguous()


def test_internvl_chat_converts_to_the_same_function(tmp_path, monkeypatch):
    """The converted model equals InternVL-Chat's own math on its original weights: InternViT (CLS dropped) →
    pixel shuffle v2 → mlp1 (LayerNorm, Linear, GELU, Linear) → the context tokens' embeddings → Phi-3."""
    from safetensors.torch import load_file
    from transformers import Phi3Config, Phi3ForCausalLM

    from safetensors.torch import save_file

    monkeypatch.setenv("MAPFLOW_CACHE", str(tmp_path / "cache"))  # models.load converts into it
    folder = save_tiny(CHAT, tmp_path / "original")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "internvl_chat" and "llm_config" in config
    sd = load_file(folder / "model.safetensors")
    assert "vision_model.encoder.layers.0.attn.qkv.weight" in sd and "mlp1.3.weight" in sd
    # unit-scale vision and projector weights (the tiny init is too small to show a swapped q/k or norm)
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.randn(v.shape, generator=g) * 0.3 + (1 if k.endswith(("ls1", "ls2")) else 0))
          if k.startswith(("vision_model.", "mlp1.")) else v for k, v in sd.items()}
    save_file(sd, str(folder / "model.safetensors"))
    model, processor, adapter = models.load(folder)
    assert adapter.family.name == CHAT and adapter.family.frames == "equal"
    inputs = processor(text=build_prompt(processor, "q?", ["a", "b"]).text, videos=[_frames()])
    llm = {k: v for k, v in config["llm_config"].items() if k not in ("architectures", "model_type")}
    lm = Phi3ForCausalLM(Phi3Config(**llm)).eval()
    lm.load_state_dict({k[len("language_model."):]: t for k, t in sd.items() if k.startswith("language_model.")})
    with torch.no_grad():
        vit = _internvit(sd, config["vision_config"], inputs["pixel_values"])[:, 1:]  # [T, 16, C]
        T, N, C = vit.shape
        side = int(N ** 0.5)
        tokens = _pixel_shuffle_v2(vit.reshape(T, side, side, C)).reshape(T, -1, 4 * C)
        tokens = F.layer_norm(tokens, (4 * C,), sd["mlp1.0.weight"], sd["mlp1.0.bias"])
        tokens = F.linear(F.gelu(F.linear(tokens, sd["mlp1.1.weight"], sd["mlp1.1.bias"])), sd["mlp1.3.weight"],
                          sd["mlp1.3.bias"])
        emb = lm.get_input_embeddings()(inputs["input_ids"])
        emb[inputs["input_ids"] == adapter.video_token_id] = tokens.reshape(-1, tokens.shape[-1])
        want = lm(inputs_embeds=emb, attention_mask=inputs["attention_mask"]).logits
        got = model(**inputs).logits
        blind = dict(inputs, pixel_values=inputs["pixel_values"].flip(0))
        assert (model(**blind).logits - got).abs().max() > 1e-2  # the video matters at this scale
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_internvl_chat_conversion_is_cached_under_what_made_it(tmp_path):
    folder = save_tiny(CHAT, tmp_path / "original")
    first = internvl_chat.converted(folder, cache=tmp_path / "cache")
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert internvl_chat.converted(folder, cache=tmp_path / "cache") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"select_layer": -1, "note": "edited"}))
    second = internvl_chat.converted(folder, cache=tmp_path / "cache")
    assert second != first  # a changed config is a new key
    from safetensors.torch import load_file, save_file

    sd = load_file(folder / "model.safetensors")
    save_file({k: v + 1 for k, v in sd.items()}, str(folder / "model.safetensors"))  # same size, new weights
    assert internvl_chat.converted(folder, cache=tmp_path / "cache") != second


def test_internvl_chat_conversion_names_what_it_cannot_convert(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = save_tiny(CHAT, tmp_path / "original")
    sd = load_file(folder / "model.safetensors")
    save_file(sd | {"vision_model.encoder.layers.0.attn.q_norm.weight": torch.ones(32)},
              str(folder / "model.safetensors"))
    with pytest.raises(internvl_chat.ConversionError, match="attn.q_norm"):
        internvl_chat.convert(folder, tmp_path / "out")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"ps_version": "v1"}))
    with pytest.raises(internvl_chat.ConversionError, match="ps_version"):
        internvl_chat.convert(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written


# ------------------------------------------------------------------ one command per paper subject

def test_paper_configs_are_generated_from_the_papers_numbers():
    """configs/paper/*.yaml are what `mapflow paper-configs` writes from numbers.yaml (edit that, regenerate)."""
    from mapflow_utils import paper
    from mapflow_utils.paper import paper_window

    subjects = paper.subjects()
    assert {p.name for p in paper.CONFIGS.glob("*.yaml")} == {f"{s['slug']}.yaml" for s in subjects.values()}
    for name, s in subjects.items():
        assert (paper.CONFIGS / f"{s['slug']}.yaml").read_text() == paper.subject_config_text(name), name
        cfg = paper.subject_config(name)
        assert cfg["window"] == paper_window(s["layers"]) and cfg["answer_format"] == "letter"
        assert cfg["n_per_task"] is None and cfg["tasks"] == paper.numbers()["setup"]["tasks"]
        assert (cfg["device"], cfg["dtype"]) == ("cuda", "bfloat16")
    windows = {s["layers"]: paper.subject_config(n)["window"] for n, s in subjects.items()}
    assert windows[32] == 9 and windows[40] > 9 > windows[28]  # 9 of 32, scaled


def test_a_paper_config_fits_every_chapter(capsys):
    from mapflow_utils import paper, runner

    cfg = paper.subject_config("LLaVA-NeXT-7B-Video-FT")
    assert runner.fit_parameters("s3_2_temporal", cfg) == cfg  # every key is a parameter of the chapter
    pair = runner.fit_parameters("appab_scale", cfg)
    assert list(pair["pairs"].values()) == [[cfg["video_model"], cfg["image_model"]]]
    data = runner.fit_parameters("data", cfg)
    assert "video_model" not in data and data["data_dir"] == "TVBench"
    assert "takes no" in capsys.readouterr().out


def test_mapflow_convert_writes_a_folder_models_load_reads(tmp_path, capsys):
    from mapflow_utils import cli

    src = save_tiny(CHAT, tmp_path / "original")
    assert cli.main(["convert", str(src), str(tmp_path / "native")]) == 0
    config = json.loads((tmp_path / "native" / "config.json").read_text())
    assert config["architectures"] == ["InternVLForConditionalGeneration"]
    assert config["text_config"]["model_type"] == "phi3"
    _, processor, adapter = models.load(tmp_path / "native")
    assert adapter.family.name == CHAT and isinstance(processor, VideoBlockProcessor)
    with pytest.raises(SystemExit, match="known"):
        cli.main(["tiny-vlm", "NoSuchModel", "--out", str(tmp_path / "x")])


# ------------------------------------------------------------------ the real sizes, on the meta device (no weights)

def _phi3_mini_128k() -> dict:
    """Phi-3-mini-128k's config fields (Mini-InternVL-Chat-4B-V1-5's text model), long-context rope included."""
    return {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32020,
            "max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "rope_scaling": {"type": "su", "long_factor": [1.5] * 48, "short_factor": [1.0] * 48},
            "bos_token_id": 1, "eos_token_id": 32000, "pad_token_id": 32000, "tie_word_embeddings": False}


def test_mini_internvl_at_its_real_size_converts_on_meta():
    """InternViT-300M-448px + Phi-3-mini-128k (32 layers): the native config builds (long-context rope accepted),
    256 tokens per frame, and every native weight has an original name of the published shape."""
    from transformers import InternVLForConditionalGeneration

    config = {"model_type": "internvl_chat", "downsample_ratio": 0.5, "select_layer": -1, "ps_version": "v2",
              "force_image_size": 448, "llm_config": _phi3_mini_128k(),
              "vision_config": {"model_type": "intern_vit_6b", "hidden_size": 1024, "intermediate_size": 4096,
                                "num_attention_heads": 16, "num_hidden_layers": 24, "image_size": 448,
                                "patch_size": 14, "qkv_bias": True, "qk_normalization": False,
                                "norm_type": "layer_norm", "layer_norm_eps": 1e-6, "hidden_act": "gelu"}}
    assert internvl_chat.frame_tokens(config) == 256
    native = internvl_chat.native_config(config, image_token_id=32013)
    assert native.text_config.model_type == "phi3" and native.text_config.num_hidden_layers == 32
    rope = native.text_config.rope_parameters
    assert rope["rope_type"] == "longrope" and rope["original_max_position_embeddings"] == 4096
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(native)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert 3.9e9 < sum(v.numel() for v in model.parameters()) < 4.4e9  # "4B"
    original = {internvl_chat.rename(k, reverse=True) for k in shapes if not any(p in k for p in ("q_proj", "k_proj",
                                                                                                     "v_proj"))}
    assert None not in original
    assert shapes["model.multi_modal_projector.linear_1.weight"] == (3072, 4096)  # mlp1.1: 4·1024 -> 3072
    assert shapes["model.vision_tower.embeddings.position_embeddings"] == (1, 1025, 1024)  # 32·32 patches + CLS
    assert "vision_model.encoder.layers.23.ls2" in original and "language_model.lm_head.weight" in original


def test_llava_next_7b_at_its_real_size_pools_to_the_papers_grid():
    """llava-v1.6-vicuna-7b (CLIP-L/336, 32 Llama layers) as the paper's ImageLLM: 24×24 patches pooled to
    8×12×12 = 1,152 video tokens, the same parameter count as the LLaVA it came from."""
    from transformers import LlavaForConditionalGeneration

    v16 = {"model_type": "llava_next", "image_token_index": 32000, "projector_hidden_act": "gelu",
           "vision_feature_layer": -2, "vision_feature_select_strategy": "default",
           "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
                             "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336, "patch_size": 14,
                             "projection_dim": 768},
           "text_config": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
                           "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32064}}
    cfg = pllava.image_base_config(v16)
    assert pllava.pooling_shape(cfg) == pllava.PAPER_POOLING == (8, 12, 12)
    with torch.device("meta"):
        ours, plain = pllava.PllavaForConditionalGeneration(cfg), LlavaForConditionalGeneration(cfg)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in plain.parameters())
    assert 6.8e9 < sum(p.numel() for p in ours.parameters()) < 7.3e9


@pytest.mark.parametrize("hw", [(360, 640), (361, 641), (480, 360), (448, 600)])
def test_internvl_chat_frames_are_cropped_as_the_papers_video_path(tmp_path, monkeypatch, hw):
    """A non-square frame through the converted checkpoint's processor equals the paper's own transform for
    InternVL-Chat videos, written here with torchvision as its evaluation code does: Resize(S, BICUBIC) on the short
    side, CenterCrop(S), ToTensor, Normalize(ImageNet). Squashing to S×S (the old path) is far from it."""
    import numpy as np
    import torchvision.transforms as T
    from PIL import Image
    from torchvision.transforms.functional import InterpolationMode

    monkeypatch.setenv("MAPFLOW_CACHE", str(tmp_path / "cache"))
    _, processor, _ = models.load(save_tiny(CHAT, tmp_path / "original"))
    size = processor.size
    paper = T.Compose([T.Lambda(lambda im: im.convert("RGB")), T.Resize(size, interpolation=InterpolationMode.BICUBIC),
                       T.CenterCrop(size), T.ToTensor(),
                       T.Normalize(internvl_chat.IMAGENET_MEAN, internvl_chat.IMAGENET_STD)])
    frame = np.random.default_rng(hw[0]).integers(0, 256, (*hw, 3), dtype=np.uint8)
    frame[:, : hw[1] // 3] //= 3  # structure across the width, so a wrong crop or squash shows
    want = paper(Image.fromarray(frame))
    text = build_prompt(processor, "q?", ["a", "b"]).text
    got = processor(text=text, videos=[np.stack([frame] * 2)])["pixel_values"][0]
    # float32 rescale-and-normalise in another order: a few ulps
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    squashed = T.Normalize(internvl_chat.IMAGENET_MEAN, internvl_chat.IMAGENET_STD)(
        T.ToTensor()(Image.fromarray(frame).resize((size, size), Image.BICUBIC)))
    if hw[0] != hw[1]:
        assert (squashed - want).abs().max() > 0.5
