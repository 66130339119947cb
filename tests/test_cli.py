"""The mapflow command: data synthesis and papermill-backed chapter runs."""

import json

import pytest

from mapflow_utils import cli, paths, runner, site
from mapflow_utils.data import load_tvbench


def test_value_parsing_like_papermill():
    assert cli.parse_value("3") == 3 and cli.parse_value("0.5") == 0.5 and cli.parse_value("true") is True
    assert cli.parse_value("null") is None and cli.parse_value("[a, b]") == ["a", "b"]
    assert cli.parse_value("data/synthetic") == "data/synthetic"


def test_data_synth_cli(tmp_path, capsys):
    assert cli.main(["data", "synth", "--out", str(tmp_path), "--n-per-task", "2", "--seed", "3",
                     "--tasks", "object_count", "scene_transition"]) == 0
    ds = load_tvbench(tmp_path, tasks=["object_count", "scene_transition"])
    assert len(ds) == 4
    meta = json.loads((tmp_path / "synth.json").read_text())
    from mapflow_utils.synthetic import SynthConfig

    assert meta["seed"] == 3 and meta["config"]["n_frames"] == SynthConfig().n_frames


def test_run_chapter_with_parameters(tmp_path):
    """`mapflow run data -p ...` executes the chapter with papermill and injects the parameters."""
    synth = tmp_path / "synth"
    cli.main(["data", "synth", "--out", str(synth), "--n-per-task", "3", "--seed", "2",
              "--tasks", "moving_direction"])
    out = tmp_path / "out"
    cli.main(["run", "data", "-p", "data_dir", str(synth), "-p", "tasks", "[moving_direction]",
              "-p", "n_per_task", "2", "--out", str(out)])
    nb = json.loads((out / "data.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"]["n_per_task"] == 2
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []))
    assert "moving_direction: 2" in text
    assert not any("execution" in c["metadata"] for c in nb["cells"])  # timings stripped


def test_relative_paths_in_parameters_resolve_from_the_callers_directory(tmp_path, monkeypatch):
    (tmp_path / "models" / "m").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    got = runner.absolute_parameters({"a": ["models/m", "no/such/path", 3], "b": "models/m"})
    assert got == {"a": [str(tmp_path / "models" / "m"), "no/such/path", 3], "b": str(tmp_path / "models" / "m")}


def test_model_dir_finds_repo_relative_folders_from_anywhere(tmp_path, monkeypatch):
    from mapflow_utils import paths

    monkeypatch.chdir(tmp_path)
    assert paths.model_dir("data/models/tiny-imagellm", paths.VIDEO_MODEL) == str(paths.IMAGE_MODEL)
    assert paths.model_dir("org/some-hub-id", paths.VIDEO_MODEL) == "org/some-hub-id"


def test_run_on_classes_keeps_going_past_a_failing_class(tmp_path):
    import pytest

    rows = runner.run_on_classes("data", ["NoSuchForConditionalGeneration", "LlavaNextVideoForConditionalGeneration"],
                              tmp_path, {"tasks": ["object_count"], "n_per_task": 1})
    assert "KeyError" in rows[0]["error"] and "NoSuch" in rows[0]["error"]
    assert "error" not in rows[1] and rows[1]["glue"]["n_questions"] == "1"
    assert (tmp_path / "LlavaNextVideoForConditionalGeneration" / "model" / "model.safetensors").exists()
    assert "mapflow tiny-vlm LlavaNextVideoForConditionalGeneration" in rows[1]["command"]
    with pytest.raises(ValueError, match="no chapter"):
        runner.run_on_classes("no_such_chapter", [], tmp_path)


