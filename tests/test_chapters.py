"""Every chapter runs end to end through `mapflow run` (papermill on the MyST source) with tiny parameters, in a
temporary cache, and a chapter that states claims writes them as a claims file the verdicts page reads. This is the
fast tier of `make test`; `make test-book` checks the executed book against its committed results."""

import json

import pytest

from mapflow_utils import paths, rules, runner

#: Tiny parameters, given to a chapter only where it declares them: the tiny pair instead of the book's 30-layer
#: subject (the book tier, `make test-book`, runs the chapters on their defaults from the committed cache).
TINY = {"n_per_task": 2, "tasks": ["action_antonym", "object_count"],
        "families": ["LlavaNextVideoForConditionalGeneration"], "n_random": 1, "long_frames": [8],
        "video_model": str(paths.VIDEO_MODEL), "image_model": str(paths.IMAGE_MODEL),
        "pairs": {name: [str(v), str(i)] for name, (v, i) in paths.EMBEDDED_PAIRS.items()}}


#: Chapters that draw curves, bars or maps (the others show tables, frames or nothing).
FIGURE_CHAPTERS = {"s3_2_temporal", "s3_3_integration", "s3_4_answer", "s3_5_pathways", "appab_scale", "appc_open",
                   "appd1_long", "models", "beyond_map"}


def test_every_chapter_is_a_myst_notebook_with_parameters():
    assert set(runner.chapters()) >= {"data", "models", "s3_2_temporal", "s3_3_integration", "s3_4_answer",
                                   "s3_5_pathways", "appab_scale", "appc_open", "appd1_long", "verdicts"}
    assert runner.chapters()[-1] == "verdicts"  # it reads the others' claims
    assert not list(paths.NOTEBOOKS.glob("*.ipynb")), "chapter sources are .md; executed notebooks go to book/"
    for ch in runner.chapters():
        assert set(runner.chapter_parameters(ch)), f"{ch} has no parameters cell"


def test_every_shared_parameter_is_the_one_definition():
    """A shared parameter (mapflow_utils.parameters.SHARED) is written in every chapter exactly as its definition
    renders it for that chapter: same type, default and meaning; a chapter's own default is declared there."""
    from mapflow_utils.parameters import BY_NAME

    wrong = [f"{ch}: {line!r} -> {BY_NAME[name].line(ch)!r}" for ch in runner.chapters()
             for name, line in runner.parameter_lines(ch).items()
             if name in BY_NAME and line != BY_NAME[name].line(ch)]
    assert not wrong, "parameters cells differ from mapflow_utils/parameters.py:\n" + "\n".join(wrong)
    used = {name for ch in runner.chapters() for name in runner.parameter_lines(ch)}
    assert set(BY_NAME) <= used, f"defined but taken by no chapter: {set(BY_NAME) - used}"
    for p in BY_NAME.values():  # each declared default belongs to a chapter that takes the parameter
        for ch in p.defaults:
            assert p.name in runner.parameter_lines(ch), f"{p.name}: a default for {ch}, which does not take it"


def test_setup_takes_the_shared_parameters_by_keyword():
    import inspect

    from mapflow_utils import chapter
    from mapflow_utils.parameters import BY_NAME

    sig = inspect.signature(chapter.setup)
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in sig.parameters.values())
    for name, p in sig.parameters.items():
        if p.kind == p.KEYWORD_ONLY and name in BY_NAME and name not in ("tasks", "n_per_task"):
            assert p.default == BY_NAME[name].default, f"setup's default for {name} differs from its definition"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("chapters")
    done = {}
    for ch in runner.chapters():
        names = set(runner.chapter_parameters(ch))
        params = {k: v for k, v in TINY.items() if k in names}
        if "results_dir" in names:
            params["results_dir"] = str(out / "cache")
        if "out_dir" in names:
            params["out_dir"] = str(out / "your-model")
        if "book_dir" in names:
            params["book_dir"] = str(out)
        try:
            done[ch] = runner.run_chapter(ch, params, out=out, progress=False)
        except Exception as e:  # noqa: BLE001 -- report every chapter, not only the first failure
            done[ch] = e
    return out, done


@pytest.mark.parametrize("chapter", runner.chapters())
def test_chapter_runs_with_tiny_parameters(runs, chapter):
    out, done = runs
    assert not isinstance(done[chapter], Exception), f"{chapter} failed: {done[chapter]}"
    nb = json.loads(done[chapter].read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    results = json.loads((out / f"{chapter}.results.json").read_text())  # the run, for machines
    if "n_per_task" in runner.chapter_parameters(chapter):
        assert results["parameters"]["n_per_task"] == 2
    prov = results["provenance"]
    assert prov["commit"] and prov["torch"] and prov["run_seconds"] > 0, "every page says what produced it"
    figures = out / f"{chapter}.figures.json"  # the data behind the page's figures, linked under each
    drawn = json.loads(figures.read_text())["figures"]
    if chapter in FIGURE_CHAPTERS:
        assert drawn and all(d["title"] and d["data"] for d in drawn), f"{chapter}: no figure data"
    if "claims_file" in runner.chapter_parameters(chapter):
        claims = json.loads((out / f"{chapter}.claims.json").read_text())
        assert claims and all(c["verdict"] in rules.VERDICTS for c in claims)
        assert all(c["rule"] and c["paper"] and c["ours"] for c in claims)


def test_verdicts_page_counts_the_claims_files(runs):
    out, done = runs
    n = sum(len(json.loads(f.read_text())) for f in out.glob("*.claims.json"))
    glued = runner.read_glue(done["verdicts"])
    assert n > 10 and glued["n_claims_total"] == str(n)
