"""Tiny models shared by the tests, built once per session: our embedded architecture at test size and the
supported classes (random weights, real processors). ``conftest.py`` exposes them as fixtures; parametrized tests
import :data:`ALL` from here for collection."""

import functools

from mapflow_utils import paths
from mapflow_utils.models import tiny
from mapflow_utils.data import load_tvbench
from mapflow_utils.evaluate import prepare
from mapflow_utils.models import adapter_for
from mapflow_utils.models.tiny_vlms import FAMILIES, build_tiny

TINY = tiny.TinyConfig(layers=4, hidden=64, intermediate=128, vision_layers=1, vision_hidden=32)
OURS = "tiny LlavaNextVideo (the embedded architecture)"
ALL = (OURS,) + FAMILIES  # our own tiny architecture plus every supported class


@functools.lru_cache(maxsize=None)
def tiny_llava():
    model, processor = tiny.build(TINY, seed=0)
    return adapter_for(model, processor)


@functools.lru_cache(maxsize=None)
def adapter(family: str = OURS):
    return tiny_llava() if family == OURS else adapter_for(*build_tiny(family))


@functools.lru_cache(maxsize=None)
def prepared(index: int = 320, answer_format: str | None = None, family: str = OURS):
    """A prepared sample; the classes' tiny tokenizers are too small for content answers: letter format."""
    ad = adapter(family)
    fmt = answer_format or ("content" if family == OURS else "letter")
    return ad, prepare(ad, load_tvbench(paths.SYNTHETIC)[index], fmt)