def test_run_reads_parameters_from_a_yaml_file_and_p_overrides(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("tasks: [object_count]\nn_per_task: 3\nseed: 5\n")
    out = tmp_path / "out"
    cli.main(["run", "data", "-f", str(params), "-p", "n_per_task", "1", "--out", str(out)])
    got = json.loads((out / "data.ipynb").read_text())["metadata"]["papermill"]["parameters"]
    assert got["tasks"] == ["object_count"] and got["seed"] == 5 and got["n_per_task"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    import pytest

    with pytest.raises(SystemExit, match="YAML mapping"):
        cli.main(["run", "data", "-f", str(bad)])


def test_two_shards_then_the_merge_equal_one_run(tmp_path):
    """Shards 0/2 and 1/2 fill one cache; the unsharded run then computes nothing and states the same claims as a
    single run into another cache. On the embedded tiny pair (the cache logic does not depend on the model; the
    book's 30-layer subject made this one test 4.5 minutes), the four runs in one kept kernel."""
    base = {"tasks": ["action_antonym", "object_count"], "n_per_task": 2, "window": 1,
            "video_model": str(paths.VIDEO_MODEL), "image_model": str(paths.IMAGE_MODEL)}
    shared = tmp_path / "shared"
    with runner.Kernel() as kernel:
        for i in range(2):
            runner.run_chapter("s3_2_temporal", {**base, "results_dir": str(shared), "shard": f"{i}/2"},
                               out=tmp_path / f"shard-{i}", progress=False, kernel=kernel)
        cached = sorted(p.name for p in shared.rglob("*.npz"))
        assert cached
        merged = runner.run_chapter("s3_2_temporal", {**base, "results_dir": str(shared)}, out=tmp_path / "merged",
                                    progress=False, kernel=kernel)
        assert sorted(p.name for p in shared.rglob("*.npz")) == cached, "the merge run recomputed something"
        single = runner.run_chapter("s3_2_temporal", {**base, "results_dir": str(tmp_path / "single")},
                                    out=tmp_path / "single-out", progress=False, kernel=kernel)
    claims = lambda nb: json.loads(nb.with_name("s3_2_temporal.claims.json").read_text())  # noqa: E731
    assert claims(merged) == claims(single)


def test_shard_parsing_names_the_fix(monkeypatch):
    import pytest

    from mapflow_utils.data import DataError, parse_shard

    assert parse_shard("1/4") == (1, 4)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert parse_shard("slurm") == (2, 3)
    monkeypatch.delenv("SLURM_ARRAY_TASK_COUNT")
    with pytest.raises(DataError, match="sbatch"):
        parse_shard("slurm")
    for bad in ("4/4", "a/b", "3"):
        with pytest.raises(DataError, match="shard"):
            parse_shard(bad)


def test_book_refuses_jupyter_book_2(monkeypatch):
    import importlib.metadata as md

    assert site.require_jupyter_book_1().startswith("1.")
    monkeypatch.setattr(md, "version", lambda name: "2.0.1" if name == "jupyter-book" else "0")
    with pytest.raises(site.BookError, match="Jupyter Book 1"):
        site.require_jupyter_book_1()


def test_clean_folds_the_injected_parameters_and_drops_timings(tmp_path):
    import json

    from mapflow_utils import cli, runner, site

    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["injected-parameters"], "papermill": {"duration": 1}},
                     "source": "x = 1", "outputs": []},
                    {"cell_type": "code", "metadata": {"tags": ["parameters"], "execution": {}}, "source": "x = 0",
                     "outputs": []}],
          "metadata": {"papermill": {"duration": 3.2, "parameters": {"x": 1}}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "c.ipynb"
    path.write_text(json.dumps(nb))
    runner.clean_notebook(path)
    got = json.loads(path.read_text())
    assert got["cells"][0]["metadata"] == {"tags": ["injected-parameters", "hide-input"]}
    assert got["cells"][1]["metadata"] == {"tags": ["parameters"]}  # the reader's parameters cell stays visible
    assert got["metadata"]["papermill"] == {"parameters": {"x": 1}}


def test_status_page_names_one_commit_or_the_pages_executed_at_another():
    one = {"a": {"run_seconds": 3, "commit": "abc", "executed": "2026-12-02 01:00 UTC"},
           "b": {"run_seconds": 4, "commit": "abc", "executed": "2026-12-02 01:05 UTC"}}
    text = site.status_text(one)
    assert "Every page was executed at commit `abc`." in text and "2026-12-02 01:05 UTC" in text
    mixed = {**one, "c": {"run_seconds": 5, "commit": "old", "executed": "2026-11-30 09:00 UTC"}, "d": {}}
    text = site.status_text(mixed)
    assert "newest execution is at commit `abc`" in text and "{doc}`c` (`old`)" in text
    assert "| {doc}`d` | not executed |" in text
    dirty = site.status_text({"a": {**one["a"], "commit": "abc+local changes"}})
    assert "clean checkout" in dirty
