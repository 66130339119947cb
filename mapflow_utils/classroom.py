"""Classroom assignments with otter-grader: build, grade, and the small helpers the assignments call.

The masters are MyST-Markdown notebooks in ``assignments/<name>/<name>.md`` (otter's "v1" format: a raw
``# ASSIGNMENT CONFIG`` cell, raw ``# BEGIN QUESTION`` … delimiters, plain ``assert`` tests). :func:`build`
converts one to ``.ipynb`` and runs ``otter assign``, which first runs every test against the solution, then writes
``dist/assignments/<name>/student/`` (the blanked notebook and its public tests) and ``…/autograder/`` (the solution
notebook and the grading zip). :func:`grade` runs ``otter run`` on a submission (no Docker, no network) and returns
the points per question.

The helpers below give the assignments their inputs: the embedded from-scratch subject (seconds to load on a
laptop), prepared questions, raw knockout probabilities, and random token layouts for hidden tests drawn from the
grading seed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import paths
from .spans import Spans
from .runner import to_notebook
from .models import load
from .data import load_tvbench
from .evaluate import prepare
from .experiments import FLOWS
from .engine.knockout import run_sweep
from .engine.specs import sweep_specs

ASSIGNMENTS_DIR: Path = paths.ROOT / "assignments"
DIST: Path = paths.ROOT / "dist" / "assignments"
#: The assignments in teaching order.
ASSIGNMENTS: tuple[str, ...] = ("a1_knockout", "a2_logit_lens", "a3_change_ci", "a4_pathways")


class ClassroomError(RuntimeError):
    """An assignment that cannot be built or graded; the message names the file and the fix."""


# ------------------------------------------------------------------------------------------------ build / grade

def master(name: str) -> Path:
    """The MyST master of assignment ``name``."""
    path = ASSIGNMENTS_DIR / name / f"{name}.md"
    if not path.exists():
        raise ClassroomError(f"no assignment {name!r}: {path} is missing (known: {', '.join(ASSIGNMENTS)})")
    return path


@dataclass(frozen=True)
class Info:
    """What the Classroom page and the teacher guide say of an assignment (the master's ``classroom`` metadata)."""

    name: str
    title: str
    goal: str
    chapter: str
    minutes: int
    difficulty: int
    prerequisites: str


def info(name: str) -> Info:
    """Read the ``classroom:`` block of a master's jupytext header."""
    import jupytext

    meta = jupytext.read(master(name)).metadata.get("classroom")
    if not meta:
        raise ClassroomError(f"{master(name)} has no `classroom:` block in its header (title, goal, chapter, "
                             "minutes, difficulty, prerequisites)")
    return Info(name, **meta)


def _otter() -> str:
    exe = Path(sys.executable).with_name("otter")
    if not exe.exists():
        raise ClassroomError("otter-grader is not installed in this environment: run `make install` (it installs "
                             "the `classroom` extra) or `pip install -e '.[classroom]'`")
    return str(exe)


def _run(cmd: Sequence[str], what: str, cwd: Path | None = None) -> str:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # the notebooks' torch: one thread unless told otherwise
        env.setdefault(var, "1")
    proc = subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, env=env)
    if proc.returncode != 0:
        raise ClassroomError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def build(name: str, out: Path | None = None) -> Path:
    """``otter assign`` on one master (its solutions must pass every test) into ``out`` (default
    ``dist/assignments/<name>``); returns ``out``."""

    out = Path(out) if out is not None else DIST / name
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory() as tmp:
        nb = to_notebook(master(name), Path(tmp) / f"{name}.ipynb")
        _run([_otter(), "assign", str(nb), str(out.resolve())], f"otter assign {master(name)}", cwd=Path(tmp))
    shutil.make_archive(str(student_zip(out))[:-4], "zip", out / "student")  # the notebook with its public tests
    return out


def student_zip(dist: Path) -> Path:
    """What students download: the student notebook and its ``tests/`` folder (``grader.check`` reads them)."""
    return Path(dist) / f"{Path(dist).name}-student.zip"


def page(book: Path = paths.BOOK) -> Path:
    """``book/classroom.md``: the assignments (goal, chapter, time, difficulty, prerequisites) with download links to
    the student zips that ``make assignments`` builds; never the autograder."""
    rel = Path("..") / DIST.relative_to(paths.ROOT)
    lines = ["# Classroom", "",
             "Four autograded assignments on the book's methods (otter-grader; see `assignments/README.md` for "
             "teachers). Each runs on a laptop CPU in minutes with no downloads, on the embedded from-scratch "
             "model and the shipped synthetic split. Download the zip (the notebook and its public tests), open the "
             "notebook in Jupyter inside an environment with mapflow installed (`make install`), fill in the "
             "blanks and run the `grader.check` cells; your teacher grades it with hidden tests drawn from "
             "another seed.", ""]
    for i, name in enumerate(ASSIGNMENTS, 1):
        a = info(name)
        lines += [f"({name})=", f"## A{i} · {a.title}", "",
                  f"**Goal.** {a.goal[0].upper() + a.goal[1:]}.", "",
                  f"**Practises** {{doc}}`{a.chapter}`. **Before you start:** {a.prerequisites}. **Time:** about "
                  f"{a.minutes} minutes. **Difficulty:** {a.difficulty} of 5.", "",
                  f"{{download}}`Student notebook and public tests ({name}-student.zip) "
                  f"<{rel / name / f'{name}-student.zip'}>`", ""]
    return paths.write_if_changed(book / "classroom.md", "\n".join(lines))


