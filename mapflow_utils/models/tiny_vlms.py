"""Tiny random-weight copies of every supported video-LLM family, built from local parts only.

``build_tiny(name)`` returns ``(model, processor)`` for a family in :data:`FAMILIES`: the seven transformers classes (SmolVLM included) and
the paper's own subjects (PLLaVA-style LLaVA-NeXT-Video-FT, InternVL-Chat V1.5 as transformers' InternVL + Phi-3).
Every processor is the model's real processor class (for the paper's subjects, mapflow's
:class:`~mapflow_utils.models.block_processor.VideoBlockProcessor`), assembled from:

* a byte-level BPE tokenizer trained here on prompts rendered with that family's chat template (through
  :func:`mapflow_utils.prompts.build_prompt`) plus :func:`mapflow_utils.models.tiny.grammar_corpus`, carrying the
  family's special tokens and tokenizer attributes;
* the family's own image and video processor classes, set up for 64x64 frames;
* a chat template written here that mirrors the structure of the family's real one (the paper's ``eval_mvbench``
  for its subjects).

Sizes follow transformers' own ModelTester tests: text hidden 64, 3 layers, 4 heads with 2 KV heads (GQA), tiny
vision towers, a few tokens per frame. Nothing is downloaded. Built models are cached per process.
:func:`save_tiny` writes the paper's subjects in their published layouts (:data:`LAYOUTS`, incl. llava-v1.6).
"""

from __future__ import annotations

import functools

from mapflow_utils import paths
from mapflow_utils.models import tiny
from mapflow_utils.models.block_processor import EVAL_MVBENCH, EVAL_MVBENCH_PHI3, VideoBlockProcessor
from mapflow_utils.data import load_tvbench
from mapflow_utils.models import SUPPORT
from mapflow_utils.prompts import FORMATS, build_prompt

#: Every supported family (the support matrix's keys, in its order).
FAMILIES: tuple[str, ...] = tuple(SUPPORT)

FRAME = 64  # frame side in pixels
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1024)
CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _lit(text: str) -> str:
    """``text`` as a jinja expression, so that transformers' ``trim_blocks`` cannot eat its newlines."""
    return "{{ " + repr(text) + " }}" if text else ""


def _chatml(video: str, image: str, default_system: str = "", role_sep: str = "\n", text_sep: str = "",
            turn_sep: str = "\n") -> str:
    """A ChatML template (``<|im_start|>role\\n…<|im_end|>``) with the family's media placeholders.

    ``role_sep`` follows the role name, ``text_sep`` precedes each text part, ``turn_sep`` follows ``<|im_end|>``.
    """
    system = ("{% if messages[0]['role'] != 'system' %}" + _lit("<|im_start|>system" + role_sep + default_system
                                                               + "<|im_end|>" + turn_sep) + "{% endif %}"
              if default_system else "")
    return (
        system
        + "{% for message in messages %}" + _lit("<|im_start|>") + "{{ message['role'] }}" + _lit(role_sep)
        + "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
        "{% for c in message['content'] %}"
        "{% if c['type'] == 'video' %}" + _lit(video)
        + "{% elif c['type'] == 'image' %}" + _lit(image)
        + "{% elif c['type'] == 'text' %}" + _lit(text_sep) + "{{ c['text'] }}{% endif %}"
        "{% endfor %}{% endif %}" + _lit("<|im_end|>" + turn_sep) + "{% endfor %}"
        "{% if add_generation_prompt %}" + _lit("<|im_start|>assistant\n") + "{% endif %}"
    )


