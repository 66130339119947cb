"""The classroom tier: every assignment builds with ``otter assign`` (which first runs every test against the
solution), and ``otter run`` with its autograder zip gives the solution full marks, the untouched student notebook 0
on every autograded question, and each planted common mistake a loss of exactly its own question's points."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mapflow_utils import classroom

#: Common mistakes, planted into the solution notebook by replacing one line: (assignment, question that must lose
#: its points, solution text, mistaken text).
MISTAKES = [
    ("a1_knockout", "q1_flow_pairs", "out[q[:, None], k[None, :]] = True", "out[k[:, None], q[None, :]] = True"),
    ("a1_knockout", "q2_cross_frame", "for earlier in spans.frames[:i]:", "for earlier in spans.frames[:i + 1]:"),
    ("a1_knockout", "q3_window", "min(n_layers, layer + k - k // 2)", "min(n_layers, layer + k // 2)"),
    ("a2_logit_lens", "q1_standard_lens", "lm_head(final_norm(hidden[1:]))", "lm_head(final_norm(final_norm(hidden[1:])))"),
    ("a2_logit_lens", "q1_standard_lens", "return torch.softmax(logits, -1)[:, list(answer_ids)]",
     "return torch.softmax(logits[:, list(answer_ids)], -1)"),
    ("a2_logit_lens", "q2_paper_lens", "states = torch.cat([hidden[:-1], final_norm(hidden[-1:])])",
     "states = final_norm(hidden)"),
    ("a3_change_ci", "q1_pct_change", "100.0 * (p_new - p_base) / p_base", "100.0 * (p_base - p_new) / p_base"),
    ("a3_change_ci", "q1_pct_change", "100.0 * (p_new - p_base) / p_base", "100.0 * (p_new - p_base) / p_new"),
    ("a3_change_ci", "q2_only_correct", "keep = np.asarray(predicted) == np.asarray(answer)",
     "keep = np.ones(len(predicted), bool)"),
    ("a3_change_ci", "q3_bootstrap", "np.percentile(boots, 2.5, axis=0), np.percentile(boots, 97.5, axis=0)",
     "np.percentile(boots, 5, axis=0), np.percentile(boots, 95, axis=0)"),
    ("a4_pathways", "q1_interval_means", "for lo in range(0, len(curve), size):",
     "for lo in range(0, len(curve) - size + 1, size):"),
    ("a4_pathways", "q2_layer_range", "return (kept[0][0], kept[-1][1]) if kept else None",
     "return (kept[0][0], kept[0][1]) if kept else None"),
    ("a4_pathways", "q3_pooled_curve", "return (x[rows] if rows.any() else x).mean(0)", "return x.mean(0)"),
]
#: What the grade output must say first for a planted mistake (by its mistaken text): the mistake, by name.
NAMED = {
    "100.0 * (p_base - p_new) / p_base": "the sign is flipped",
    "100.0 * (p_new - p_base) / p_new": "divided by the knocked-out probability",
    "keep = np.ones(len(predicted), bool)": "every row kept",
    "np.percentile(boots, 5, axis=0), np.percentile(boots, 95, axis=0)": "the 5th/95th percentiles",
    "min(n_layers, layer + k // 2)": "the window's end is one short",
    "out[k[:, None], q[None, :]] = True": "did you transpose?",
    "for lo in range(0, len(curve) - size + 1, size):": "a last, shorter",
}
PRESENT = [a for a in classroom.ASSIGNMENTS if (classroom.ASSIGNMENTS_DIR / a / f"{a}.md").exists()]


#: Set by ``make test-assignments``, which has just run ``make assignments`` (the same ``otter assign`` into
#: ``dist/assignments``, shared with the pages tier): the tests grade that build instead of building again.
REUSE = "MAPFLOW_ASSIGNMENTS_BUILT"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Each assignment built once (``otter assign`` fails if a solution fails one of its tests): the build `make`
    just made when it says so (:data:`REUSE`), else a new one per module. Tests only read it."""
    cache: dict[str, Path] = {}
    reuse = os.environ.get(REUSE) == "1"

    def get(name: str) -> Path:
        if name not in cache:
            made = classroom.DIST / name
            if reuse and list((made / "autograder").glob("*-autograder_*.zip")):
                cache[name] = made
            else:
                cache[name] = classroom.build(name, tmp_path_factory.mktemp(name) / "dist")
        return cache[name]
    return get


def test_every_assignment_is_present_and_described():
    assert PRESENT == list(classroom.ASSIGNMENTS), f"missing masters: {set(classroom.ASSIGNMENTS) - set(PRESENT)}"
    for name in PRESENT:
        info = classroom.info(name)
        assert info.minutes > 0 and 1 <= info.difficulty <= 5 and info.goal and info.prerequisites
        assert (Path("notebooks") / f"{info.chapter}.md").exists(), f"{name} practises an unknown chapter"


def test_every_question_has_a_planted_mistake():
    for name in PRESENT:
        planted = {q for a, q, _, _ in MISTAKES if a == name}
        auto = set(_questions(name))
        assert auto <= planted, f"{name}: autograded questions without a planted mistake: {auto - planted}"


def _questions(name: str) -> list[str]:
    """The autograded questions of a master (manual ones excluded)."""
    import jupytext
    import yaml

    out = []
    for cell in jupytext.read(classroom.master(name)).cells:
        src = cell.source.strip()
        if cell.cell_type == "raw" and src.startswith("# BEGIN QUESTION"):
            meta = yaml.safe_load(src.split("\n", 1)[1])
            if not meta.get("manual"):
                out.append(meta["name"])
    return out


