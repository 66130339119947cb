"""Token spans of one prompt: system prompt, video (and each frame), question, non-option question, each option,
instruction, and the last position.

Spans are found from the processor's own expansion of the video placeholder and from character offsets, never
from magic token ids: the rendered prompt is tokenized as text (the placeholder stays one or a few tokens), the
processor's ``input_ids`` share its prefix and suffix, and what differs in the middle is the video. Text spans are
located by character offsets in the prompt text and mapped through that alignment.

All ranges are half-open index ranges into the processor's (expanded) ``input_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .prompts import Prompt


class SpanError(ValueError):
    """A span that cannot be located (or is not unique); the message names the text, the model and the fix."""


@dataclass(frozen=True)
class Spans:
    """Token ranges of one sample (half-open, into the expanded ``input_ids``).

    Attributes:
        length: sequence length L.
        system: the system prompt (empty range when there is none).
        video: every token the processor put in place of the video placeholder.
        frames: per frame (or temporal group) ranges partitioning ``video``.
        question: from the question text through the last option (the paper's "question", options included).
        non_option: the question sentence alone.
        options: per candidate, in candidate order: the option as written in the prompt (``(A) text``).
        answer: index of the true option in ``options``.
        instruction: the instruction suffix ("Only give the best option."; empty for open questions).
        last: the last position (where the answer is read).
    """

    length: int
    system: range
    video: range
    frames: tuple[range, ...]
    question: range
    non_option: range
    options: tuple[range, ...]
    answer: int
    instruction: range
    last: range

    #: Names :meth:`indices` understands.
    NAMES = ("system", "video", "question", "non_option", "options", "true_option", "false_options", "instruction",
             "last", "text_after_video", "after_question")

    def indices(self, name: str) -> torch.Tensor:
        """Token indices (int64, sorted) of a named span; see :data:`NAMES`."""
        if name in ("system", "video", "question", "non_option", "instruction", "last"):
            r = getattr(self, name)
            return torch.arange(r.start, r.stop)
        if name == "options":
            parts = list(self.options)
        elif name == "true_option":
            parts = [self.options[self.answer]]
        elif name == "false_options":
            parts = [r for i, r in enumerate(self.options) if i != self.answer]
        elif name == "text_after_video":
            parts = [range(self.video.stop, self.length)]
        elif name == "after_question":  # instruction, template and prefill: between the question and the last token
            parts = [range(self.question.stop, self.last.start)]
        else:
            raise KeyError(f"unknown span {name!r}; known: {', '.join(self.NAMES)}")
        if not parts:
            return torch.zeros(0, dtype=torch.long)
        return torch.cat([torch.arange(r.start, r.stop) for r in parts])


def expansion_range(unexpanded: Sequence[int], expanded: Sequence[int]) -> tuple[range, range]:
    """Align the prompt's own tokenization with the processor's expanded ids.

    ``unexpanded`` is the prompt tokenized as text (the video placeholder is one or a few tokens); ``expanded`` is
    the processor's ``input_ids``. They share a prefix and a suffix; returns ``(placeholder, video)``: the
    placeholder's range in ``unexpanded`` and the range of ``expanded`` that replaced it. When the expansion starts
    (or ends) with the placeholder token itself (``<video>`` -> ``<video>`` x n), the shared prefix (suffix) would
    swallow it; it is given to the side whose token the expansion repeats most. Raises ``ValueError`` when nothing
    was expanded.
    """
    u, e = [int(i) for i in unexpanded], [int(i) for i in expanded]
    if not u or len(e) <= len(u):
        raise ValueError(f"no expansion: {len(e)} expanded ids vs {len(u)} unexpanded ids")
    pre = 0
    while pre < len(u) and u[pre] == e[pre]:
        pre += 1
    suf = 0
    while suf < len(u) - pre and u[-1 - suf] == e[-1 - suf]:
        suf += 1
    if pre + suf == len(u):  # the placeholder was matched into the prefix or the suffix
        back_pre = e[pre - 1:len(e) - suf].count(u[pre - 1]) if pre else -1
        back_suf = e[pre:len(e) - suf + 1].count(u[len(u) - suf]) if suf else -1
        if back_pre >= back_suf:
            pre -= 1
        else:
            suf -= 1
    return range(pre, len(u) - suf), range(pre, len(e) - suf)


def _char_range(text: str, needle: str, start: int, what: str, model: str) -> tuple[int, int]:
    i = text.find(needle, start)
    if i < 0 or not needle:
        raise SpanError(f"cannot find the {what} {needle!r} in the prompt of {model}. The chat template or the "
                        "prompt format changed the text; check prompts.build_prompt for this model.")
    return i, i + len(needle)


def find_spans(prompt: Prompt, input_ids: torch.Tensor, tokenizer, frame_ranges, answer: int,
               model_name: str = "this model", system_prompt: str | None = None) -> Spans:
    """Locate every span of ``prompt`` in the processor's ``input_ids`` (``[L]`` or ``[1, L]``).

    ``frame_ranges(video_range) -> list[range]`` splits the video (the adapter's :meth:`frame_ranges`).
    ``answer`` is the index of the true option. Raises :class:`SpanError` naming the text that cannot be found or
    the tokens that are ambiguous.
    """
    ids = input_ids.reshape(-1).tolist()
    enc = tokenizer(prompt.text, add_special_tokens=False, return_offsets_mapping=True)
    text_ids, offsets = enc["input_ids"], enc["offset_mapping"]
    # the processor may add special tokens (BOS) the plain tokenization lacks: align on the shared tail
    lead = 0
    while lead < len(ids) and text_ids and ids[lead] != text_ids[0]:
        lead += 1
    try:
        placeholder, video = expansion_range(text_ids, ids[lead:])
    except ValueError:
        video = range(0, 0)
    video = range(video.start + lead, video.stop + lead)
    if len(video) == 0:
        raise SpanError(f"no video tokens found in the input ids of {model_name}: the processor did not expand the "
                        "video placeholder. Pass the frames to the processor (videos=[frames]).")
    shift = len(video) - len(placeholder)

    def to_tokens(c0: int, c1: int, what: str) -> range:
        toks = [i for i, (s, e) in enumerate(offsets) if e > c0 and s < c1 and e > s]
        if not toks:
            raise SpanError(f"the {what} (characters {c0}-{c1}) covers no token in {model_name}.")
        if any(t in placeholder for t in toks):
            raise SpanError(f"the {what} overlaps the video placeholder in {model_name}.")
        t0, t1 = toks[0], toks[-1] + 1
        if t0 >= placeholder.stop:
            t0, t1 = t0 + shift, t1 + shift
        return range(t0 + lead, t1 + lead)

    text = prompt.text
    body_start = text.find(prompt.question)
    if system_prompt:
        s0, s1 = _char_range(text, system_prompt, 0, "system prompt", model_name)
        system = to_tokens(s0, s1, "system prompt")
    else:
        system = range(0, 0)
    q0, q1 = _char_range(text, prompt.question, max(0, body_start), "question", model_name)
    non_option = to_tokens(q0, q1, "question")
    options = []
    cursor = q1
    for k, opt in enumerate(prompt.options):
        o0, o1 = _char_range(text, opt, cursor, f"option {k}", model_name)
        options.append(to_tokens(o0, o1, f"option {opt!r}"))
        cursor = o1
    for a, b in zip(options, options[1:]):
        if a.stop > b.start:
            raise SpanError(f"options share tokens in {model_name}: {prompt.options}. Put each option on its own line.")
    question = range(non_option.start, options[-1].stop if options else non_option.stop)
    if prompt.instruction:
        i0, i1 = _char_range(text, prompt.instruction, cursor, "instruction", model_name)
        instruction = to_tokens(i0, i1, "instruction")
    else:
        instruction = range(question.stop, question.stop)
    frames = tuple(frame_ranges(video))
    return Spans(length=len(ids), system=system, video=video, frames=frames, question=question,
                 non_option=non_option, options=tuple(options), answer=answer, instruction=instruction,
                 last=range(len(ids) - 1, len(ids)))


def answer_token_ids(prompt: Prompt, tokenizer, model_name: str = "this model") -> list[int]:
    """The first token of each candidate's answer as the model would write it after the prompt.

    Raises :class:`SpanError` when two candidates share their first token (the answer could not be scored).
    """
    base = tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
    firsts = []
    for ans in prompt.answers:
        full = tokenizer(prompt.text + ans, add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base or len(full) == len(base):
            # the answer merged with the prompt's last token: score the answer tokenized on its own
            full = base + tokenizer(ans, add_special_tokens=False)["input_ids"]
        firsts.append(full[len(base)])
    if len(set(firsts)) != len(firsts):
        dup = [prompt.answers[i] for i, t in enumerate(firsts) if firsts.count(t) > 1]
        raise SpanError(f"the answers {dup} start with the same token for {model_name}, so their probabilities "
                        "cannot be told apart. Use the 'letter' format, or reword the options so that their first "
                        "words differ.")
    return firsts