# Per family: chat template, special tokens, tokenizer special-token attributes (pad/eos/bos + extras).
_QWEN_EXTRAS = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}
TOKENIZERS: dict[str, dict] = {
    # LLaVA-OneVision (Qwen2 text): `<|im_start|>user <video>\ntext<|im_end|>`, media first, then "\n"+text.
    "LlavaOnevisionForConditionalGeneration": dict(
        template=_chatml("<video>", "<image>", role_sep=" ", text_sep="\n", turn_sep=""),
        specials=CHATML_SPECIALS + ["<image>", "<video>"],
        extras={"image_token": "<image>", "video_token": "<video>"}),
    # Qwen2-VL / Qwen2.5-VL: default system turn, `<|vision_start|><|video_pad|><|vision_end|>` inline.
    "Qwen2VLForConditionalGeneration": dict(
        template=_chatml("<|vision_start|><|video_pad|><|vision_end|>", "<|vision_start|><|image_pad|><|vision_end|>",
                         default_system="You are a helpful assistant."),
        specials=CHATML_SPECIALS + list(_QWEN_EXTRAS.values()), extras=_QWEN_EXTRAS),
    # InternVL (Qwen2 text): `<video>\n` in the user turn, expanded to "Frame1: <img><IMG_CONTEXT>…</img>\n…".
    "InternVLForConditionalGeneration": dict(
        template=_chatml("<video>\n", "<image>\n"),
        specials=CHATML_SPECIALS + ["<img>", "</img>", "<IMG_CONTEXT>", "<video>", "<image>"],
        extras={"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>"}),
    # VideoLLaMA3 (Qwen2 text): `<|video_pad|>\n`, expanded to "Time 0.0s:<|video_pad|>…,Time 1.0s:…".
    "VideoLlama3ForConditionalGeneration": dict(
        template=_chatml("<|video_pad|>\n", "<|image_pad|>\n"),
        specials=CHATML_SPECIALS + list(_QWEN_EXTRAS.values()), extras=_QWEN_EXTRAS),
}
TOKENIZERS["Qwen2_5_VLForConditionalGeneration"] = TOKENIZERS["Qwen2VLForConditionalGeneration"]
# The paper's own subjects (issue 16), with their special tokens and the paper's eval_mvbench prompt.
# Vicuna (llava-v1.6 / LLaVA-NeXT-Video-FT): <s> first, <image> (id 32000 in the real one), <pad>.
TOKENIZERS["PllavaForConditionalGeneration"] = dict(
    template=EVAL_MVBENCH, specials=["<unk>", "<s>", "</s>", "<image>", "<pad>"], extras={"image_token": "<image>"},
    pad="<pad>", eos="</s>", bos="<s>")
# Phi-3 with InternVL-Chat's added tokens (<img>, </img>, <IMG_CONTEXT>, <quad>, <ref>, <box> and their ends).
TOKENIZERS["InternVLChatV1_5"] = dict(
    template=EVAL_MVBENCH_PHI3,
    specials=["<unk>", "<s>", "</s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<img>",
              "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"],
    extras={}, pad="<|endoftext|>", eos="<|end|>", bos="<s>")


# SmolVLM (SmolLM2 text): SmolVLM2's own template ("User: <video>text<end_of_utterance>\nAssistant:"), the
# Idefics3 image tokens; the processor expands <video> to an intro sentence and per frame "Frame from mm:ss:" + image.
TOKENIZERS["SmolVLMForConditionalGeneration"] = dict(
    template=("<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
              "{% if message['content'] is string %}{{ ': ' + message['content'] }}{% else %}"
              "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
              "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
              "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}"
              "{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
              "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"),
    specials=["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<global-img>",
              "<image>", "<video>"],
    extras={"image_token": "<image>", "video_token": "<video>", "fake_image_token": "<fake_token_around_image>",
            "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"},
    eos="<end_of_utterance>")


class _TemplateOnly:
    """Renders a chat template for the tokenizer corpus (before the tokenizer exists)."""

    def __init__(self, template: str):
        from jinja2 import Environment

        # the same jinja settings as transformers' apply_chat_template
        self.template = Environment(trim_blocks=True, lstrip_blocks=True).from_string(template)

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        return self.template.render(messages=messages, add_generation_prompt=add_generation_prompt)


def _corpus(template: str, n_questions: int = 10):
    """Prompts of a few synthetic questions in every answer format, the grammar corpus, per-frame markers."""
    proc = _TemplateOnly(template)
    for s in list(load_tvbench(paths.SYNTHETIC))[::50][:n_questions]:
        for fmt in FORMATS:
            p = build_prompt(proc, s.question, s.candidates, fmt, task=s.task)
            yield p.text + p.answers[s.answer_index]
    yield from tiny.grammar_corpus(n=4)
    yield "\n".join(f"Frame{i + 1}: " for i in range(16)) + ",".join(f"Time {i:.1f}s:" for i in range(16))
    yield "You are provided the following series of eight frames from a 0:00:07 [H:MM:SS] video.\n" + "".join(
        f"\nFrame from 00:{i:02d}:" for i in range(16))


