"""InternVL-Chat V1.5 checkpoints (the paper's Mini-InternVL-4B-Video-FT and Mini-InternVL-Chat-4B-V1-5) converted
to transformers' native ``InternVLForConditionalGeneration`` with a Phi-3 text model; no ``trust_remote_code``.

The original layout (``model_type`` ``internvl_chat``; remote code ``InternVLChatModel``):

* ``vision_config`` (InternViT-300M-448px: ``intern_vit_6b`` type) and ``llm_config`` (``phi3``), plus
  ``downsample_ratio`` (0.5), ``select_layer`` (-1), ``ps_version`` (``v2``), ``force_image_size`` (448);
* weights ``vision_model.embeddings.{class_embedding, patch_embedding, position_embedding}``,
  ``vision_model.encoder.layers.N.{norm1, attn.qkv, attn.proj, ls1, norm2, mlp.fc1, mlp.fc2, ls2}``,
  ``mlp1.{0: LayerNorm, 1: Linear, 3: Linear}`` (GELU at 2), ``language_model.model.*`` and
  ``language_model.lm_head.*`` (transformers' own Phi-3 names);
* per frame: InternViT (CLS dropped) → pixel shuffle (v2, ratio 0.5: 32×32 → 16×16) → ``mlp1``; the text's
  ``<img><IMG_CONTEXT></img>`` has its context token repeated 256 times per frame.

:func:`convert` writes the native checkpoint (the fused ``qkv`` split into ``q/k/v``, the rest renamed) and a
:class:`~mapflow_utils.models.block_processor.VideoBlockProcessor` (frames short-side resized to 448 and centre-cropped,
ImageNet mean/std, the paper's
``eval_mvbench`` text inside Phi-3 roles, one block of ``T·256`` context tokens). :func:`converted` does it once per
checkpoint into the cache; :func:`mapflow_utils.models.load` calls it for an ``internvl_chat`` folder or hub id.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch
from .block_processor import EVAL_MVBENCH_PHI3, VideoBlockProcessor
from .. import paths

#: InternVL-Chat's image normalisation (ImageNet).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CONTEXT_TOKEN = "<IMG_CONTEXT>"
#: Bump when the conversion changes: converted folders are cached under a key that includes it.
CONVERTER_VERSION = 2  # 2: frames short-side resized and centre-cropped, as the paper's video path

#: (original, native) names: a whole key, or a prefix when it ends with "."; ``{n}`` stands for a layer number.
#: ``attn.qkv`` is split separately (:func:`convert_state_dict`).
NAMES = (
    ("vision_model.embeddings.class_embedding", "model.vision_tower.embeddings.cls_token"),
    ("vision_model.embeddings.position_embedding", "model.vision_tower.embeddings.position_embeddings"),
    ("vision_model.embeddings.patch_embedding.", "model.vision_tower.embeddings.patch_embeddings.projection."),
    ("vision_model.encoder.layers.{n}.norm1.", "model.vision_tower.encoder.layer.{n}.layernorm_before."),
    ("vision_model.encoder.layers.{n}.norm2.", "model.vision_tower.encoder.layer.{n}.layernorm_after."),
    ("vision_model.encoder.layers.{n}.ls1", "model.vision_tower.encoder.layer.{n}.lambda_1"),
    ("vision_model.encoder.layers.{n}.ls2", "model.vision_tower.encoder.layer.{n}.lambda_2"),
    ("vision_model.encoder.layers.{n}.attn.proj.", "model.vision_tower.encoder.layer.{n}.attention.projection_layer."),
    ("vision_model.encoder.layers.{n}.mlp.", "model.vision_tower.encoder.layer.{n}.mlp."),
    ("mlp1.0.", "model.multi_modal_projector.layer_norm."),
    ("mlp1.1.", "model.multi_modal_projector.linear_1."),
    ("mlp1.3.", "model.multi_modal_projector.linear_2."),
    ("language_model.model.", "model.language_model."),
    ("language_model.lm_head.", "lm_head."),
)


def rename(key: str, reverse: bool = False) -> str | None:
    """An original key's native name (``reverse``: a native key's original name); ``None`` if :data:`NAMES` has
    none."""
    for original, native in NAMES:
        src, dst = (native, original) if reverse else (original, native)
        pattern = re.escape(src).replace(re.escape("{n}"), r"(\d+)") + ("" if src.endswith(".") else "$")
        m = re.match(pattern, key)
        if m:
            return dst.replace("{n}", m[1]) + key[m.end():] if "{n}" in src else dst + key[m.end():]
    return None


_QKV = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.attn\.qkv\.(weight|bias)$")


class ConversionError(ValueError):
    """A checkpoint that is not InternVL-Chat V1.5 as this converter knows it; the message names the key or field."""


def is_internvl_chat(config: dict) -> bool:
    """A ``config.json`` (as a dict) of an InternVL-Chat remote-code checkpoint."""
    return config.get("model_type") == "internvl_chat"


def frame_tokens(config: dict) -> int:
    """Context tokens per frame: ``(image_size / patch_size · downsample_ratio)²`` (448/14·0.5 → 256)."""
    v = config["vision_config"]
    size = int(config.get("force_image_size") or v["image_size"])
    return int((size // int(v["patch_size"])) ** 2 * float(config.get("downsample_ratio", 0.5)) ** 2)


def native_config(config: dict, image_token_id: int):
    """The original ``config.json`` dict → :class:`transformers.InternVLConfig` (Phi-3 text config)."""
    from transformers import AutoConfig, InternVLConfig, InternVLVisionConfig

    if config.get("ps_version", "v2") != "v2":
        raise ConversionError(f"ps_version={config.get('ps_version')!r}: transformers' InternVL implements the v2 "
                              "pixel shuffle only")
    v, llm = config["vision_config"], dict(config["llm_config"])
    if v.get("qk_normalization"):
        raise ConversionError("qk_normalization=True (InternViT-6B): only the 300M tower (no QK norm) is converted")
    size = int(config.get("force_image_size") or v["image_size"])
    vision = InternVLVisionConfig(
        hidden_size=v["hidden_size"], intermediate_size=v["intermediate_size"],
        num_hidden_layers=v["num_hidden_layers"], num_attention_heads=v["num_attention_heads"],
        image_size=size, patch_size=v["patch_size"], attention_bias=bool(v.get("qkv_bias", True)),
        use_qk_norm=False, norm_type=v.get("norm_type", "layer_norm"), layer_norm_eps=v.get("layer_norm_eps", 1e-6),
        hidden_act=v.get("hidden_act", "gelu"), use_mean_pooling=True)  # mean pooling: no norm after the encoder
    rope = llm.get("rope_scaling")
    if isinstance(rope, dict) and rope.get("type", rope.get("rope_type")) in ("su", "longrope") and \
            "original_max_position_embeddings" in llm:  # Phi-3-128k: transformers 5 reads it inside the rope dict
        llm["rope_scaling"] = dict(rope, original_max_position_embeddings=llm["original_max_position_embeddings"])
    model_type = llm.pop("model_type", "phi3")
    for k in ("architectures", "auto_map", "_name_or_path", "transformers_version", "attn_implementation"):
        llm.pop(k, None)
    text = AutoConfig.for_model(model_type, **llm)
    return InternVLConfig(vision_config=vision, text_config=text, image_token_id=image_token_id,
                          image_seq_length=frame_tokens(config),
                          downsample_ratio=float(config.get("downsample_ratio", 0.5)),
                          vision_feature_layer=int(config.get("select_layer", -1)),
                          vision_feature_select_strategy="default", projector_hidden_act="gelu",
                          tie_word_embeddings=bool(llm.get("tie_word_embeddings", False)),
                          architectures=["InternVLForConditionalGeneration"])


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original tensors → native names; ``attn.qkv`` ``[3·C, C]`` (and its bias) split into ``q/k/v_proj``."""
    out = {}
    for key, value in state.items():
        m = _QKV.match(key)
        if m:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                out[f"model.vision_tower.encoder.layer.{m[1]}.attention.{name}.{m[2]}"] = part.contiguous()
            continue
        new = rename(key)
        if new is None:
            raise ConversionError(f"unexpected key {key!r} in an InternVL-Chat checkpoint (not converted)")
        out[new] = value
    return out


