"""Loading video LLMs and the adapter that tells the rest of mapflow where their parts are.

``load(model_id_or_path)`` returns ``(model, processor, adapter)``. The adapter names the text decoder stack
(whose forward takes ``inputs_embeds``, ``position_ids`` and a ``cache``, and returns post-final-norm hidden
states), the final norm, ``lm_head``, the input embeddings, the number of text layers, the video token id (read
from the config / tokenizer, never hard-coded), how to call the processor, and how the video tokens split into
frames.

Support matrix (transformers 5.24), see :data:`SUPPORT`. Each class is ``<Name>ForConditionalGeneration``; the
language model is ``model.model.language_model`` for all of them but SmolVLM (``model.model.text_model``). "tiny" is what ``mapflow_utils.models.tiny_vlms`` gives for 8
frames of 64x64: video tokens per frame (+ text tokens the processor inserts per frame, with the tiny BPE).
"positions" is what the model passes to the language model as ``position_ids``.

============== ========== ================================================== ============= =====================
Name           text model video tokens (layout)                              tiny          positions
============== ========== ================================================== ============= =====================
LlavaNextVideo llama      ``<video>`` x pooled patches, frame after frame    4             none (0..L-1)
LlavaOnevision qwen2      ``<video>`` x pooled patches, frame after frame,   4, last 4+1   none (0..L-1)
                          then one image-newline ``<video>``
Qwen2VL        qwen2_vl   ``<|video_pad|>`` x merged patches per temporal    4 per 2       mRoPE ``[3, B, L]``
                          group of ``temporal_patch_size`` (2) frames,       frames        (t, h, w)
                          between ``<|vision_start|>``/``<|vision_end|>``
Qwen2_5_VL     qwen2_5_vl as Qwen2-VL                                        4 per 2       mRoPE ``[3, B, L]``,
                                                                             frames        t from the fps
InternVL       qwen2      ``FrameN: <img>`` + ``<IMG_CONTEXT>`` x shuffled   4 (+8)        none (0..L-1)
                          patches + ``</img>``, joined by newlines
VideoLlama3    qwen2      ``Time t s:`` + ``<|video_pad|>`` x merged         1-4 (+10)     none (0..L-1)
                          patches, joined by ``,``
Pllava         llama      one ``<image>`` -> t·h·w pooled tokens (projector   4 (8x2x2)     none (0..L-1)
                          per patch, then 3-D average pool), frame after frame
InternVLChat   phi3       ``<img>`` + ``<IMG_CONTEXT>`` x T·n + ``</img>``, one  4             none (0..L-1)
V1_5                      block (InternVL-Chat V1.5, converted on load)
SmolVLM        llama      an intro sentence, then per frame ``\nFrame from     4 (+5..)      none (0..L-1)
                          mm:ss:`` + ``<fake_token_around_image><global-img>``
                          + ``<image>`` x n + ``<fake_token_around_image>``
============== ========== ================================================== ============= =====================

The last two are the paper's own subjects as published (:mod:`mapflow_utils.models.pllava`,
:mod:`mapflow_utils.models.internvl_chat`, :mod:`mapflow_utils.models.block_processor`); llava-v1.6 image checkpoints load as
Pllava (:data:`LOADS_AS`), the paper's ImageLLM bases.

Notes: Qwen2-VL/2.5-VL need ``mm_token_type_ids`` for mRoPE (their processors return it; :meth:`Adapter.inputs`
asks for it explicitly). Qwen2.5-VL (time positions), VideoLLaMA3 and SmolVLM (timestamps) read the frame rate from
video metadata, which :meth:`Adapter.inputs` passes. SmolVLM's text model is ``model.model.text_model``
(:attr:`Family.text_attr`); its frames are images (``<image>``, ``config.image_token_id``), and its processor writes
"You are provided the following series of eight frames from a 0:00:07 [H:MM:SS] video." before the first frame:
that sentence belongs to the first frame, the closing blank line to the last. InternVL feeds frames as images (``pixel_values``), so its video
token is ``<IMG_CONTEXT>`` (``config.image_token_id``). VideoLLaMA3 compresses tokens of patches that do not
change between frames, so a frame has 1 to 4 video tokens in the tiny config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import block_processor
from .. import paths

#: Oldest transformers release mapflow is tested with (the attention/mask interfaces and ``cache=`` kwarg).
MIN_TRANSFORMERS = "5.0.0"


class UnsupportedModelError(ValueError):
    """A model class mapflow has no adapter for; the message lists the supported ones."""


@dataclass(frozen=True)
class Family:
    """One supported model class: how its video tokens are laid out and how to call its processor.

    ``frames`` says how the video range splits into frames (see :meth:`Adapter.frame_ranges`):

    * ``equal``: the same number of tokens per frame;
    * ``equal+newline``: the same number per frame plus one trailing image-newline token (given to the last frame);
    * ``groups``: one range per temporal group of ``temporal_patch_size`` frames (equal sizes);
    * ``marked``: each frame ends with the end-of-image token; its ``FrameN:`` text and ``<img>`` go with it;
    * ``timestamped``: each frame starts with its timestamp text (``Time 0.0s:``); separators go to the frame
      before;
    * ``framed``: each frame is ``<fake_token_around_image><global-img>`` + image tokens +
      ``<fake_token_around_image>`` after its ``Frame from mm:ss:`` text (Idefics3 / SmolVLM); a frame ends at its
      closing fake token, the text before it belongs to it (the video's intro sentence to the first frame), the text
      after the last block to the last frame.

    ``processor_class`` tells two layouts of one model class apart (InternVL's own per-frame layout vs. InternVL-Chat
    V1.5's one block, read by :class:`~mapflow_utils.models.block_processor.VideoBlockProcessor`).
    ``video_token_attr`` is the config attribute holding the id of the video tokens in the expanded ``input_ids``;
    ``positions`` is ``1d`` or ``mrope`` (3-row ``position_ids``); ``needs_fps`` marks processors that read the
    frame rate from video metadata (timestamps, temporal positions). ``text_attr`` names the text decoder stack
    under ``model.model``. ``question_style`` is the question layout of the family's own evaluation
    (:data:`mapflow_utils.prompts.QUESTION_STYLES`), given to its processor when it names none.
    """

    model_class: str
    text_family: str
    frames: str
    note: str = ""
    video_token_attr: str = "video_token_id"
    positions: str = "1d"
    needs_fps: bool = False
    example: str = ""  # a public checkpoint of this class (for the book's commands; never downloaded here)
    processor_class: str = ""  # set when the same model class is read by another processor (another layout)
    key: str = ""  # the name in SUPPORT when it is not the model class
    text_attr: str = "language_model"
    question_style: str = ""

    @property
    def name(self) -> str:
        """The family's name in :data:`SUPPORT` (the model class unless two layouts share it)."""
        return self.key or self.model_class


#: The support matrix: model class -> family facts. Tested on tiny random-weight configs in tests/.
SUPPORT: dict[str, Family] = {f.name: f for f in (
    Family("LlavaNextVideoForConditionalGeneration", "llama", "equal",
           "LLaVA-NeXT-Video (the paper's main family); T frames x (pooled) patches, contiguous",
           video_token_attr="video_token_index", example="llava-hf/LLaVA-NeXT-Video-7B-hf"),
    Family("LlavaOnevisionForConditionalGeneration", "qwen2", "equal+newline",
           "T frames x (pooled) patches, then one image-newline token", video_token_attr="video_token_index",
           example="llava-hf/llava-onevision-qwen2-7b-ov-hf"),
    Family("Qwen2VLForConditionalGeneration", "qwen2_vl", "groups",
           "temporal groups of temporal_patch_size frames; mRoPE (3-row position_ids)", positions="mrope",
           example="Qwen/Qwen2-VL-7B-Instruct"),
    Family("Qwen2_5_VLForConditionalGeneration", "qwen2_5_vl", "groups",
           "as Qwen2-VL; mRoPE time positions use the fps", positions="mrope", needs_fps=True,
           example="Qwen/Qwen2.5-VL-7B-Instruct"),
    Family("InternVLForConditionalGeneration", "qwen2", "marked",
           "frames as images: 'FrameN: <img>' + <IMG_CONTEXT> x n + '</img>', newline-joined",
           video_token_attr="image_token_id", example="OpenGVLab/InternVL3-1B-hf"),
    Family("VideoLlama3ForConditionalGeneration", "qwen2", "timestamped",
           "'Time t s:' + <|video_pad|> x n per frame, comma-joined; token compression; its own question "
           "(letters, no prefill)", needs_fps=True, example="lkhl/VideoLLaMA3-2B-Image-HF",
           question_style="videollama3"),
    Family("SmolVLMForConditionalGeneration", "llama", "framed",
           "an intro sentence, then per frame 'Frame from mm:ss:' + <fake_token_around_image><global-img> + <image> x "
           "n + <fake_token_around_image>", video_token_attr="image_token_id", needs_fps=True,
           example="HuggingFaceTB/SmolVLM2-2.2B-Instruct", text_attr="text_model"),
    # the paper's own subjects (issue 16): one placeholder -> one block of video tokens, frame after frame
    Family("PllavaForConditionalGeneration", "llama", "equal",
           "the paper's LLaVA-NeXT-Video-FT (PLLaVA-style: projector, then 3-D pool to t x h x w) and its llava-v1.6 "
           "image bases; one <image> -> t*h*w tokens", video_token_attr="image_token_index",
           example="byminji/LLaVA-NeXT-7B-Video-FT", processor_class="VideoBlockProcessor"),
    Family("InternVLForConditionalGeneration", "phi3", "equal",
           "the paper's Mini-InternVL (InternVL-Chat V1.5, converted): <img> + <IMG_CONTEXT> x T*n + </img>",
           video_token_attr="image_token_id", example="byminji/Mini-InternVL-4B-Video-FT",
           processor_class="VideoBlockProcessor", key="InternVLChatV1_5"),
)}


#: Checkpoint classes that load as another family: llava-v1.6 image checkpoints run as the paper's ImageLLM
#: (frames through the PLLaVA pooling, :func:`mapflow_utils.models.pllava.image_base_config`).
LOADS_AS: dict[str, str] = {"LlavaNextForConditionalGeneration": "PllavaForConditionalGeneration"}


def family_named(name: str) -> Family | None:
    """The family of a :data:`SUPPORT` name or of a checkpoint class in :data:`LOADS_AS`; ``None`` otherwise."""
    return SUPPORT.get(LOADS_AS.get(name, name))


def _id_list(input_ids) -> list[int]:
    """``input_ids`` (tensor / array / list, ``[L]`` or ``[1, L]``) as a flat list of ints."""
    ids = input_ids.tolist() if hasattr(input_ids, "tolist") else list(input_ids)
    if ids and isinstance(ids[0], list):
        if len(ids) != 1:
            raise ValueError(f"frame_ranges takes one sequence, got a batch of {len(ids)}")
        ids = ids[0]
    return [int(i) for i in ids]


def _cuts_equal(n: int, parts: int, what: str) -> list[int]:
    if parts <= 0 or n % parts:
        raise ValueError(f"{n} video tokens do not split into {parts} equal {what}")
    return [i * (n // parts) for i in range(parts + 1)]


@dataclass
class Adapter:
    """Where the parts of a loaded video LLM are.

    Attributes:
        family: the :class:`Family` entry.
        model: the ``*ForConditionalGeneration`` model.
        processor: its processor.
        language_model: the text decoder stack (``model.model.language_model``; SmolVLM's ``text_model``).
        lm_head: the output projection.
        num_layers: number of text decoder layers.
        video_token_id: the id of the tokens in the expanded ``input_ids`` whose embeddings the model replaces by
            video features (for InternVL, ``<IMG_CONTEXT>``: it feeds frames as images).
        processor_kwargs: extra keyword arguments for every processor call.
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

    def inputs(self, frames: np.ndarray, text: str, fps: float | None = None):
        """Processor output for one sample, ready for ``model(**inputs)``.

        ``frames`` are uint8 ``[T, H, W, 3]``, ``text`` the rendered prompt. ``fps`` is the rate of the sampled
        frames; families that need it (Qwen2.5-VL time positions, VideoLLaMA3 timestamps) get it as video
        metadata, 1.0 (one frame per second) when not given.
        """
        kwargs = dict(self.processor_kwargs)
        if self.family.needs_fps and "video_metadata" not in kwargs:
            from transformers.video_utils import VideoMetadata

            n = len(frames)
            kwargs["video_metadata"] = [VideoMetadata(total_num_frames=n, fps=float(fps or 1.0),
                                                      frames_indices=list(range(n)))]
        return self.processor(text=text, videos=[frames], return_tensors="pt", **kwargs)

    def frames_per_unit(self) -> int:
        """How many input frames one video unit (one range of :meth:`frame_ranges`) holds: the temporal patch size
        for models that merge frames (Qwen2-VL/2.5-VL: 2), else 1."""
        if self.family.frames == "groups":
            return int(self.model.config.vision_config.temporal_patch_size)
        return 1

    def frame_unit(self) -> str:
        """What "a frame" is in this model's token layout, for figure labels: ``frame`` or ``temporal group of 2
        frames``; frames of unequal token counts (per-frame text markers) say so."""
        k = self.frames_per_unit()
        if k > 1:
            return f"temporal group of {k} frames"
        if self.family.frames in ("marked", "timestamped", "framed"):
            return "frame (with its marker text; token counts differ)"
        return "frame"

    def frame_ranges(self, input_ids, video: range, num_frames: int) -> list[range]:
        """Token ranges of each frame inside the ``video`` range of the expanded ids.

        The ranges are contiguous, do not overlap and cover ``video`` exactly; per-frame text the processor
        inserts (InternVL's ``FrameN:``, VideoLLaMA3's ``Time t s:``) belongs to its frame. A model that pools time
        (PLLaVA's ``pooling_shape`` ``(t, h, w)``, its processor's ``pooled_frames``) has ``t`` frames of ``h·w``
        tokens, each the average of ``num_frames / t`` input frames. For Qwen2-VL/2.5-VL the
        vision tower merges ``temporal_patch_size`` consecutive frames into one group of tokens: there is then one
        range per group, i.e. ``num_frames // temporal_patch_size`` ranges (rounded up: the processor pads the
        last group by repeating the last frame).
        """
        ids = _id_list(input_ids)[video.start:video.stop]
        n, kind = len(ids), self.family.frames
        if len(ids) != len(video):
            raise ValueError(f"video range {video} lies outside the {len(_id_list(input_ids))} input ids")
        if kind == "equal":
            pooled = getattr(self.processor, "pooled_frames", None)  # PLLaVA pools time: t of pooling_shape
            takes = getattr(self.processor, "num_frames", None)
            if pooled and takes and num_frames != takes:
                raise ValueError(f"{num_frames} frames given; this model takes num_frames={takes} frames per video "
                                 f"(pooled in time to {pooled})")
            cuts = _cuts_equal(n, pooled or num_frames, f"frames ({num_frames} input frames pooled in time to "
                               f"{pooled})" if pooled else "frames")
        elif kind == "equal+newline":
            cuts = _cuts_equal(n - 1, num_frames, "frames (plus one newline token)")
            cuts[-1] = n
        elif kind == "groups":
            tps = int(self.model.config.vision_config.temporal_patch_size)
            cuts = _cuts_equal(n, -(-num_frames // tps), f"temporal groups of {tps} frames")
        elif kind == "marked":
            end = self.tokenizer.convert_tokens_to_ids(self.processor.end_image_token)
            ends = [i + 1 for i, t in enumerate(ids) if t == end]
            if len(ends) != num_frames or ends[-1] != n:
                raise ValueError(f"expected {num_frames} frames each ending with {self.processor.end_image_token!r} "
                                 f"(id {end}); found {len(ends)}")
            cuts = [0] + ends
        elif kind == "timestamped":
            marker = ids[0] if ids else None  # the first token of every frame's timestamp text
            starts = [i for i, t in enumerate(ids) if t == marker]
            if marker == self.video_token_id or len(starts) != num_frames:
                raise ValueError(f"expected {num_frames} frames each starting with timestamp token {marker}; "
                                 f"found {len(starts)}")
            cuts = starts + [n]
        elif kind == "framed":
            tok = self.tokenizer
            fake = tok.convert_tokens_to_ids(self.processor.fake_image_token)
            glob = tok.convert_tokens_to_ids(self.processor.global_image_token)
            fakes = [i for i, t in enumerate(ids) if t == fake]
            if ids.count(glob) != num_frames or len(fakes) != 2 * num_frames:
                raise ValueError(f"expected {num_frames} frames each wrapped in {self.processor.fake_image_token!r} "
                                 f"around {self.processor.global_image_token!r}; found {ids.count(glob)} "
                                 f"{self.processor.global_image_token!r} and {len(fakes)} wrappers")
            cuts = [0] + [i + 1 for i in fakes[1::2]]
            cuts[-1] = n  # the closing text after the last frame goes with it
        else:
            raise NotImplementedError(kind)
        return [range(video.start + a, video.start + b) for a, b in zip(cuts, cuts[1:])]


def transformers_version() -> str:
    """The installed transformers version."""
    import transformers

    return transformers.__version__


def _check_transformers() -> None:
    from packaging.version import Version

    installed = transformers_version()
    if Version(installed) < Version(MIN_TRANSFORMERS):
        raise RuntimeError(f"transformers {installed} is too old for mapflow: it needs >= "
                           f"{MIN_TRANSFORMERS} (AttentionInterface + AttentionMaskInterface, the `cache` kwarg). "
                           f"Upgrade with: pip install 'transformers=={_pinned_transformers()}'")


def _pinned_transformers() -> str:
    """The transformers version mapflow's own package metadata pins (pyproject.toml), for the error message."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        pins = [r for r in requires("mapflow") or [] if r.replace(" ", "").startswith("transformers==")]
    except PackageNotFoundError:
        pins = []
    return pins[0].split("==")[1].split(";")[0].strip() if pins else MIN_TRANSFORMERS


def family_of(model, processor) -> Family:
    """The :class:`Family` of a loaded model and its processor; raises :class:`UnsupportedModelError`."""
    name = type(model).__name__
    families = [f for f in SUPPORT.values() if f.model_class == name]
    if not families:
        raise UnsupportedModelError(f"{name} is not supported by mapflow. Supported: {', '.join(SUPPORT)}. To add "
                                    "it, add a Family to mapflow_utils.models.SUPPORT and a tiny-config test.")
    pname = type(processor).__name__
    return next((f for f in families if f.processor_class == pname), None) or \
        next((f for f in families if not f.processor_class), families[0])


def adapter_for(model, processor) -> Adapter:
    """Build the :class:`Adapter` of an already loaded model; raises :class:`UnsupportedModelError`."""
    _check_transformers()
    fam = family_of(model, processor)
    lm = getattr(model.model, fam.text_attr)
    if fam.question_style and not hasattr(processor, "question_style"):
        processor.question_style = fam.question_style  # read by prompts.build_prompt
    vid = getattr(model.config, fam.video_token_attr, None)
    if vid is None:
        vid = processor.tokenizer.convert_tokens_to_ids(processor.tokenizer.video_token)
    # Qwen-VL processors return `mm_token_type_ids` (needed for mRoPE) by default; ask for it explicitly anyway
    kwargs = {"return_mm_token_type_ids": True} if fam.positions == "mrope" else {}
    return Adapter(family=fam, model=model, processor=processor, language_model=lm, lm_head=model.lm_head,
                   num_layers=len(lm.layers), video_token_id=int(vid), processor_kwargs=kwargs)


def answer_format(model_id_or_path: str | Path) -> str:
    """The answer format a model was trained for: ``letter`` for the SmolLM2 pair (and any real checkpoint: the
    paper's format), ``content`` for the tiny from-scratch models (which never learned letters)."""
    from . import smol

    if smol.is_parts(model_id_or_path):
        return "letter"
    p = Path(str(model_id_or_path))
    return "content" if p.is_dir() and p.resolve().parent == paths.MODELS.resolve() else "letter"


def default_dtype(device: str = "cpu", device_map: Any = None) -> str:
    """The chapters' default dtype: float32 on CPU, bfloat16 on a GPU (or a model spread by ``device_map``)."""
    return "float32" if device == "cpu" and device_map is None else "bfloat16"


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

    from . import internvl_chat, pllava, smol

    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if smol.is_parts(model_id_or_path):  # a SmolLM2 VideoLLM shipped as parts: base + vision + merged LoRA
        model, processor = smol.load_parts(model_id_or_path)
        if dtype is not None:
            model.to(torch_dtype)
        model.to(device)
        model.set_attn_implementation(attn_implementation)
        return model, processor, adapter_for(model, processor)
    raw = _config_dict(model_id_or_path)
    if internvl_chat.is_internvl_chat(raw):  # the paper's Mini-InternVL: converted once to transformers' InternVL
        model_id_or_path = internvl_chat.converted(_local_folder(model_id_or_path))
    elif pllava.is_pllava(raw) or raw.get("model_type") == "llava_next":  # LLaVA-NeXT-Video-FT / llava-v1.6 base
        model, processor = pllava.load(model_id_or_path, raw, dtype=torch_dtype, device_map=device_map,
                                       attn_implementation=attn_implementation)
        if device_map is None:
            model.to(device)
        return model, processor, adapter_for(model, processor)
    config = AutoConfig.from_pretrained(model_id_or_path)
    archs = getattr(config, "architectures", None) or []
    if archs and archs[0] not in {f.model_class for f in SUPPORT.values()}:
        raise UnsupportedModelError(f"{model_id_or_path}: {archs[0]} is not supported by mapflow. Supported: "
                                    f"{', '.join(SUPPORT)}.")
    kwargs: dict[str, Any] = {"attn_implementation": attn_implementation}
    if dtype is not None:
        kwargs["dtype"] = torch_dtype
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForImageTextToText.from_pretrained(model_id_or_path, **kwargs)
    if device_map is None:
        model.to(device)
    model.eval()
    if (Path(str(model_id_or_path)) / block_processor.CONFIG_NAME).exists():
        processor = block_processor.VideoBlockProcessor.from_pretrained(model_id_or_path)
    else:
        processor = AutoProcessor.from_pretrained(model_id_or_path)
    return model, processor, adapter_for(model, processor)


def _config_dict(model_id_or_path: str | Path) -> dict:
    """The checkpoint's ``config.json`` as a dict (a local folder, or a hub id through the hub cache)."""
    import json

    from transformers.utils import cached_file

    path = Path(str(model_id_or_path)) / "config.json"
    if not path.exists():
        found = cached_file(str(model_id_or_path), "config.json")
        if found is None:
            raise FileNotFoundError(f"{model_id_or_path}: no config.json (not a model folder or hub id)")
        path = Path(found)
    return json.loads(path.read_text())


def _local_folder(model_id_or_path: str | Path) -> Path:
    """A local folder of the checkpoint: itself, or the hub snapshot (downloads follow ``HF_HUB_OFFLINE``)."""
    p = Path(str(model_id_or_path))
    if p.is_dir():
        return p
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(model_id_or_path)))
