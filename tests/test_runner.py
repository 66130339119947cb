"""The chapter runner's kept kernel (runner.Kernel): many runs, one kernel start, each run as if fresh."""

import json

import pytest

from mapflow_utils import paths, runner

HEADER = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\nkernelspec:\n"
          "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n")


def _chapter(folder, name, code):
    (folder / f"{name}.md").write_text(HEADER + "```{code-cell} python\n:tags: [parameters]\nlabel = 'x'\n```\n\n"
                                       "```{code-cell} python\n" + code + "\n```\n")


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(paths, "NOTEBOOKS", folder)
    report = ("import json, os\n"
              "json.dump({'pid': os.getpid(), 'cwd': os.getcwd(), 'leftover': 'secret' in globals(),\n"
              "           'figures': os.environ.get('" + paths.FIGURES_ENV + "'), 'label': label},\n"
              "          open('report.json', 'w'))\n"
              "secret = 42")
    _chapter(folder, "first", report)
    _chapter(folder, "second", report)
    _chapter(folder, "broken", "raise ValueError('planted')")
    return folder


def _report(folder):
    return json.loads((folder / "report.json").read_text())


def test_runs_in_a_kept_kernel_start_clean_in_their_own_folder(notebooks, tmp_path):
    with runner.Kernel() as kernel:
        runner.run_chapter("first", {"label": "a"}, out=tmp_path / "a", progress=False, kernel=kernel)
        with pytest.raises(Exception, match="planted"):  # a failing run leaves the kernel usable
            runner.run_chapter("broken", {}, out=tmp_path / "b", progress=False, kernel=kernel)
        out = runner.run_chapter("second", {"label": "c"}, out=tmp_path / "c", progress=False, kernel=kernel)
    a, c = _report(tmp_path / "a"), _report(tmp_path / "c")
    assert a["pid"] == c["pid"], "the kernel was not kept: every run paid a kernel start"
    assert not c["leftover"], "a name from the previous run was still defined: the namespace was not reset"
    assert c["cwd"] == str((tmp_path / "c").resolve()) and c["label"] == "c"
    assert c["figures"] == str((tmp_path / "c" / "second.figures.json").resolve())
    cells = json.loads(out.read_text())["cells"]
    assert not [x for x in cells if runner.KERNEL_RESET_TAG in x.get("metadata", {}).get("tags", [])], \
        "the kernel's reset cell must not stay in the executed notebook"
    assert kernel.km is None, "closing must shut the kernel down"


def test_without_a_kept_kernel_each_run_starts_its_own(notebooks, tmp_path):
    runner.run_chapter("first", {}, out=tmp_path / "a", progress=False)
    runner.run_chapter("second", {}, out=tmp_path / "c", progress=False)
    assert _report(tmp_path / "a")["pid"] != _report(tmp_path / "c")["pid"]
