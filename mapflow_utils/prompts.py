"""Prompts through the processor's chat template, in three answer formats.

* ``letter`` — the paper's evaluation format (MVBench-style system prompt; ``Question: …``, ``Options:`` with
  ``(A) text`` lines, ``Only give the best option.``; the assistant turn is prefilled with ``Best option:(`` and the
  answer is the option's letter token). A model's tokenizer may name its own prefill (:func:`letter_prefix`; the
  SmolLM2 pair ends it with a newline and ``(``).
* ``content`` — the same prompt with the options listed without letters; the assistant turn is prefilled with
  ``Best option:`` and the answer is the option's own text, scored on its first token, which must differ between
  the options. Matching an answer to its option letter is an ability that emerges only with scale; our tiny models
  answer in this format.
* ``open`` — App. C's sentence completion: no options; the assistant turn is prefilled with a sentence stem (e.g.
  ``The red square moves``) and the answer is the option's text after it, scored on its first token.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Literal, Sequence

AnswerFormat = Literal["letter", "content", "open"]
FORMATS: tuple[str, ...] = ("letter", "content", "open")

#: The MVBench system prompt the paper's evaluation uses.
SYSTEM_PROMPT = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of "
    "objects, and the action and pose of persons. Based on your observations, select the best option that "
    "accurately addresses the question."
)
INSTRUCTION = "Only give the best option."
LETTER_PREFIX = "Best option:("
#: A tokenizer may carry its model's own letter prefix as ``init_kwargs["mapflow_letter_prefix"]`` (saved in its
#: tokenizer_config.json); see :func:`letter_prefix`.
LETTER_PREFIX_KEY = "mapflow_letter_prefix"
CONTENT_PREFIX = "Best option:"

#: Sentence stems for the ``open`` format (App. C), per synthetic task; ``{color}`` is taken from the question.
OPEN_STEMS: dict[str, str] = {
    "action_antonym": "The action is to",
    "action_sequence": "First the {color} square did",
    "scene_transition": "The scene changes from",
    "moving_direction": "The {color} square moves",
    "object_count": "The number of moving {color} squares at the beginning is",
}
OPEN_DEFAULT_STEM = "The answer is"


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt.

    Attributes:
        text: the full prompt after the chat template, ending with the assistant prefill; the video appears as the
            processor's video placeholder (expanded to video tokens by the processor).
        answer_format: ``letter``, ``content`` or ``open``.
        question: the question text as it appears in the prompt.
        options: each option's text as it appears in the prompt (``(A) text`` for ``letter``; empty for ``open``).
        answers: per candidate, the text the model should continue the prompt with (``A`` / `` text``).
        instruction: the instruction suffix (empty for ``open``).
        prefix: the assistant prefill that ends ``text``.
    """

    text: str
    answer_format: str
    question: str
    options: tuple[str, ...]
    answers: tuple[str, ...]
    instruction: str
    prefix: str


def _letters(n: int) -> list[str]:
    if n > 26:
        raise ValueError(f"{n} options: the letter format supports at most 26")
    return list(string.ascii_uppercase[:n])


def open_stem(task: str, question: str) -> str:
    """The sentence stem of the ``open`` format for ``task``; ``{color}`` is the colour word of the question."""
    stem = OPEN_STEMS.get(task, OPEN_DEFAULT_STEM)
    if "{color}" in stem:
        m = re.search(r"\bthe (\w+) square", question)
        stem = stem.format(color=m.group(1) if m else "")
    return stem


#: How the question text is written: ``mapflow`` (the embedded models' training format), ``eval_mvbench`` (the
#: paper's evaluation code: a space before the newline that precedes the instruction, ``(B) b \nOnly give …``) or
#: ``videollama3`` (the paper's VideoLLaMA3 runs, in VideoLLaMA's own MVBench format: each option on its own line,
#: then :data:`VIDEOLLAMA3_INSTRUCTION`, and no assistant prefill: the answer is the letter the assistant writes
#: first). A processor says which it takes with a ``question_style`` attribute (the paper's subjects' processors do;
#: :func:`mapflow_utils.models.adapter_for` gives VideoLLaMA3's its family's).
QUESTION_STYLES = ("mapflow", "eval_mvbench", "videollama3")
#: VideoLLaMA3's multiple-choice instruction (the paper's VideoLLaMA3 twin of its evaluation code).
VIDEOLLAMA3_INSTRUCTION = "Answer with the option's letter from the given choices directly and only give the best option."