def _tokenizer(name: str, vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = TOKENIZERS[name]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=spec["specials"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(spec["template"]), trainer=trainer)
    bos = spec.get("bos")
    if bos:  # Llama-style tokenizers put BOS first
        from tokenizers import processors

        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[
            (bos, tok.token_to_id(bos))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=spec.get("pad", "<|endoftext|>"),
                                   eos_token=spec.get("eos", "<|im_end|>"), bos_token=bos,
                                   unk_token="<unk>" if "<unk>" in spec["specials"] else None,
                                   extra_special_tokens=dict(spec["extras"]))
    fast.chat_template = spec["template"]
    fast.padding_side = "left"
    return fast


def _text_ids(tok) -> dict:
    return dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                bos_token_id=tok.pad_token_id)


# ---------------------------------------------------------------- one builder per family: (config, processor)

def _llava_next_video():
    cfg = tiny.TinyConfig(image_size=FRAME, patch_size=16, vision_hidden=32, vision_layers=2, vision_heads=2,
                          hidden=TEXT["hidden_size"], layers=TEXT["num_hidden_layers"],
                          heads=TEXT["num_attention_heads"], kv_heads=TEXT["num_key_value_heads"],
                          intermediate=TEXT["intermediate_size"], vocab_size=512)
    tok = tiny.build_tokenizer(cfg.vocab_size)
    return tiny.build_config(tok, cfg), tiny.build_processor(tok, cfg)


def _llava_onevision(name):
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionImageProcessor, LlavaOnevisionProcessor,
                              LlavaOnevisionVideoProcessor, Qwen2Config, SiglipVisionConfig)

    tok = _tokenizer(name)
    size = {"height": FRAME, "width": FRAME}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=[[FRAME, FRAME]]),
        video_processor=LlavaOnevisionVideoProcessor(size=size), tokenizer=tok,
        num_image_tokens=(FRAME // 16) ** 2, vision_feature_select_strategy="full",
        chat_template=TOKENIZERS[name]["template"])
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, image_size=FRAME, patch_size=16),
        text_config=Qwen2Config(**TEXT, **_text_ids(tok)),
        image_token_index=tok.convert_tokens_to_ids("<image>"), video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full", vision_feature_layer=-1, image_grid_pinpoints=[[FRAME, FRAME]])
    return config, processor


def _qwen_vl(name):
    import transformers as tf

    v25 = name.startswith("Qwen2_5")
    tok = _tokenizer(name)
    size = {"shortest_edge": 56 * 56, "longest_edge": FRAME * FRAME}  # 64x64 frames -> 56x56 -> 4x4 patches of 14
    proc_cls = tf.Qwen2_5_VLProcessor if v25 else tf.Qwen2VLProcessor
    processor = proc_cls(image_processor=tf.Qwen2VLImageProcessor(size=size),
                         video_processor=tf.Qwen2VLVideoProcessor(size=size, cap_pixels_per_frame=True),
                         tokenizer=tok, chat_template=TOKENIZERS[name]["template"])
    text = dict(**TEXT, **_text_ids(tok),
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
    if v25:
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1],
                      tokens_per_second=2)
        text_cfg, cfg_cls = tf.Qwen2_5_VLTextConfig(**text), tf.Qwen2_5_VLConfig
    else:
        vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2)
        text_cfg, cfg_cls = tf.Qwen2VLTextConfig(**text), tf.Qwen2VLConfig
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in
           dict(image_token_id="<|image_pad|>", video_token_id="<|video_pad|>",
                vision_start_token_id="<|vision_start|>", vision_end_token_id="<|vision_end|>").items()}
    return cfg_cls(text_config=text_cfg, vision_config=vision, **ids), processor


def _internvl(name):
    from transformers import (GotOcr2ImageProcessor, InternVLConfig, InternVLProcessor, InternVLVideoProcessor,
                              InternVLVisionConfig, Qwen2Config)

    tok = _tokenizer(name)
    size = {"height": FRAME, "width": FRAME}
    per_frame = (FRAME // 16 // 2) ** 2  # 4x4 patches, pixel-shuffled by downsample_ratio 0.5 -> 2x2
    processor = InternVLProcessor(image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=False),
                                  video_processor=InternVLVideoProcessor(size=size), tokenizer=tok,
                                  image_seq_length=per_frame, chat_template=TOKENIZERS[name]["template"])
    config = InternVLConfig(
        vision_config=InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=2, image_size=FRAME, patch_size=16),
        text_config=Qwen2Config(**TEXT, **_text_ids(tok)),
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=per_frame,
        downsample_ratio=0.5, tie_word_embeddings=False)
    return config, processor


