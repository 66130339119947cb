"""The embedded VideoLLM on a real pretrained LLM: SmolLM2-135M-Instruct extended LLaVA-style.

Architecture (the paper's main family, ``LlavaNextVideoForConditionalGeneration``):

* **vision tower**: the CLIP tower of the shipped tiny ImageLLM (64×64 frames, 8-px patches → 8×8 patches, 2
  layers of width 64), already trained on these frames — the role a pretrained CLIP plays for LLaVA;
* **projector**: linear 64 → 576, GELU, linear 576 → 576 (LLaVA's ``multi_modal_projector``);
* **spatial pooling**: 2×2 average (``spatial_pool_stride=2``) → 4×4 = **16 video tokens per frame**, 128 for 8
  frames. Each token covers 16×16 px, so the three lanes of Object Count and a square's 6-px steps stay apart
  (4 tokens per frame would put two lanes in one token); 16 per frame keeps a question at ~260 tokens;
* **text model**: SmolLM2-135M-Instruct (30 layers × 576, 9 heads / 3 KV heads, vocabulary 49,152 + ``<image>``
  and ``<video>``, whose embedding rows start at the mean embedding), from :mod:`mapflow_utils.models.backbone`;
* **processor**: a real ``LlavaNextVideoProcessor`` with SmolLM2's tokenizer and a ChatML chat template that
  writes the video placeholder at the start of the user turn (SmolLM2's own default system turn when a prompt
  has none).

A trained model is shipped as **parts** (``mapflow_parts.json`` marks the folder): ``config.json``, the processor,
``vision.safetensors`` (vision tower, projector, image newline) and, after the LoRA stages, ``adapter/`` (peft).
:func:`load_parts` assembles base + parts and merges the LoRA weights, so the rest of mapflow sees a plain
``LlavaNextVideoForConditionalGeneration`` whose text model is a ``LlamaModel``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import backbone
from .. import paths
from ..prompts import LETTER_PREFIX_KEY
from .tiny import TinyConfig, build_processor, clip_vision_config

#: ChatML as SmolLM2 writes it, with typed contents: ``<video>``/``<image>`` placeholders first in the user turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] if c['type'] == 'video' %}{{ '<video>\n' }}{% endfor %}"
    "{% for c in message['content'] if c['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in message['content'] if c['type'] == 'text' %}{{ c['text'] }}{% endfor %}"
    "{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
#: The letter format's prefill for this pair. SmolLM2's BPE writes the paper's ``Best option:(`` with an emoticon
#: token ``:(``; this one ends with the ``(`` token that precedes every option's letter (``\n(A) …``). Letters stayed
#: at chance for 150-200 image-QA steps with the paper's string (three recipes).
LETTER_PREFIX = "Best option:\n("
#: Vision side: the tiny model's tower sizes (its weights initialise ours) and 2×2 pooling.
VISION = TinyConfig()
POOL_STRIDE = 2
PARTS_FILE = "mapflow_parts.json"
#: A perception-pretrained tower's weights (:mod:`mapflow_utils.perception` writes them with a ``config.json``).
TOWER_FILE = "tower.safetensors"
VISION_FILE = "vision.safetensors"
ADAPTER_DIR = "adapter"
#: LoRA on every attention and MLP projection of the text model (not the vision tower's).
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def tokens_per_frame(cfg: TinyConfig = VISION, stride: int = POOL_STRIDE) -> int:
    """Video tokens per frame after pooling: ``(image_size / patch_size / stride) ** 2`` (16 here)."""
    side = cfg.image_size // cfg.patch_size
    return (-(-side // stride)) ** 2


def build_tokenizer(base: str | None = None):
    """SmolLM2's tokenizer with ``<image>``/``<video>`` added as special tokens and the ChatML template above."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(backbone.base_folder(base),
                                        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"},
                                        **{LETTER_PREFIX_KEY: LETTER_PREFIX})
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "left"
    return tok


