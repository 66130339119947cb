"""Loading video LLMs and the adapter that tells the rest of mapflow where their parts are.

``load(model_id_or_path)`` returns ``(model, processor, adapter)``. The adapter names the text decoder stack
(whose forward takes ``inputs_embeds``, ``position_ids`` and a ``cache``, and returns post-final-norm hidden
states), the final norm, ``lm_head``, the input embeddings, the number of text layers, the video token id (read
from the config / tokenizer, never hard-coded), how to call the processor, and how the video tokens split into
frames.

Support matrix (transformers 5.x): see :data:`SUPPORT`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: Oldest transformers release mapflow is tested with (the attention/mask interfaces and ``cache=`` kwarg).
MIN_TRANSFORMERS = "5.0.0"


class UnsupportedModelError(ValueError):
    """A model class mapflow has no adapter for; the message lists the supported ones."""


@dataclass(frozen=True)
class Family:
    """One supported model class: how its video tokens are laid out and how to call its processor."""

    model_class: str
    text_family: str
    frames: str  # how the video token run splits into frames: "equal", "groups" (temporal patches), ...
    note: str = ""


#: The support matrix: model class -> family facts. Tested on tiny random-weight configs in tests/.
SUPPORT: dict[str, Family] = {
    "LlavaNextVideoForConditionalGeneration": Family(
        "LlavaNextVideoForConditionalGeneration", "llama", "equal",
        "LLaVA-NeXT-Video (the paper's main family); T frames x (pooled) patches, contiguous"),
}


@dataclass
class Adapter:
    """Where the parts of a loaded video LLM are.

    Attributes:
        family: the :class:`Family` entry.
        model: the ``*ForConditionalGeneration`` model.
        processor: its processor.
        language_model: the text decoder stack (``model.model.language_model``).
        lm_head: the output projection.
        num_layers: number of text decoder layers.
        video_token_id: the id of the video placeholder token in ``input_ids``.
    """

    family: Family
    model: Any
    processor: Any
    language_model: Any
    lm_head: Any
    num_layers: int
    video_token_id: int
    processor_kwargs: dict = field(default_factory=dict)

    @property
    def final_norm(self):
        """The text model's final norm (applied before ``lm_head``)."""
        return self.language_model.norm

    @property
    def input_embeddings(self):
        """The input embedding matrix module (``[vocab, hidden]``)."""
        return self.model.get_input_embeddings()

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def inputs(self, frames: np.ndarray, text: str):
        """Processor output for one sample: uint8 frames ``[T, H, W, 3]`` and the rendered prompt text."""
        return self.processor(text=text, videos=[frames], return_tensors="pt", **self.processor_kwargs)

    def frame_ranges(self, input_ids, video: range, num_frames: int) -> list[range]:
        """Token ranges of each frame (or temporal group) inside the ``video`` range of the expanded ids."""
        n = len(video)
        if self.family.frames == "equal":
            if n % num_frames:
                raise ValueError(f"{n} video tokens do not split into {num_frames} equal frames")
            per = n // num_frames
            return [range(video.start + i * per, video.start + (i + 1) * per) for i in range(num_frames)]
        raise NotImplementedError(self.family.frames)


def _check_transformers() -> None:
    import transformers
    from packaging.version import Version

    if Version(transformers.__version__) < Version(MIN_TRANSFORMERS):
        raise RuntimeError(f"transformers {transformers.__version__} is too old for mapflow: it needs >= "
                           f"{MIN_TRANSFORMERS} (AttentionInterface + AttentionMaskInterface, the `cache` kwarg). "
                           f"Upgrade with: pip install 'transformers=={_pinned_transformers()}'")


def _pinned_transformers() -> str:
    return "5.24.0"


def adapter_for(model, processor) -> Adapter:
    """Build the :class:`Adapter` of an already loaded model; raises :class:`UnsupportedModelError`."""
    _check_transformers()
    name = type(model).__name__
    if name not in SUPPORT:
        raise UnsupportedModelError(f"{name} is not supported by mapflow. Supported: {', '.join(SUPPORT)}. To add "
                                    "it, add a Family to mapflow_utils.models.SUPPORT and a tiny-config test.")
    fam = SUPPORT[name]
    lm = model.model.language_model
    cfg = model.config
    vid = getattr(cfg, "video_token_id", None)
    if vid is None:
        vid = getattr(cfg, "video_token_index", None)
    if vid is None:
        vid = processor.tokenizer.convert_tokens_to_ids(processor.tokenizer.video_token)
    return Adapter(family=fam, model=model, processor=processor, language_model=lm, lm_head=model.lm_head,
                   num_layers=len(lm.layers), video_token_id=int(vid))


def load(model_id_or_path: str | Path, device: str = "cpu", dtype: Any = None, device_map: Any = None,
         attn_implementation: str = "sdpa"):
    """Load a video LLM, its processor and its adapter: ``(model, processor, adapter)``.

    ``model_id_or_path`` is a local folder or a hub id (hub downloads follow ``HF_HUB_OFFLINE``). The model is put
    in eval mode; ``dtype`` defaults to the checkpoint's. Raises :class:`UnsupportedModelError` for a class outside
    :data:`SUPPORT`, and ``RuntimeError`` for a transformers release that is too old.
    """
    _check_transformers()
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    config = AutoConfig.from_pretrained(model_id_or_path)
    archs = getattr(config, "architectures", None) or []
    if archs and archs[0] not in SUPPORT:
        raise UnsupportedModelError(f"{model_id_or_path}: {archs[0]} is not supported by mapflow. Supported: "
                                    f"{', '.join(SUPPORT)}.")
    kwargs: dict[str, Any] = {"attn_implementation": attn_implementation}
    if dtype is not None:
        kwargs["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForImageTextToText.from_pretrained(model_id_or_path, **kwargs)
    if device_map is None:
        model.to(device)
    model.eval()
    processor = AutoProcessor.from_pretrained(model_id_or_path)
    return model, processor, adapter_for(model, processor)
