"""PLLaVA-style LLaVA (the paper's LLaVA-NeXT-7B/13B-Video-FT and their llava-v1.6 image bases), in the HF idiom.

WORK IN PROGRESS (issue 16, branch ``issue16-wip``): the model class and its reference test; the processor, the
loader dispatch in :func:`mapflow_utils.models.load`, legacy key names and the paper's prompt style come next.

The paper's Video-FT checkpoints are ``llava``-type configs with extra keys (``pooling_shape``, ``frame_shape``,
``num_frames``, ``use_pooling``). Each frame goes through the CLIP tower on its own (24×24 patch features for
CLIP-L/336), then the projector (linear → GELU → linear) per patch, and only then an adaptive 3-D average pool takes
the ``[T, 24, 24]`` grid of projected features to ``pooling_shape`` (8×12×12 = 1,152 video tokens). transformers'
``LlavaNextVideo`` pools *before* its projector, so it is a different function and cannot load these faithfully.
One ``<image>`` placeholder in the text stands for all ``t·h·w`` pooled tokens, frame after frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import LlavaForConditionalGeneration, LlavaModel


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
