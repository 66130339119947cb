"""PLLaVA-style LLaVA (the paper's LLaVA-NeXT-7B/13B-Video-FT and their llava-v1.6 image bases), in the HF idiom.

The paper's Video-FT checkpoints are ``llava``-type configs with extra keys (``pooling_shape``, ``frame_shape``,
``num_frames``, ``use_pooling``). Each frame goes through the CLIP tower on its own (24×24 patch features for
CLIP-L/336), then the projector (linear → GELU → linear) per patch, and only then an adaptive 3-D average pool takes
the ``[T, 24, 24]`` grid of projected features to ``pooling_shape`` (8×12×12 = 1,152 video tokens). transformers'
``LlavaNextVideo`` pools *before* its projector, so it is a different function and cannot load these faithfully.
One ``<image>`` placeholder in the text stands for all ``t·h·w`` pooled tokens, frame after frame
(:class:`mapflow_utils.models.block_processor.VideoBlockProcessor`).

The llava-v1.6 image checkpoints (the paper's ImageLLM bases, ``LlavaNextForConditionalGeneration``) load into the
same class with the paper's pooling (:func:`image_base_config`): their anyres tiling and image-newline are not used
for video, as in the paper's code. :func:`load` reads either; legacy key names load as they are (:data:`LEGACY_KEYS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import LlavaForConditionalGeneration, LlavaModel
from .block_processor import EVAL_MVBENCH, VideoBlockProcessor


def pooling_shape(config) -> tuple[int, int, int]:
    """``(t, h, w)`` of the pooled video grid (the config's ``pooling_shape``)."""
    shape = getattr(config, "pooling_shape", None)
    if shape is None or len(shape) != 3:
        raise ValueError("a PLLaVA config needs pooling_shape = [t, h, w] (the paper's checkpoints: [8, 12, 12])")
    return tuple(int(x) for x in shape)


def pool_video(features: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Projected patch features of one video ``[T, P, d]`` (P a square number of patches, frame after frame) →
    pooled tokens ``[t·h·w, d]`` by an adaptive 3-D average pool over (time, height, width)."""
    T, P, d = features.shape
    side = int(round(P ** 0.5))
    if side * side != P:
        raise ValueError(f"{P} patches per frame do not form a square grid")
    grid = features.reshape(T, side, side, d).permute(3, 0, 1, 2)[None]  # [1, d, T, side, side]
    pooled = F.adaptive_avg_pool3d(grid, shape)[0]  # [d, t, h, w]
    return pooled.permute(1, 2, 3, 0).reshape(-1, d)


class PllavaModel(LlavaModel):
    """LlavaModel whose image features are the frames of one video each, projected per patch, then pooled."""

    def get_image_features(self, pixel_values, vision_feature_layer=None, vision_feature_select_strategy=None,
                           **kwargs):
        """``pixel_values`` ``[videos·T, 3, H, W]`` (T = ``config.num_frames`` frames per video) → one pooled
        feature tensor ``[t·h·w, d]`` per video in ``pooler_output``."""
        if vision_feature_layer is not None:
            kwargs["vision_feature_layer"] = vision_feature_layer
        if vision_feature_select_strategy is not None:
            kwargs["vision_feature_select_strategy"] = vision_feature_select_strategy
        out = super().get_image_features(pixel_values=pixel_values, **kwargs)
        frames = torch.stack(list(out.pooler_output))  # [videos·T, P, d]
        T = int(getattr(self.config, "num_frames", frames.shape[0]))
        if frames.shape[0] % T:
            raise ValueError(f"{frames.shape[0]} frames do not split into videos of num_frames={T}")
        shape = pooling_shape(self.config)
        out.pooler_output = [pool_video(v, shape) for v in frames.split(T)]
        return out


#: The pre-4.47 LLaVA layout of the paper's checkpoints -> today's (regex -> replacement, for ``key_mapping``).
LEGACY_KEYS = {r"^language_model\.model\.": "model.language_model.", r"^language_model\.lm_head\.": "lm_head.",
               r"^vision_tower\.": "model.vision_tower.", r"^multi_modal_projector\.": "model.multi_modal_projector."}


class PllavaForConditionalGeneration(LlavaForConditionalGeneration):
    """The paper's PLLaVA-style LLaVA: :class:`LlavaForConditionalGeneration` with :class:`PllavaModel`.
    ``from_pretrained`` reads the legacy key names (:data:`LEGACY_KEYS`) without a conversion step."""

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        kwargs.setdefault("key_mapping", LEGACY_KEYS)
        return super().from_pretrained(*args, **kwargs)

    def __init__(self, config):
        super().__init__(config)
        self.model = PllavaModel(config)
        self.post_init()


#: The paper's pooled grid for CLIP-L/336 (24×24 patches per frame): 8 frames × 12 × 12 = 1,152 video tokens.
PAPER_POOLING = (8, 12, 12)
#: The config keys of the paper's PLLaVA-style checkpoints (a ``llava`` config with these is one).
POOLING_KEYS = ("pooling_shape", "num_frames", "use_pooling")


def is_pllava(config: dict) -> bool:
    """A ``config.json`` (as a dict) of a PLLaVA-style checkpoint: ``model_type`` llava with ``pooling_shape``."""
    return config.get("model_type") == "llava" and "pooling_shape" in config


def image_base_config(config: dict, num_frames: int = PAPER_POOLING[0]):
    """A llava-v1.6 (``llava_next``) ``config.json`` dict → the :class:`LlavaConfig` of the same weights run as the
    paper's ImageLLM: frames through the projector, then pooled to half the patch grid per side (24×24 → 12×12,
    the paper's 8·12·12 for CLIP-L/336), ``num_frames`` frames per video."""
    from transformers import LlavaConfig

    vision = config["vision_config"]
    side = int(vision.get("image_size", 336)) // int(vision.get("patch_size", 14))
    keep = ("vision_config", "text_config", "image_token_index", "projector_hidden_act", "vision_feature_layer",
            "vision_feature_select_strategy", "tie_word_embeddings", "multimodal_projector_bias")
    cfg = LlavaConfig(**{k: v for k, v in config.items() if k in keep})
    cfg.pooling_shape, cfg.num_frames, cfg.use_pooling = [num_frames, side // 2, side // 2], num_frames, True
    cfg.frame_shape = [side, side]
    cfg.architectures = [PllavaForConditionalGeneration.__name__]
    return cfg


def _image_processor(path, vision_config, name: str):
    """The checkpoint's image processor as a plain CLIP resize + centre crop to the tower's size (llava-v1.6's
    anyres tiling is an image-only feature; PLLaVA checkpoints without one get CLIP's defaults at that size)."""
    from transformers import AutoImageProcessor, CLIPImageProcessor

    size = int(vision_config.image_size)
    try:
        found = AutoImageProcessor.from_pretrained(path).to_dict()
    except (OSError, ValueError):
        found = {}
    keep = {k: found[k] for k in ("image_mean", "image_std", "resample", "do_convert_rgb") if k in found}
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                              do_center_crop=True, **keep)


def load(path: str | Path, config: dict, dtype: Any = None, device_map: Any = None, attn_implementation: str = "sdpa"):
    """A PLLaVA-style checkpoint or a llava-v1.6 image base (``config`` is its ``config.json``) →
    ``(model, processor)``, the processor a :class:`~mapflow_utils.models.block_processor.VideoBlockProcessor` with the
    paper's ``eval_mvbench`` prompt."""
    from transformers import AutoTokenizer, LlavaConfig


    name = str(path)
    cfg = LlavaConfig.from_pretrained(path) if is_pllava(config) else image_base_config(config)
    kwargs = {"config": cfg, "attn_implementation": attn_implementation}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = PllavaForConditionalGeneration.from_pretrained(path, **kwargs).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    t, h, w = pooling_shape(cfg)
    processor = VideoBlockProcessor(_image_processor(path, cfg.vision_config, name), tokenizer,
                                    video_token=tokenizer.convert_ids_to_tokens(int(cfg.image_token_index)),
                                    tokens_per_frame=h * w, pooled_frames=t, num_frames=int(cfg.num_frames),
                                    chat_template=EVAL_MVBENCH, name=name)
    return model, processor