def _videollama3(name):
    from transformers import (Qwen2Config, VideoLlama3Config, VideoLlama3ImageProcessor, VideoLlama3Processor,
                              VideoLlama3VideoProcessor, VideoLlama3VisionConfig)

    tok = _tokenizer(name)
    processor = VideoLlama3Processor(
        image_processor=VideoLlama3ImageProcessor(size={"shortest_edge": 56 * 56, "longest_edge": FRAME * FRAME}),
        # the video processor divides `longest_edge` by the number of frames: budget for up to 16 frames
        video_processor=VideoLlama3VideoProcessor(size={"shortest_edge": 56 * 56,
                                                        "longest_edge": 16 * FRAME * FRAME}),
        tokenizer=tok, chat_template=TOKENIZERS[name]["template"])
    config = VideoLlama3Config(
        text_config=Qwen2Config(**TEXT, **_text_ids(tok)),
        vision_config=VideoLlama3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                              num_attention_heads=2, patch_size=14),
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"))
    return config, processor


def _pllava(name):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig

    tok = _tokenizer(name)
    side = FRAME // 16  # 4x4 patches per frame, pooled to 2x2 (the paper: 24x24 -> 12x12)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=FRAME, patch_size=16, projection_dim=32),
        text_config=LlamaConfig(**TEXT, **_text_ids(tok) | {"bos_token_id": tok.bos_token_id}),
        image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
        vision_feature_select_strategy="default", projector_hidden_act="gelu", tie_word_embeddings=False)
    # the paper's extra keys (8 frames pooled to 8 x side/2 x side/2)
    config.pooling_shape, config.frame_shape = [8, side // 2, side // 2], [side, side]
    config.num_frames, config.use_pooling, config.pooling_method = 8, True, "avg"
    images = CLIPImageProcessor(size={"shortest_edge": FRAME}, crop_size={"height": FRAME, "width": FRAME})
    processor = VideoBlockProcessor(images, tok, video_token="<image>", tokens_per_frame=(side // 2) ** 2,
                                    pooled_frames=8, num_frames=8, chat_template=EVAL_MVBENCH, name="tiny PLLaVA")
    return config, processor


def _internvl_chat(name):
    from transformers import GotOcr2ImageProcessor, InternVLConfig, InternVLVisionConfig, Phi3Config

    from mapflow_utils.models.internvl_chat import IMAGENET_MEAN, IMAGENET_STD

    tok = _tokenizer(name)
    per_frame = (FRAME // 16 // 2) ** 2  # 4x4 patches, pixel-shuffled by 0.5 -> 2x2 (the paper: 32x32 -> 16x16)
    config = InternVLConfig(
        vision_config=InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=2, image_size=FRAME, patch_size=16,
                                           attention_bias=True, use_mean_pooling=True),
        text_config=Phi3Config(**TEXT, **_text_ids(tok) | {"bos_token_id": tok.bos_token_id},
                               tie_word_embeddings=False),
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=per_frame,
        downsample_ratio=0.5, vision_feature_layer=-1, vision_feature_select_strategy="default",
        tie_word_embeddings=False)
    images = GotOcr2ImageProcessor(size={"height": FRAME, "width": FRAME}, crop_to_patches=False,
                                   image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD))
    processor = VideoBlockProcessor(images, tok, video_token="<IMG_CONTEXT>", tokens_per_frame=per_frame,
                                    chat_template=EVAL_MVBENCH_PHI3, name="tiny InternVL-Chat V1.5")
    return config, processor


def _smolvlm(name):
    from transformers import LlamaConfig, SmolVLMConfig, SmolVLMImageProcessor, SmolVLMProcessor, \
        SmolVLMVideoProcessor, SmolVLMVisionConfig

    tok = _tokenizer(name)
    per_frame = (FRAME // 16 // 2) ** 2  # 4x4 patches, pixel-shuffled by scale_factor 2 -> 2x2
    edge = {"longest_edge": FRAME}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size=edge, max_image_size=edge, do_image_splitting=False),
        video_processor=SmolVLMVideoProcessor(size=edge, max_image_size=edge), tokenizer=tok,
        image_seq_len=per_frame, chat_template=TOKENIZERS[name]["template"])
    config = SmolVLMConfig(
        vision_config=SmolVLMVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=2, image_size=FRAME, patch_size=16),
        text_config=LlamaConfig(**TEXT, **_text_ids(tok)), scale_factor=2,
        image_token_id=tok.convert_tokens_to_ids("<image>"), tie_word_embeddings=False)
    return config, processor