def _state_dict(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if files:
        return {k: v for f in files for k, v in load_file(f).items()}
    files = sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise ConversionError(f"no *.safetensors or pytorch_model*.bin weights in {folder}")
    return {k: v for f in files for k, v in torch.load(f, map_location="cpu", weights_only=True).items()}


def convert(src: str | Path, dst: str | Path) -> Path:
    """Write the native checkpoint of the InternVL-Chat folder ``src`` to ``dst``; returns ``dst``.

    Raises :class:`ConversionError` for a config or key this converter does not know (nothing is written then).
    """
    from transformers import AutoTokenizer, GotOcr2ImageProcessor, InternVLForConditionalGeneration


    src, dst = Path(src), Path(dst)
    config = json.loads((src / "config.json").read_text())
    if not is_internvl_chat(config):
        raise ConversionError(f"{src}: model_type {config.get('model_type')!r} is not internvl_chat")
    tokenizer = AutoTokenizer.from_pretrained(src, trust_remote_code=False)  # never the checkpoint's own code
    ctx = tokenizer.convert_tokens_to_ids(CONTEXT_TOKEN)
    if ctx is None or ctx == tokenizer.unk_token_id:
        raise ConversionError(f"{src}: the tokenizer has no {CONTEXT_TOKEN} token")
    native = native_config(config, ctx)
    state = convert_state_dict(_state_dict(src))
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(native)
    missing = sorted(set(model.state_dict()) - set(state))
    extra = sorted(set(state) - set(model.state_dict()))
    if missing or extra:
        raise ConversionError(f"{src}: converted keys do not match transformers' InternVL: missing {missing[:5]}, "
                              f"unexpected {extra[:5]}")
    model.load_state_dict(state, assign=True, strict=True)
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    size = native.vision_config.image_size[0]
    images = GotOcr2ImageProcessor(size={"height": size, "width": size}, crop_to_patches=False,
                                   image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD))
    VideoBlockProcessor(images, tokenizer, video_token=CONTEXT_TOKEN, tokens_per_frame=frame_tokens(config),
                        chat_template=EVAL_MVBENCH_PHI3, name=str(src),
                        frame_transform="short_side_crop").save_pretrained(dst)
    return dst