def build_config(tokenizer, base: str | None = None, vision=None):
    """The ``LlavaNextVideoConfig``: a CLIP vision tower (``vision``, a ``CLIPVisionConfig``; default the tiny
    ImageLLM's sizes), SmolLM2's text config with the two added tokens."""
    from transformers import AutoConfig, LlavaNextVideoConfig

    text = AutoConfig.from_pretrained(backbone.base_folder(base))
    text.vocab_size = len(tokenizer)
    v = VISION
    if vision is None:
        vision = clip_vision_config(v.image_size, v.patch_size, v.vision_hidden, v.vision_layers, v.vision_heads)
    return LlavaNextVideoConfig(
        vision_config=vision, text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_layer=-1, vision_feature_select_strategy="default",
        spatial_pool_stride=POOL_STRIDE, spatial_pool_mode="average",
        image_grid_pinpoints=[[v.image_size, v.image_size]],
        image_seq_length=(v.image_size // v.patch_size) ** 2,
        video_seq_length=tokens_per_frame() * 8,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )


def _load_base_text(model, base: str | None) -> None:
    """Copy SmolLM2's weights into ``model.model.language_model`` (+ the tied ``lm_head``); the added tokens'
    embedding rows are the mean of the others."""
    from safetensors.torch import load_file

    folder = Path(backbone.base_folder(base))
    state = load_file(str(folder / "model.safetensors"))
    lm = model.model.language_model
    emb = state.pop("model.embed_tokens.weight")
    state.pop("lm_head.weight", None)
    text = {k.removeprefix("model."): v for k, v in state.items()}
    missing, unexpected = lm.load_state_dict(text, strict=False)
    if unexpected or set(missing) != {"embed_tokens.weight"}:
        raise backbone.BackboneError(f"{folder}: not a SmolLM2 layout (missing {missing[:3]}, unexpected "
                                     f"{unexpected[:3]}); delete the folder to rebuild it")
    n = lm.embed_tokens.weight.shape[0]
    full = torch.cat([emb, emb.mean(0, keepdim=True).expand(n - emb.shape[0], -1)])
    with torch.no_grad():
        lm.embed_tokens.weight.copy_(full)
    model.lm_head.weight = lm.embed_tokens.weight  # tied, as in SmolLM2


def _vision_state(model) -> dict[str, torch.Tensor]:
    """Every weight outside the text model: vision tower, projector, image newline."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()
            if not k.startswith("model.language_model.") and k != "lm_head.weight"}


def new_model(base: str | None = None, vision_from: str | Path | None = None, seed: int = 0):
    """A fresh SmolLM2 VideoLLM ``(model, processor)``: SmolLM2's weights, the vision tower of ``vision_from``
    (default: the shipped tiny ImageLLM; a folder with ``tower.safetensors`` is a perception-pretrained tower of
    :mod:`mapflow_utils.perception`), a projector drawn from ``seed``."""
    from transformers import LlavaNextVideoForConditionalGeneration

    tok = build_tokenizer(base)
    processor = build_processor(tok, VISION, chat_template=CHAT_TEMPLATE)
    torch.manual_seed(seed)
    if vision_from is not None and (Path(vision_from) / TOWER_FILE).is_file():  # a pretrained tower's parts
        from safetensors.torch import load_file
        from transformers import CLIPVisionConfig

        vision = CLIPVisionConfig.from_pretrained(vision_from)
        model = LlavaNextVideoForConditionalGeneration(build_config(tok, base, vision=vision))
        _load_base_text(model, base)
        model.model.vision_tower.load_state_dict(load_file(str(Path(vision_from) / TOWER_FILE)))
        model.eval()
        return model, processor
    model = LlavaNextVideoForConditionalGeneration(build_config(tok, base))
    _load_base_text(model, base)
    src = Path(vision_from or paths.IMAGE_MODEL)
    donor = LlavaNextVideoForConditionalGeneration.from_pretrained(src)
    try:
        model.model.vision_tower.load_state_dict(donor.model.vision_tower.state_dict())
    except RuntimeError as e:
        raise ValueError(f"{src}: its vision tower does not fit the SmolLM2 VideoLLM's ({VISION}): {e}") from None
    model.eval()
    return model, processor


def save_parts(model, processor, out: str | Path, lora=None, meta: dict | None = None) -> Path:
    """Write a model as parts into ``out``: config, processor, ``vision.safetensors`` and (if ``lora``, a peft
    model wrapping ``model``) the LoRA adapter. The base is named by its pinned hash, never copied."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inner = lora.get_base_model() if lora is not None else model
    inner.config.save_pretrained(out)
    processor.save_pretrained(out)
    save_file({k.replace("base_layer.", ""): v for k, v in _vision_state(inner).items() if "lora_" not in k},
              str(out / VISION_FILE))
    if lora is not None:
        lora.save_pretrained(out / ADAPTER_DIR)
        (out / ADAPTER_DIR / "README.md").unlink(missing_ok=True)  # peft's empty template; the card is ours
    info = {"format": "mapflow-smol-parts/1", "base": backbone.NAME, "base_gguf_sha256": backbone.GGUF_SHA256,
            "base_hub_equivalent": backbone.HUB_ID, "vision": VISION_FILE,
            "adapter": ADAPTER_DIR if lora is not None else None, **(meta or {})}
    (out / PARTS_FILE).write_text(json.dumps(info, indent=1) + "\n")
    return out


def parameter_count(folder: str | Path) -> int:
    """Parameters of the assembled model of a parts folder (base text model with the added token rows, vision
    tower, projector; the LoRA weights are merged into the base's, so they add none), read from file headers."""
    from safetensors import safe_open

    def count(path) -> int:
        with safe_open(str(path), "pt") as f:
            return sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())

    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())["text_config"]
    base = Path(backbone.base_folder())
    added = (cfg["vocab_size"] - json.loads((base / "config.json").read_text())["vocab_size"]) * cfg["hidden_size"]
    return count(base / "model.safetensors") + added + count(folder / VISION_FILE)


