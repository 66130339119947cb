"""The embedded tiny video LLM's parts: a tokenizer built from the synthetic grammar, a chat template, a
``LlavaNextVideoProcessor`` assembled from local parts, and a small ``LlavaNextVideoForConditionalGeneration``
config (CLIP-style vision tower per frame, projector, 2×2 spatial pooling, Llama text model).

Nothing here downloads anything: it is how ``data/models/tiny-*`` were made, and how tests build random-weight
copies of the same architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..data import PAPER_TASKS
from ..prompts import FORMATS, SYSTEM_PROMPT, build_prompt
from ..synthetic import ANTONYMS, CELLS, COLORS, SCENES, SynthConfig, generate_clip, image_sample

#: A chat template in the style of LLaVA-NeXT-Video's (``USER: <video>\n… ASSISTANT:``); the system turn is plain
#: text at the start.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% for c in message['content'] if c['type'] == 'text' %}{{ c['text'] }}{% endfor %}{{ ' ' }}"
    "{% else %}"
    "{{ message['role'].upper() + ': ' }}"
    "{% for c in message['content'] if c['type'] == 'video' %}{{ '<video>\n' }}{% endfor %}"
    "{% for c in message['content'] if c['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in message['content'] if c['type'] == 'text' %}{{ c['text'] }}{% endfor %}{{ ' ' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<image>", "<video>"]


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the tiny model (defaults: the shipped one)."""

    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    hidden: int = 128
    layers: int = 8
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    vocab_size: int = 768
    max_positions: int = 1024


# Named sizes of the embedded models. ``base`` is tiny-imagellm / tiny-videollm-ft; ``deep`` (App. A/B, "another
# size") has 1.5x the layers at 3/4 the width, so it trains at about the same CPU cost per step.
SIZES: dict[str, TinyConfig] = {
    "base": TinyConfig(),
    "deep": TinyConfig(hidden=96, layers=12, intermediate=288),
}


class _TextOnlyProcessor:
    """Stands in for a processor when rendering prompts for the tokenizer corpus (chat template only)."""

    def __init__(self):
        from jinja2 import Template

        self.template = Template(CHAT_TEMPLATE)

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        return self.template.render(messages=messages, add_generation_prompt=add_generation_prompt)


def grammar_corpus(n: int = 60, seed: int = 12345) -> Iterable[str]:
    """Text covering the synthetic grammar: prompts in all answer formats, options, answers and captions."""
    proc = _TextOnlyProcessor()
    cfg = SynthConfig()
    for i in range(n):
        for task in PAPER_TASKS:
            clip = generate_clip(task, seed, i, cfg)
            for fmt in FORMATS:
                p = build_prompt(proc, clip.question, clip.candidates, fmt, task=task)
                yield p.text + p.answers[clip.candidates.index(clip.answer)]
            yield clip.caption
        img = image_sample(seed, i, cfg)
        yield img.caption
        for q, cands, a in img.qa:
            p = build_prompt(proc, q, cands, "content")
            yield p.text + " " + a
    words = list(COLORS) + list(SCENES) + list(CELLS) + [w for pair in ANTONYMS for w in pair]
    yield " ".join(words) + " 0 1 2 3 4 5 6 7 8 9 " + SYSTEM_PROMPT


def build_tokenizer(vocab_size: int = 768):
    """A byte-level BPE tokenizer trained on :func:`grammar_corpus`, with the chat template and ``<video>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(grammar_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", extra_special_tokens={"image_token": "<image>",
                                                                             "video_token": "<video>"})
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_processor(tokenizer, cfg: TinyConfig = TinyConfig(), chat_template: str = CHAT_TEMPLATE):
    """A real ``LlavaNextVideoProcessor`` from local parts (CLIP normalisation, ``cfg.image_size`` frames)."""
    from transformers import LlavaNextImageProcessor, LlavaNextVideoProcessor, LlavaNextVideoVideoProcessor

    size = {"shortest_edge": cfg.image_size}
    crop = {"height": cfg.image_size, "width": cfg.image_size}
    video = LlavaNextVideoVideoProcessor(size=size, crop_size=crop, do_center_crop=True)
    image = LlavaNextImageProcessor(size=size, crop_size=crop,
                                    image_grid_pinpoints=[[cfg.image_size, cfg.image_size]])
    return LlavaNextVideoProcessor(video_processor=video, image_processor=image, tokenizer=tokenizer,
                                   chat_template=chat_template, patch_size=cfg.patch_size,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1)


def clip_vision_config(image_size: int, patch_size: int, hidden: int, layers: int, heads: int):
    """The embedded models' CLIP vision tower config (MLP 4× wide, projection = hidden): the one definition used by
    the tiny models, the SmolLM2 VideoLLM and the perception-pretrained tower."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(image_size=image_size, patch_size=patch_size, hidden_size=hidden,
                            intermediate_size=hidden * 4, num_hidden_layers=layers, num_attention_heads=heads,
                            projection_dim=hidden)


def build_config(tokenizer, cfg: TinyConfig = TinyConfig()):
    """A ``LlavaNextVideoConfig`` of the tiny architecture for ``tokenizer``."""
    from transformers import LlamaConfig, LlavaNextVideoConfig

    vision = clip_vision_config(cfg.image_size, cfg.patch_size, cfg.vision_hidden, cfg.vision_layers, cfg.vision_heads)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
                       num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                       num_key_value_heads=cfg.kv_heads, max_position_embeddings=cfg.max_positions,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    return LlavaNextVideoConfig(
        vision_config=vision, text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_layer=-1, vision_feature_select_strategy="default",
        spatial_pool_stride=2, spatial_pool_mode="average",
        image_grid_pinpoints=[[cfg.image_size, cfg.image_size]],
        image_seq_length=(cfg.image_size // cfg.patch_size) ** 2,
        video_seq_length=(cfg.image_size // cfg.patch_size // 2) ** 2 * 8,
        pad_token_id=tokenizer.pad_token_id,
    )


def build(cfg: TinyConfig = TinyConfig(), seed: int = 0):
    """A random-weight tiny model with its processor: ``(model, processor)``."""
    import torch
    from transformers import LlavaNextVideoForConditionalGeneration

    tokenizer = build_tokenizer(cfg.vocab_size)
    processor = build_processor(tokenizer, cfg)
    torch.manual_seed(seed)
    model = LlavaNextVideoForConditionalGeneration(build_config(tokenizer, cfg))
    model.eval()
    return model, processor