def student_notebook(dist: Path) -> Path:
    return next(Path(dist, "student").glob("*.ipynb"))


def solution_notebook(dist: Path) -> Path:
    return next(Path(dist, "autograder").glob("*.ipynb"))


def autograder_zip(dist: Path) -> Path:
    zips = sorted(Path(dist, "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise ClassroomError(f"no autograder zip in {dist}/autograder: run `make assignments` first")
    return zips[-1]


@dataclass(frozen=True)
class Grade:
    """Points per autograded question (``{question: (score, possible)}``) of one submission, and for each question
    that lost points the message of its first failing check (``messages``)."""

    questions: dict[str, tuple[float, float]]
    messages: dict[str, str] = None

    @property
    def total(self) -> tuple[float, float]:
        return (sum(s for s, _ in self.questions.values()), sum(p for _, p in self.questions.values()))


def grade(dist: Path, submission: Path) -> Grade:
    """Grade ``submission`` with the assignment's autograder zip by ``otter run`` (local, no Docker)."""
    with tempfile.TemporaryDirectory() as tmp:
        _run([_otter(), "run", "-a", str(autograder_zip(dist)), "-o", tmp, str(submission)],
             f"otter run on {submission}")
        res = json.loads(Path(tmp, "results.json").read_text())
    graded = [t for t in res["tests"] if t.get("max_score") is not None and t["max_score"] == t["max_score"]]  # "Public Tests": NaN
    scores = {t["name"]: (float(t["score"]), float(t["max_score"])) for t in graded}
    messages = {t["name"]: failure_message(t.get("output") or "") for t in graded if t["score"] < t["max_score"]}
    return Grade({k: (round(s, 6), p) for k, (s, p) in scores.items()}, messages)


def failure_message(output: str) -> str:
    """The first failing check's own message in otter's output for one question (the text after the first
    ``AssertionError:`` or other exception line of the doctest traceback), else its first line."""
    import re

    m = re.search(r"^\s*(?:\w+\.)*(\w*(?:Error|Exception)): ?(.*)$", output, re.M)
    if m:
        return f"{m.group(2).strip()}" if m.group(1) == "AssertionError" else f"{m.group(1)}: {m.group(2).strip()}"
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    return lines[0] if lines else "failed"


# -------------------------------------------------------------------------------------------- in the notebook

def notebook_path(default: str) -> str:
    """The notebook this kernel is running, whatever the student named it: Jupyter's ``JPY_SESSION_NAME``
    (jupyter_server 2+ sets it for a notebook's kernel), VS Code's ``__vsc_ipynb_file__``, else ``default``. Relative
    to the working folder when inside it (otter's export zips the notebook under that name and grades it by it)."""
    found = os.environ.get("JPY_SESSION_NAME", "")
    if not (found.endswith(".ipynb") and Path(found).is_file()):
        try:
            from IPython import get_ipython

            found = str((get_ipython().user_ns if get_ipython() else {}).get("__vsc_ipynb_file__", ""))
        except ImportError:
            found = ""
    if not (found.endswith(".ipynb") and Path(found).is_file()):
        return default
    here = Path.cwd().resolve()
    path = Path(found).resolve()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


class CheckResult:
    """What ``grader.check(...)`` shows: otter's result, headed by the first failing check's own message (which
    names the likely mistake) instead of leaving it at the end of a doctest traceback."""

    def __init__(self, result):
        self._result = result

    def __getattr__(self, name):
        return getattr(self._result, name)

    def headline(self) -> str:
        if getattr(self._result, "passed_all", True):
            return ""
        return f"{self._result.name}: {failure_message(self._result.summary())}"

    def __repr__(self) -> str:
        head = self.headline()
        return (f"{head}\n\n" if head else "") + repr(self._result)

    def _repr_html_(self) -> str:
        import html

        head = self.headline()
        inner = self._result._repr_html_() if hasattr(self._result, "_repr_html_") else f"<pre>{html.escape(repr(self._result))}</pre>"
        return (f"<p><strong>{html.escape(head)}</strong></p>" if head else "") + inner


def grader(name: str):
    """The assignment's otter grader bound to the notebook the student works in (:func:`notebook_path`), so
    ``grader.export()`` zips that notebook even in a renamed copy; its ``check`` results lead with the likely
    mistake (:class:`CheckResult`)."""
    import otter

    class Grader(otter.Notebook):
        def check(self, question: str, global_env: dict | None = None):
            import inspect

            # otter reads the notebook's variables from its caller's globals: that is the notebook, not this module
            env = global_env if global_env is not None else inspect.currentframe().f_back.f_globals
            result = super().check(question, env)
            return None if result is None else CheckResult(result)

    return Grader(notebook_path(f"{name}.ipynb"))


def _short(x) -> str:
    a = np.asarray(x)
    return np.array2string(a, precision=4, threshold=12) if a.ndim else f"{float(a):.6g}"


def expect(got, expected, what: str, mistakes: dict | None = None, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Assert ``got`` equals ``expected`` (numbers or arrays, within ``rtol``/``atol``). When it does not, the
    message *starts* with the likely mistake: the first entry of ``mistakes`` (``{"what the mistake is": the value
    it gives}``) that ``got`` matches, else what was called, what came back and what was expected."""
    def same(a, b) -> bool:
        try:
            a, b = np.asarray(a, float), np.asarray(b, float)
        except (TypeError, ValueError):
            return False
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))

    if same(got, expected):
        return
    tail = f"{what} gave {_short(got)}, expected {_short(expected)}"
    for mistake, value in (mistakes or {}).items():
        if same(got, value):
            raise AssertionError(f"{mistake} ({tail})")
    raise AssertionError(tail)


# ------------------------------------------------------------------------------------------------ the inputs

def subject(which: str = "video"):
    """The embedded from-scratch Video-FT (``video``) or ImageLLM (``image``) as an adapter (content format)."""

    _, _, adapter = load(paths.VIDEO_MODEL if which == "video" else paths.IMAGE_MODEL)
    return adapter


def questions(n_per_task: int = 2, seed: int = 0, tasks: Sequence[str] | None = None):
    """A seeded subset of the shipped held-out synthetic split."""

    return load_tvbench(paths.SYNTHETIC, tasks=tasks, n_per_task=n_per_task, seed=seed)


def prepared(adapter, samples, answer_format: str = "content") -> list:
    """:func:`evaluate.prepare` on each sample (prompt, spans, answer tokens, clean run)."""

    return [prepare(adapter, s, answer_format) for s in samples]


@dataclass
class RawSweep:
    """The probabilities a knockout sweep starts from, before any %change: one flow in a window centred on each
    layer.

    ``p_knock``: ``[N, n_layers]`` probability of the clean prediction under knockout; ``p_base``: ``[N]`` its clean
    probability; ``predicted`` / ``answer``: ``[N]`` option indices; ``tasks``: ``[N]``.
    """

    p_knock: np.ndarray
    p_base: np.ndarray
    predicted: np.ndarray
    answer: np.ndarray
    tasks: list[str]


def raw_sweep(adapter, preps: Sequence, flow: str, window: int) -> RawSweep:
    """Run one flow of ``experiments.FLOWS`` through the knockout engine on every prepared question (no %change, no
    selection: what a student computes from)."""

    specs = sweep_specs(FLOWS[flow], window, adapter.num_layers)
    knock, base, pred, ans = [], [], [], []
    for p in preps:
        probs = run_sweep(adapter, p.clean, p.spans, specs, p.answer_ids)  # [n_layers, n_options]
        k = p.predicted
        knock.append(probs[:, k].numpy())
        base.append(float(torch.softmax(p.clean.logits, -1)[p.answer_ids[k]]))
        pred.append(k)
        ans.append(p.sample.answer_index)
    return RawSweep(np.array(knock), np.array(base), np.array(pred), np.array(ans), [p.sample.task for p in preps])


def random_spans(rng: np.random.Generator, max_frames: int = 4) -> Spans:
    """A random but valid token layout (system, video of 1-``max_frames`` frames of equal length, question with
    2-4 options, instruction, last), for tests that draw new cases from the grading seed."""
    n_frames, per_frame = int(rng.integers(1, max_frames + 1)), int(rng.integers(1, 4))
    lengths = rng.integers(1, 4, size=8)
    pos = 0

    def take(n: int) -> range:
        nonlocal pos
        r = range(pos, pos + int(n))
        pos += int(n)
        return r

    system = take(lengths[0])
    take(lengths[1])  # template tokens between system and video
    frames = tuple(take(per_frame) for _ in range(n_frames))
    video = range(frames[0].start, frames[-1].stop)
    take(lengths[2])
    non_option = take(lengths[3])
    options = tuple(take(int(rng.integers(1, 4))) for _ in range(int(rng.integers(2, 5))))
    question = range(non_option.start, options[-1].stop)
    instruction = take(lengths[4])
    take(lengths[5])
    last = take(1)
    return Spans(pos, system, video, frames, question, non_option, options, int(rng.integers(len(options))),
                 instruction, last)


def example_spans() -> Spans:
    """A small fixed layout (12 tokens) to reason about by hand: system 0, video 1-4 (two frames of two tokens),
    question 5-9 (non-option 5-6, options 7 and 8-9; the answer is the second), instruction 10, last 11."""
    return Spans(12, range(0, 1), range(1, 5), (range(1, 3), range(3, 5)), range(5, 10), range(5, 7),
                 (range(7, 8), range(8, 10)), 1, range(10, 11), range(11, 12))