def is_parts(folder: str | Path) -> bool:
    """Whether ``folder`` holds a model saved by :func:`save_parts`."""
    return (Path(folder) / PARTS_FILE).is_file()


def load_parts(folder: str | Path, base: str | None = None, merge: bool = True):
    """Assemble ``(model, processor)`` from parts: SmolLM2 base + vision/projector + LoRA merged into the weights.

    ``merge=False`` returns the peft-wrapped model (for training) instead of merging.
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoProcessor, LlavaNextVideoForConditionalGeneration

    folder = Path(folder)
    info = json.loads((folder / PARTS_FILE).read_text())
    if base in (None, "") and info.get("base_gguf_sha256") not in (None, backbone.GGUF_SHA256):
        raise backbone.BackboneError(f"{folder} was trained on a base with hash {info['base_gguf_sha256']}, not the "
                                     f"pinned {backbone.GGUF_SHA256}")
    config = AutoConfig.from_pretrained(folder)
    model = LlavaNextVideoForConditionalGeneration(config)
    _load_base_text(model, base)
    missing, unexpected = model.load_state_dict(load_file(str(folder / info["vision"])), strict=False)
    stray = [k for k in missing if not k.startswith("model.language_model.") and k != "lm_head.weight"]
    if unexpected or stray:
        raise ValueError(f"{folder / info['vision']}: does not fit the config (missing {stray[:3]}, unexpected "
                         f"{unexpected[:3]})")
    processor = AutoProcessor.from_pretrained(folder)
    if info.get("adapter"):
        import warnings

        from peft import PeftModel

        with warnings.catch_warnings():  # peft reads the attribute transformers 5 deprecates; nothing to act on
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            peft_model = PeftModel.from_pretrained(model, folder / info["adapter"], is_trainable=not merge)
        if not merge:
            return peft_model, processor
        model = peft_model.merge_and_unload()
    model.eval()
    return model, processor