def user_text(question: str, candidates: Sequence[str], answer_format: AnswerFormat,
              style: str = "mapflow") -> tuple[str, tuple[str, ...]]:
    """The user turn's text (without the video placeholder) and the option strings inside it, in ``style``
    (:data:`QUESTION_STYLES`)."""
    if style not in QUESTION_STYLES:
        raise ValueError(f"style must be one of {QUESTION_STYLES}, got {style!r}")
    if answer_format == "letter":
        options = tuple(f"({l}) {c}" for l, c in zip(_letters(len(candidates)), candidates))
    elif answer_format == "content":
        options = tuple(candidates)
    elif answer_format == "open":
        return f"Question: {question}", ()
    else:
        raise ValueError(f"answer_format must be one of {FORMATS}, got {answer_format!r}")
    before = " \n" if style == "eval_mvbench" else "\n"
    return f"Question: {question}\nOptions:\n" + "\n".join(options) + f"{before}{instruction(style, answer_format)}", \
        options


def instruction(style: str = "mapflow", answer_format: str = "letter") -> str:
    """The instruction that ends the user turn in ``style`` (:data:`QUESTION_STYLES`); VideoLLaMA3's asks for a
    letter, so options without letters keep :data:`INSTRUCTION`."""
    return VIDEOLLAMA3_INSTRUCTION if style == "videollama3" and answer_format == "letter" else INSTRUCTION


def shared_space(tokenizer, text: str, answers: Sequence[str]) -> str:
    """The whitespace every answer starts with when the tokenizer writes it as a token of its own before *all*
    answers (SmolLM2 writes `` 2`` as `` `` + ``2``), else ``""``.

    Such a token says nothing about the answer, so it belongs to the prefix and the answer is scored on its first
    informative token. Shared words are not moved (their answers stay ambiguous: :func:`spans.answer_token_ids`
    raises).
    """
    if tokenizer is None or not answers or not all(a[:1].isspace() for a in answers):
        return ""
    base = tokenizer(text, add_special_tokens=False)["input_ids"]
    firsts = set()
    for a in answers:
        full = tokenizer(text + a, add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base or len(full) < len(base) + 2:
            return ""
        firsts.add(full[len(base)])
    if len(firsts) != 1:
        return ""
    space = tokenizer.decode([firsts.pop()])
    return space if space and space.isspace() and all(a.startswith(space) for a in answers) else ""


def letter_prefix(processor) -> str:
    """The assistant prefill of the letter format: the paper's ``Best option:(`` unless the model's tokenizer names
    its own (the SmolLM2 pair, whose BPE merges ``:(`` into an emoticon token, uses ``Best option:`` + newline +
    ``(``, which ends with the same ``(`` token that precedes every option's letter); none in the ``videollama3``
    style (the assistant's first token is the letter)."""
    if getattr(processor, "question_style", "mapflow") == "videollama3":
        return ""
    tok = getattr(processor, "tokenizer", None)
    return (getattr(tok, "init_kwargs", None) or {}).get(LETTER_PREFIX_KEY, LETTER_PREFIX)


def build_prompt(processor, question: str, candidates: Sequence[str], answer_format: AnswerFormat = "letter",
                 task: str = "", system_prompt: str | None = SYSTEM_PROMPT, media: str | None = "video") -> Prompt:
    """Render the prompt with ``processor.apply_chat_template`` (the model's real chat template).

    ``task`` picks the sentence stem of the ``open`` format. ``system_prompt=None`` leaves the system turn out.
    ``media=None`` leaves the video placeholder out (text-only questions, as in the SmolLM2 MCQ warm-up stage).
    """
    style = getattr(processor, "question_style", "mapflow")
    text, options = user_text(question, candidates, answer_format, style)
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    content = ([{"type": media}] if media else []) + [{"type": "text", "text": text}]
    messages.append({"role": "user", "content": content})
    rendered = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if answer_format == "letter":
        prefix, answers = letter_prefix(processor), tuple(_letters(len(candidates)))
    elif answer_format == "content":
        prefix, answers = CONTENT_PREFIX, tuple(" " + c for c in candidates)
    else:
        prefix, answers = open_stem(task, question), tuple(" " + c for c in candidates)
    if answer_format != "letter":
        space = shared_space(getattr(processor, "tokenizer", None), rendered + prefix, answers)
        prefix, answers = prefix + space, tuple(a[len(space):] for a in answers)
    return Prompt(text=rendered + prefix, answer_format=answer_format, question=question, options=options,
                  answers=answers, instruction=instruction(style, answer_format) if answer_format != "open" else "", prefix=prefix)