@pytest.mark.parametrize("name", PRESENT)
def test_solution_full_marks_blank_zero(name, built):
    dist = built(name)
    sol = classroom.grade(dist, classroom.solution_notebook(dist))
    assert set(sol.questions) == set(_questions(name))
    assert sol.total[0] == sol.total[1] > 0, f"the solution lost points: {sol.questions}"
    blank = classroom.grade(dist, classroom.student_notebook(dist))
    assert all(score == 0 for score, _ in blank.questions.values()), f"blanks scored: {blank.questions}"
    assert (dist / "student" / "tests").is_dir(), "tests: files: true puts the public tests beside the notebook"
    student_src = classroom.student_notebook(dist).read_text()
    assert "# HIDDEN" not in student_src and "BEGIN SOLUTION" not in student_src


@pytest.mark.parametrize("name,question,right,wrong", MISTAKES, ids=[f"{a}-{q}" for a, q, _, _ in MISTAKES])
def test_planted_mistake_loses_exactly_its_question(name, question, right, wrong, built, tmp_path):
    dist = built(name)
    nb = json.loads(classroom.solution_notebook(dist).read_text())
    hits = 0
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and right in src:
            cell["source"] = src.replace(right, wrong)
            hits += 1
    assert hits == 1, f"the solution text of {question} is not in {name}'s solution exactly once"
    sub = tmp_path / f"{name}.ipynb"
    sub.write_text(json.dumps(nb))
    g = classroom.grade(dist, sub)
    for q, (score, possible) in g.questions.items():
        if q == question:
            assert score == 0, f"{question}: the planted mistake kept {score} of {possible} points"
        else:
            assert score == possible, f"the mistake in {question} cost {q} points ({score}/{possible})"
    assert set(g.messages) == {question} and g.messages[question], f"no message for {question}: {g.messages}"
    if wrong in NAMED:
        assert NAMED[wrong] in g.messages[question], \
            f"{question}: the message should name the mistake ({NAMED[wrong]!r}), says {g.messages[question]!r}"


def test_grade_prints_each_questions_score_and_message(built, tmp_path, capsys):
    """`mapflow assignments grade` prints a line per question: its score and, where it lost points, why."""
    from mapflow_utils import cli

    dist = built("a3_change_ci")
    nb = json.loads(classroom.solution_notebook(dist).read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = src.replace("100.0 * (p_new - p_base) / p_base", "100.0 * (p_new - p_base) / p_new")
    sub = tmp_path / "sub.ipynb"
    sub.write_text(json.dumps(nb))
    cli.main(["assignments", "grade", "a3_change_ci", str(sub), "--dist", str(dist)])
    out = capsys.readouterr().out
    assert f"{sub}: 5/7" in out
    assert "  q1_pct_change: 0/2  divided by the knocked-out probability" in out and "  q2_only_correct: 2/2\n" in out


def test_check_leads_with_the_mistake_and_export_takes_the_renamed_notebook(built, tmp_path):
    """A student works in a renamed copy ("my copy.ipynb") beside the untouched original, as Jupyter runs it
    (JPY_SESSION_NAME): ``grader.check`` puts the named mistake on its first line, and ``grader.export`` zips the
    renamed copy, which the autograder grades (the untouched original would get 0)."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    dist = built("a3_change_ci")
    work = tmp_path / "student"
    shutil.copytree(dist / "student", work)
    nb = json.loads(classroom.solution_notebook(dist).read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = src.replace("100.0 * (p_new - p_base) / p_base", "100.0 * (p_new - p_base) / p_new")
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "id": "chk",
                        "source": 'grader.check("q1_pct_change")'})
    copy = work / "my copy.ipynb"
    copy.write_text(json.dumps(nb))
    env = {**os.environ, "JPY_SESSION_NAME": str(copy)}
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", copy.name,
                    "--output", "done.ipynb"], cwd=work, env=env, check=True, capture_output=True, timeout=900)
    done = json.loads((work / "done.ipynb").read_text())
    shown = "".join(done["cells"][-1]["outputs"][0]["data"]["text/plain"])
    assert shown.startswith("q1_pct_change: divided by the knocked-out probability"), shown[:300]
    zips = sorted(work.glob("my copy_*.zip"))
    assert zips, f"grader.export wrote no zip of the renamed notebook: {sorted(p.name for p in work.iterdir())}"
    assert "my copy.ipynb" in zipfile.ZipFile(zips[-1]).namelist()
    g = classroom.grade(dist, zips[-1])
    assert g.questions["q1_pct_change"][0] == 0 and g.questions["q2_only_correct"] == (2, 2), g.questions


def test_each_practised_chapter_links_its_assignment():
    for name in PRESENT:
        chapter = Path("notebooks") / f"{classroom.info(name).chapter}.md"
        assert f"<{name}>`" in chapter.read_text(), f"{chapter} does not link to assignment {name}"


def test_classroom_page_is_current(tmp_path):
    """book/classroom.md is written by `mapflow book` from the masters' metadata; the committed page is current."""
    assert classroom.page(tmp_path).read_text() == Path("book/classroom.md").read_text()
    for name in PRESENT:
        assert f"{name}-student.zip" in Path("book/classroom.md").read_text()
        assert "autograder" not in Path("book/classroom.md").read_text().split("teachers")[1]