_BUILDERS = {
    "LlavaNextVideoForConditionalGeneration": lambda name: _llava_next_video(),
    "LlavaOnevisionForConditionalGeneration": _llava_onevision,
    "Qwen2VLForConditionalGeneration": _qwen_vl,
    "Qwen2_5_VLForConditionalGeneration": _qwen_vl,
    "InternVLForConditionalGeneration": _internvl,
    "VideoLlama3ForConditionalGeneration": _videollama3,
    "PllavaForConditionalGeneration": _pllava,
    "InternVLChatV1_5": _internvl_chat,
    "SmolVLMForConditionalGeneration": _smolvlm,
}


def _model_class(name: str):
    import transformers

    if name == "PllavaForConditionalGeneration":
        from mapflow_utils.models.pllava import PllavaForConditionalGeneration

        return PllavaForConditionalGeneration
    return getattr(transformers, SUPPORT[name].model_class)


@functools.lru_cache(maxsize=None)
def build_tiny(name: str, seed: int = 0):
    """A random-weight tiny ``name`` model (eval mode) and its real processor: ``(model, processor)``."""
    import torch

    if name not in _BUILDERS:
        raise KeyError(f"no tiny builder for {name}; known: {', '.join(FAMILIES)}")
    config, processor = _BUILDERS[name](name)
    torch.manual_seed(seed)
    model = _model_class(name)(config)
    model.eval()
    return model, processor


# ------------------------------------------------- the paper's checkpoints as published (original layouts)

#: llava-v1.6 (``LlavaNextForConditionalGeneration``): the ImageLLM base of the paper's LLaVA-NeXT pair. Not a family
#: of its own: :func:`mapflow_utils.models.load` runs it as a PLLaVA model (the paper's pooling).
LLAVA_V16 = "LlavaNextForConditionalGeneration"
#: What :func:`save_tiny` writes: every family, plus the llava-v1.6 base layout.
LAYOUTS: tuple[str, ...] = FAMILIES + (LLAVA_V16,)

#: Current LLaVA names -> the pre-4.47 ones the paper's checkpoints (and llava-hf's v1.6 repos) use.
_LEGACY_LLAVA = (("model.language_model.", "language_model.model."), ("lm_head.", "language_model.lm_head."),
                 ("model.vision_tower.", "vision_tower."), ("model.multi_modal_projector.", "multi_modal_projector."))
def _save_weights(state: dict, out) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})


def _write_json(obj: dict, path) -> None:
    import json

    path.write_text(json.dumps(obj, indent=2, sort_keys=True))


def _legacy_llava_state(model) -> dict:
    state = {}
    for k, v in model.state_dict().items():
        for new, old in _LEGACY_LLAVA:
            if k.startswith(new):
                k = old + k[len(new):]
                break
        state[k] = v
    return state


def _write_pllava(model, processor, out) -> None:
    """LLaVA-NeXT-Video-FT as published: a ``llava`` config with the pooling keys, legacy key names."""
    _save_weights(_legacy_llava_state(model), out)
    _write_json(model.config.to_dict() | {"architectures": ["PllavaForConditionalGeneration"],
                                          "model_type": "llava"}, out / "config.json")
    processor.tokenizer.save_pretrained(out)
    processor.image_processor.save_pretrained(out)


def _write_llava_v16(model, processor, out) -> None:
    """llava-v1.6 as llava-hf publishes it: a ``llava_next`` config (anyres pinpoints), legacy key names, an
    ``image_newline`` (unused for video, as in the paper), a LlavaNext processor."""
    import torch
    from transformers import LlavaNextConfig, LlavaNextImageProcessor, LlavaNextProcessor

    cfg = model.config
    config = LlavaNextConfig(vision_config=cfg.vision_config.to_dict(), text_config=cfg.text_config.to_dict(),
                             image_token_index=cfg.image_token_index, image_grid_pinpoints=[[FRAME, FRAME]],
                             vision_feature_layer=cfg.vision_feature_layer, projector_hidden_act="gelu",
                             vision_feature_select_strategy=cfg.vision_feature_select_strategy,
                             tie_word_embeddings=False)
    state = _legacy_llava_state(model)
    state["image_newline"] = torch.randn(cfg.text_config.hidden_size, generator=torch.Generator().manual_seed(1))
    _save_weights(state, out)
    _write_json(config.to_dict() | {"architectures": [LLAVA_V16]}, out / "config.json")
    images = LlavaNextImageProcessor(size={"shortest_edge": FRAME}, crop_size={"height": FRAME, "width": FRAME},
                                     image_grid_pinpoints=[[FRAME, FRAME]])
    LlavaNextProcessor(image_processor=images, tokenizer=processor.tokenizer, patch_size=16,
                       vision_feature_select_strategy="default").save_pretrained(out)


