"""Spans found on the real chat template decode back to their text; bad prompts fail with clear errors."""

import dataclasses

import pytest

from mapflow_utils import paths
from mapflow_utils import prompts as P
from mapflow_utils.data import PAPER_TASKS, load_tvbench
from mapflow_utils.spans import SpanError, answer_token_ids, expansion_range, find_spans
from tiny_models import adapter, tiny_llava
from mapflow_utils.models.tiny_vlms import FAMILIES


def _spans(ad, sample, fmt):
    prompt = P.build_prompt(ad.processor, sample.question, sample.candidates, fmt, task=sample.task)
    inputs = ad.inputs(sample.frames(), prompt.text)
    ids = inputs["input_ids"]
    sp = find_spans(prompt, ids, ad.tokenizer, lambda v: ad.frame_ranges(ids[0], v, 8), sample.answer_index,
                    system_prompt=P.SYSTEM_PROMPT)
    return prompt, ids[0], sp


def _decode(ad, ids, r):
    return ad.tokenizer.decode(ids[r.start:r.stop]).strip()


@pytest.mark.parametrize("fmt", ["letter", "content", "open"])
@pytest.mark.parametrize("task", PAPER_TASKS)
def test_spans_decode_back(task, fmt):
    ad = tiny_llava()
    sample = load_tvbench(paths.SYNTHETIC, tasks=[task])[3]
    prompt, ids, sp = _spans(ad, sample, fmt)
    assert _decode(ad, ids, sp.system) == P.SYSTEM_PROMPT
    assert _decode(ad, ids, sp.non_option) == sample.question
    assert all(int(t) == ad.video_token_id for t in ids[sp.video.start:sp.video.stop])
    assert sp.video.start > sp.system.stop and sp.non_option.start >= sp.video.stop
    assert [f.start for f in sp.frames][0] == sp.video.start and sp.frames[-1].stop == sp.video.stop
    if fmt == "open":
        assert sp.options == () and len(sp.instruction) == 0
    else:
        assert [_decode(ad, ids, r) for r in sp.options] == list(prompt.options)
        assert _decode(ad, ids, sp.instruction) == P.INSTRUCTION
        assert sp.question.start == sp.non_option.start and sp.question.stop == sp.options[-1].stop
        assert sp.indices("true_option").tolist() == list(sp.options[sample.answer_index])
    assert sp.last == range(len(ids) - 1, len(ids))
    assert prompt.text.endswith(ad.tokenizer.decode(ids[-1:]))


def test_answer_tokens_are_distinct_first_tokens():
    ad = tiny_llava()
    s = load_tvbench(paths.SYNTHETIC, tasks=["scene_transition"])[0]
    for fmt in ("letter", "content"):
        prompt = P.build_prompt(ad.processor, s.question, s.candidates, fmt)
        ids = answer_token_ids(prompt, ad.tokenizer)
        assert len(set(ids)) == len(s.candidates)
        decoded = [ad.tokenizer.decode([i]).strip() for i in ids]
        if fmt == "letter":
            assert decoded == ["A", "B"]
        else:
            assert decoded == [c.split()[0] for c in s.candidates]


def test_ambiguous_first_tokens_raise():
    ad = tiny_llava()
    prompt = P.build_prompt(ad.processor, "Which way?", ["up and left", "up and right"], "content")
    with pytest.raises(SpanError, match=r"start with the same token.*letter"):
        answer_token_ids(prompt, ad.tokenizer, "tiny")


def test_text_missing_from_prompt_raises():
    ad = tiny_llava()
    s = load_tvbench(paths.SYNTHETIC)[0]
    prompt, ids, _ = _spans(ad, s, "letter")
    broken = dataclasses.replace(prompt, options=("(Z) not in the prompt",) + prompt.options[1:])
    with pytest.raises(SpanError, match=r"cannot find the option 0 '\(Z\) not in the prompt' in the prompt of tiny"):
        find_spans(broken, ids[None], ad.tokenizer, lambda v: [v], 0, model_name="tiny")


def test_missing_video_tokens_raise():
    ad = tiny_llava()
    s = load_tvbench(paths.SYNTHETIC)[0]
    prompt = P.build_prompt(ad.processor, s.question, s.candidates, "letter")
    text_only = ad.tokenizer(prompt.text, return_tensors="pt")["input_ids"]
    with pytest.raises(SpanError, match="no video tokens"):
        find_spans(prompt, text_only, ad.tokenizer, lambda v: [v], 0, model_name="tiny")


def test_expansion_range():
    assert expansion_range([1, 2, 9, 3], [1, 2, 9, 9, 9, 3]) == (range(2, 3), range(2, 5))
    assert expansion_range([1, 9, 3], [1, 7, 7, 7, 3]) == (range(1, 2), range(1, 4))
    assert expansion_range([5, 9, 6], [5, 8, 9, 9, 8, 6]) == (range(1, 2), range(1, 5))


@pytest.mark.parametrize("family", FAMILIES)
def test_spans_decode_back_on_all_supported_classes(family):
    """The classes' real processors and their chat templates (letter format, as real checkpoints use); VideoLLaMA3
    asks in its own words."""
    ad = adapter(family)
    s = load_tvbench(paths.SYNTHETIC, tasks=["action_sequence"])[1]
    prompt = P.build_prompt(ad.processor, s.question, s.candidates, "letter", task=s.task)
    inputs = ad.inputs(s.frames(), prompt.text)
    ids = inputs["input_ids"]
    sp = find_spans(prompt, ids, ad.tokenizer, lambda v: ad.frame_ranges(ids[0], v, 8), s.answer_index,
                    model_name=family, system_prompt=P.SYSTEM_PROMPT)
    ids = ids[0]
    assert _decode(ad, ids, sp.system) == P.SYSTEM_PROMPT
    assert _decode(ad, ids, sp.non_option) == s.question
    assert [_decode(ad, ids, r) for r in sp.options] == list(prompt.options)
    assert _decode(ad, ids, sp.instruction) == (P.VIDEOLLAMA3_INSTRUCTION if family.startswith("VideoLlama3")
                                                 else P.INSTRUCTION)
    n_video = sum(int(t) == ad.video_token_id for t in ids)
    assert n_video > 0 and all(int(t) != ad.video_token_id for t in ids[: sp.video.start])
    assert all(int(t) != ad.video_token_id for t in ids[sp.video.stop:])
    assert sp.frames[0].start == sp.video.start and sp.frames[-1].stop == sp.video.stop
    assert all(a.stop == b.start for a, b in zip(sp.frames, sp.frames[1:]))
    assert prompt.text.endswith(ad.tokenizer.decode(ids[-1:]))
