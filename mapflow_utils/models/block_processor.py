"""One placeholder, one block of video tokens: the processor of the paper's own subjects.

The paper's LLaVA-NeXT-Video-FT (PLLaVA-style) and Mini-InternVL(-Video-FT) checkpoints put the whole video where one
placeholder token stands in the prompt: ``<image>`` becomes ``t·h·w`` copies of itself (PLLaVA: the pooled grid,
8·12·12 = 1,152), InternVL-Chat's ``<IMG_CONTEXT>`` (inside ``<img>…</img>``) becomes ``T·n`` copies (8·256 = 2,048),
frame after frame. No per-frame text, so every frame holds the same number of tokens (the ``equal`` layout of
:class:`mapflow_utils.models.Family`).

The prompt is the paper's conversation ``eval_mvbench`` (its PLLaVA evaluation code): the MVBench system prompt, the
video as a user turn of its own, the question as the next user turn, then the assistant role, which
:func:`mapflow_utils.prompts.build_prompt` prefills with ``Best option:(``. :data:`EVAL_MVBENCH` writes it with
Vicuna's ``USER: ``/``ASSISTANT:`` roles (separator ``" "``), :data:`EVAL_MVBENCH_PHI3` with Phi-3's role names
and the same separators (the paper's ``eval_mvbench_phi3``). The question text is the paper's too
(:data:`mapflow_utils.prompts.QUESTION_STYLES` ``eval_mvbench``: a space before the newline that precedes "Only
give the best option.").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _lit(text: str) -> str:
    """``text`` as a jinja expression (transformers' ``trim_blocks`` cannot eat its newlines)."""
    return "{{ " + json.dumps(text) + " }}"


def _template(system: tuple[str, str], user: tuple[str, str], assistant: str, media: str) -> str:
    """A chat template: ``system`` = (before, after) the system text, ``user`` = (before, after) each user turn,
    ``assistant`` the generation prompt, ``media`` what the video/image part of a message renders as (its own turn)."""
    return (
        "{% for message in messages %}{% if message['role'] == 'system' %}" + _lit(system[0])
        + "{% for c in message['content'] if c['type'] == 'text' %}{{ c['text'] }}{% endfor %}" + _lit(system[1])
        + "{% else %}{% for c in message['content'] %}"
        "{% if c['type'] in ('video', 'image') %}" + _lit(user[0] + media + user[1])
        + "{% elif c['type'] == 'text' %}" + _lit(user[0]) + "{{ c['text'] }}" + _lit(user[1]) + "{% endif %}"
        "{% endfor %}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}" + _lit(assistant) + "{% endif %}"
    )


#: ``eval_mvbench`` with Vicuna roles (LLaVA-NeXT-Video-FT and the llava-v1.6 bases): system text, "\n", the
#: separator " ", then ``USER: <image>\n`` + " ", ``USER: {question…}`` + " ", ``ASSISTANT:``.
EVAL_MVBENCH = _template(("", "\n "), ("USER: ", " "), "ASSISTANT:", "<image>\n")
#: ``eval_mvbench_phi3`` (Mini-InternVL): the same conversation with Phi-3's role names and the same separators,
#: no ``<|system|>`` and no ``<|end|>`` (``SYSTEM\n <|user|>\n<img><IMG_CONTEXT></img>\n <|user|>\n… <|assistant|>\n``);
#: the video is ``<img><IMG_CONTEXT></img>`` (one context token in the template; the processor repeats it to T·n).
EVAL_MVBENCH_PHI3 = _template(("", "\n "), ("<|user|>\n", " "), "<|assistant|>\n", "<img><IMG_CONTEXT></img>\n")

#: The file a converted checkpoint carries to say it is read by this processor (and with which numbers).
CONFIG_NAME = "mapflow_processor.json"


#: How a frame becomes the model's square input: ``squash`` resizes it straight to S×S (the image processor's own
#: resize); ``short_side_crop`` is InternVL-Chat's video path in the paper's evaluation code (torchvision's
#: ``Resize(S, BICUBIC)`` on the short side, then ``CenterCrop(S)``), done here on the PIL image before the image
#: processor, which then only rescales and normalises.
FRAME_TRANSFORMS = ("squash", "short_side_crop")


def short_side_crop(frame: np.ndarray, size: int) -> np.ndarray:
    """``frame`` uint8 ``[H, W, 3]`` → ``[size, size, 3]``: the short side resized to ``size`` (bicubic, PIL; the
    long side ``int(size · long / short)`` as torchvision computes it), then the centre ``size × size`` (top-left at
    ``int(round((H' − size) / 2))``, as torchvision's ``CenterCrop``)."""
    from PIL import Image

    h, w = frame.shape[:2]
    if h <= w:
        new = (int(size * w / h), size)
    else:
        new = (size, int(size * h / w))
    img = Image.fromarray(frame).convert("RGB")
    if (w, h) != new:
        img = img.resize(new, Image.BICUBIC)
    top, left = int(round((new[1] - size) / 2.0)), int(round((new[0] - size) / 2.0))
    return np.array(img.crop((left, top, left + size, top + size)))  # writable: torch warns on read-only arrays


class VideoBlockProcessor:
    """Frames → ``pixel_values`` ``[T, 3, S, S]``; the one ``video_token`` in the text → ``n`` copies of it.

    ``n`` = ``pooled_frames · tokens_per_frame`` when the model pools time to a fixed length (PLLaVA: 8 · 144), else
    ``T · tokens_per_frame`` (InternVL-Chat: 256 per frame). ``num_frames``, when set, is the number of frames the
    model takes per video (PLLaVA's pooling reads it from its config); other counts stop with a clear message.
    """

    def __init__(self, image_processor, tokenizer, video_token: str, tokens_per_frame: int,
                 pooled_frames: int | None = None, num_frames: int | None = None, chat_template: str = EVAL_MVBENCH,
                 name: str = "this model", frame_transform: str = "squash", question_style: str = "eval_mvbench"):
        if frame_transform not in FRAME_TRANSFORMS:
            raise ValueError(f"frame_transform must be one of {FRAME_TRANSFORMS}, got {frame_transform!r}")
        self.image_processor, self.tokenizer = image_processor, tokenizer
        self.frame_transform = frame_transform
        self.question_style = question_style  # read by prompts.build_prompt
        self.video_token, self.tokens_per_frame = video_token, int(tokens_per_frame)
        self.pooled_frames, self.num_frames, self.name = pooled_frames, num_frames, name
        self.chat_template = chat_template
        self.video_token_id = tokenizer.convert_tokens_to_ids(video_token)
        if self.video_token_id is None or self.video_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer of {name} has no {video_token!r} token; it is not a checkpoint of this "
                             "layout (see mapflow_utils.models.SUPPORT)")

    @property
    def size(self) -> int:
        """The square side S of the model's input frames (the image processor's target size)."""
        size = self.image_processor.size  # a dict, or transformers' SizeDict (attributes)
        if isinstance(size, (int, float)):
            return int(size)
        get = size.get if isinstance(size, dict) else (lambda k: getattr(size, k, None))
        return int(get("height") or get("shortest_edge"))

    def num_video_tokens(self, num_frames: int) -> int:
        """Tokens one video of ``num_frames`` frames takes in the input ids."""
        return (self.pooled_frames or num_frames) * self.tokens_per_frame

    def apply_chat_template(self, messages, add_generation_prompt: bool = True, tokenize: bool = False, **kwargs):
        return self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, tokenize=tokenize,
                                                  add_generation_prompt=add_generation_prompt, **kwargs)

    def __call__(self, text: str | list[str], videos: list[np.ndarray] | None = None, return_tensors: str = "pt",
                 **kwargs) -> Any:
        """``text`` with one ``video_token`` per video; ``videos`` uint8 ``[T, H, W, 3]`` each → ``input_ids``,
        ``attention_mask`` ``[B, L]`` and ``pixel_values`` ``[B·T, 3, S, S]`` (frames of all videos, in order)."""
        from transformers import BatchFeature

        texts = [text] if isinstance(text, str) else list(text)
        videos = list(videos or [])
        placeholders = sum(t.count(self.video_token) for t in texts)
        if placeholders != len(videos):
            raise ValueError(f"{len(videos)} video(s) for {placeholders} "
                             f"{self.video_token!r} placeholder(s) in the text of {self.name}: render the prompt "
                             "with the processor's chat template (prompts.build_prompt)")
        frames = []
        for video in videos:
            if self.num_frames is not None and len(video) != self.num_frames:
                raise ValueError(f"{self.name} takes num_frames={self.num_frames} frames per video (its config); "
                                 f"got {len(video)}: set num_frames={self.num_frames}")
            frames.extend(list(video))
        expanded = []
        counts = iter(self.num_video_tokens(len(v)) for v in videos)
        for t in texts:
            parts = t.split(self.video_token)
            expanded.append(parts[0] + "".join(self.video_token * next(counts) + p for p in parts[1:]))
        data = dict(self.tokenizer(expanded, return_tensors=return_tensors, **kwargs))
        if frames:
            if self.frame_transform == "short_side_crop":
                frames = [short_side_crop(np.asarray(f), self.size) for f in frames]
            data["pixel_values"] = self.image_processor(images=frames, return_tensors=return_tensors)["pixel_values"]
        return BatchFeature(data=data)

    # ------------------------------------------------------------------ saved with a converted checkpoint
    def save_pretrained(self, out: str | Path) -> None:
        """Tokenizer, image processor and :data:`CONFIG_NAME` (the numbers and the chat template)."""
        out = Path(out)
        self.tokenizer.save_pretrained(out)
        self.image_processor.save_pretrained(out)
        (out / CONFIG_NAME).write_text(json.dumps(dict(
            video_token=self.video_token, tokens_per_frame=self.tokens_per_frame, pooled_frames=self.pooled_frames,
            num_frames=self.num_frames, chat_template=self.chat_template, frame_transform=self.frame_transform,
            question_style=self.question_style), indent=1))

    def to_json_string(self) -> str:
        """Everything that shapes the inputs (the result cache's key reads it: never an object address)."""
        return json.dumps(dict(
            video_token=self.video_token, tokens_per_frame=self.tokens_per_frame, pooled_frames=self.pooled_frames,
            num_frames=self.num_frames, chat_template=self.chat_template, frame_transform=self.frame_transform,
            question_style=self.question_style, image_processor=self.image_processor.to_json_string()),
            sort_keys=True)

    @classmethod
    def from_pretrained(cls, path: str | Path, name: str | None = None) -> "VideoBlockProcessor":
        from transformers import AutoImageProcessor, AutoTokenizer

        spec = json.loads((Path(path) / CONFIG_NAME).read_text())
        return cls(AutoImageProcessor.from_pretrained(path), AutoTokenizer.from_pretrained(path),
                   name=name or str(path), **spec)