def source_key(src: Path) -> str:
    """What makes a conversion: the converter version, ``config.json``, the tokenizer files and each weight file's
    identity: in a hub snapshot the content-addressed blob it links to, else its name, size and modification time."""
    h = hashlib.sha256(f"converter {CONVERTER_VERSION}\n".encode())
    for f in sorted(p for p in src.iterdir() if p.suffix in (".json", ".model", ".txt") and p.is_file()):
        h.update(f.name.encode() + b"\n" + f.read_bytes())
    for f in sorted(list(src.glob("*.safetensors")) + list(src.glob("pytorch_model*.bin"))):
        st = f.stat()
        blob = f.resolve().name if f.is_symlink() else f"{st.st_size} {st.st_mtime_ns}"
        h.update(f"{f.name} {blob}\n".encode())
    return h.hexdigest()[:16]


def converted(src: str | Path, cache: str | Path | None = None) -> Path:
    """The native checkpoint of ``src``, converted once into ``cache`` (default ``$MAPFLOW_CACHE/converted`` or
    ``<repo>/runs/converted``) under :func:`source_key`; a partial conversion (interrupted) is redone."""

    src = Path(src)
    root = Path(cache) if cache is not None else paths.work_cache("converted")
    dst = root / f"internvl-chat-{source_key(src)}"
    done = dst / ".complete"
    if not done.exists():
        tmp = dst.with_name(dst.name + ".partial")
        convert(src, tmp)
        if dst.exists():
            import shutil

            shutil.rmtree(dst)
        tmp.rename(dst)
        done.write_text(str(src))
    return dst