def _write_internvl_chat(model, processor, out) -> None:
    """InternVL-Chat V1.5 as published: ``internvl_chat`` config (``vision_config`` + ``llm_config``), remote-code
    key names with the fused ``attn.qkv``, the tokenizer; no processor files (the remote code has its own)."""
    import re

    import torch

    from mapflow_utils.models.internvl_chat import rename

    native, state = model.state_dict(), {}
    qkv = re.compile(r"^model\.vision_tower\.encoder\.layer\.(\d+)\.attention\.q_proj\.(weight|bias)$")
    for k, v in native.items():
        m = qkv.match(k)
        if m:
            parts = [native[k.replace("q_proj", n)] for n in ("q_proj", "k_proj", "v_proj")]
            state[f"vision_model.encoder.layers.{m[1]}.attn.qkv.{m[2]}"] = torch.cat(parts, dim=0)
            continue
        if re.search(r"\.attention\.[kv]_proj\.", k):
            continue
        name = rename(k, reverse=True)
        if name is None:
            raise KeyError(f"no InternVL-Chat name for {k}")
        state[name] = v
    _save_weights(state, out)
    cfg, vis = model.config, model.config.vision_config
    llm = cfg.text_config.to_dict() | {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3"}
    _write_json({
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "template": "phi3-chat",
        "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                     "AutoModel": "modeling_internvl_chat.InternVLChatModel"},
        "downsample_ratio": cfg.downsample_ratio, "select_layer": cfg.vision_feature_layer, "ps_version": "v2",
        "force_image_size": FRAME, "dynamic_image_size": True, "use_thumbnail": True, "max_dynamic_patch": 12,
        "min_dynamic_patch": 1, "use_backbone_lora": 0, "use_llm_lora": 0, "llm_config": llm,
        "vision_config": {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b",
                          "hidden_size": vis.hidden_size, "intermediate_size": vis.intermediate_size,
                          "num_attention_heads": vis.num_attention_heads, "num_hidden_layers": vis.num_hidden_layers,
                          "image_size": FRAME, "patch_size": vis.patch_size[0], "num_channels": 3,
                          "qkv_bias": True, "qk_normalization": False, "norm_type": "layer_norm",
                          "layer_norm_eps": vis.layer_norm_eps, "hidden_act": "gelu", "initializer_factor": 0.1,
                          "drop_path_rate": 0.0, "use_flash_attn": False},
    }, out / "config.json")
    processor.tokenizer.save_pretrained(out)


_WRITERS = {"PllavaForConditionalGeneration": _write_pllava, LLAVA_V16: _write_llava_v16,
            "InternVLChatV1_5": _write_internvl_chat}


def save_tiny(name: str, out, seed: int = 0):
    """Write the tiny random-weight ``name`` (one of :data:`LAYOUTS`) to ``out``, loadable by
    :func:`mapflow_utils.models.load` like any checkpoint folder; returns the folder. The seven transformers classes
    are written with ``save_pretrained`` (safetensors); the paper's subjects in their published layouts (original
    key names, config fields and tokenizer special tokens), so that loading them goes through the same path as the
    real checkpoints (legacy keys, the pooling config, the InternVL-Chat conversion)."""
    from pathlib import Path

    from transformers.utils import logging as hf_logging

    out = Path(out)
    model, processor = build_tiny("PllavaForConditionalGeneration" if name == LLAVA_V16 else name, seed)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bars in the pages that call this
    try:
        if name in _WRITERS:
            out.mkdir(parents=True, exist_ok=True)
            _WRITERS[name](model, processor, out)
        else:
            model.save_pretrained(out)
            processor.save_pretrained(out)
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    return out
