"""Every chapter that takes a model, on a tiny random-weight copy of every supported class, with minimal
parameters: it runs end to end, or stops with one of mapflow's clear messages (never a traceback of ours).

Random weights answer at chance, so a chapter may find no baseline-correct question (``NoCorrectAnswers``, which
names the parameter to raise); the models chapter describes the embedded models only (``NotApplicable``); the tiny
classes' small tokenizers cannot tell open-ended answers apart by their first token (``SpanError``, App. C). `make
test-matrix` runs this tier (two processes); CI runs it with the README's test command.
"""

import json

import pytest

from mapflow_utils import paths, runner
from mapflow_utils.models.tiny_vlms import LAYOUTS, save_tiny

#: Chapters that take a model (data and verdicts take none; your_model runs classes itself).
CHAPTERS = [c for c in runner.chapters() if c not in ("data", "verdicts", "your_model")]
#: mapflow's clear stops, each with the word its message must contain (the parameter or the fix it names).
CLEAR = {"NoCorrectAnswers": "n_per_task", "NotApplicable": "embedded", "SpanError": "first words differ"}
#: Random-weight models prefer one letter: these tasks and counts give every class at least one baseline-correct
#: question, so the sweeps really run (with 2 Action Antonym/Object Count questions three classes had none).
PARAMS = {"answer_format": "letter", "n_per_task": 4, "window": 1, "tasks": ["moving_direction", "object_count"],
          "n_random": 1}

#: Seed 0's random InternVL-Chat prefers (D) on every question, and no question above has D for its answer: seed 1's
#: answers some of them correctly, so its sweeps run too (the weights stay random; only coverage depends on them).
SEEDS = {"InternVLChatV1_5": 1}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes")
    return {name: save_tiny(name, root / name, seed=SEEDS.get(name, 0)) for name in LAYOUTS}


@pytest.fixture(scope="module")
def kernels():
    """One kept kernel per class (runner.Kernel: each run starts from an empty namespace in its own folder), so a
    class's chapters share one kernel start and one set of imports; the chapters' own tests (tests/test_chapters.py)
    run each in a fresh kernel. The previous class's kernel is shut down when the next class starts."""
    kept: dict[str, runner.Kernel] = {}

    def get(family: str) -> runner.Kernel:
        for other in [f for f in kept if f != family]:
            kept.pop(other).close()
        return kept.setdefault(family, runner.Kernel())

    yield get
    for k in kept.values():
        k.close()


#: Every supported class, and the paper's subjects in their published layouts (PLLaVA-style Video-FT, its llava-v1.6
#: base, InternVL-Chat V1.5 converted on load). Chapters vary fastest, so a class's runs are consecutive.
@pytest.mark.parametrize("chapter", CHAPTERS)
@pytest.mark.parametrize("family", list(LAYOUTS))
def test_chapter_on_class(chapter, family, tiny_dirs, kernels, tmp_path):
    import papermill

    model = str(tiny_dirs[family])
    names = set(runner.chapter_parameters(chapter))
    params = {k: v for k, v in PARAMS.items() if k in names}
    if chapter == "appc_open":
        params.pop("answer_format")  # its own: open-ended
    if "pairs" in names:
        params["pairs"] = {"tiny": [model, model]}
    else:
        params.update(video_model=model, image_model=model)
    if "results_dir" in names:
        params["results_dir"] = str(tmp_path / "cache")
    if "check_model" in names:  # its check of the fixed embedded model is the same on every class: test_chapters
        params["check_model"] = ""
    try:
        out = runner.run_chapter(chapter, params, out=tmp_path, progress=False, kernel=kernels(family))
    except papermill.PapermillExecutionError as e:
        assert e.ename in CLEAR, f"{chapter} on {family}: {e.ename}: {e.evalue}"
        assert CLEAR[e.ename] in e.evalue, e.evalue
        print(f"MATRIX {chapter} {family} clear-stop {e.ename}")
        return
    nb = json.loads(out.read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    print(f"MATRIX {chapter} {family} ran")
