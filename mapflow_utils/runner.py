"""The chapter runner: a chapter's MyST source, its parameters, executed with papermill (one process, or shards into
a shared cache), and the files beside an executed chapter (``results.json``, its glued values). The command line
(:mod:`mapflow_utils.cli`) and the book build (:mod:`mapflow_utils.site`) call it; so does the "your model" page."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from . import paths
from .models.tiny_vlms import save_tiny


#: Chapters that read the others' results run after them.
LAST = ("verdicts",)


def chapters() -> list[str]:
    """Chapter names: the MyST notebooks in ``notebooks/`` (without ``.md``), in execution order (sorted, with
    :data:`LAST` at the end)."""
    names = sorted(p.stem for p in paths.NOTEBOOKS.glob("*.md"))
    return [n for n in names if n not in LAST] + [n for n in LAST if n in names]


def _parameter_cell(chapter: str) -> list[tuple[str, Any, str]]:
    """``[(name, value node, source line)]`` of the cell tagged ``parameters`` in a chapter's MyST source."""
    import ast

    import jupytext

    nb = jupytext.read(paths.NOTEBOOKS / f"{chapter}.md")
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return []
    out = []
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign):
            target = node.targets[0]
        else:
            continue
        if isinstance(target, ast.Name):
            out.append((target.id, node.value, cell.source.splitlines()[node.lineno - 1]))
    return out


def chapter_parameters(chapter: str) -> dict[str, str]:
    """A chapter's parameters, ``{name: comment}``, from the cell tagged ``parameters`` of its MyST source."""
    return {name: line.split("#", 1)[1].strip() if "#" in line else "" for name, _, line in _parameter_cell(chapter)}


def parameter_lines(chapter: str) -> dict[str, str]:
    """A chapter's parameters cell, line by line: ``{name: "name: type = default  # help"}``."""
    return {name: line.strip() for name, _, line in _parameter_cell(chapter)}


def chapter_defaults(chapter: str) -> dict[str, Any]:
    """A chapter's parameters with their default values (Python literals), ``{name: value}``."""
    import ast

    return {name: ast.literal_eval(value) for name, value, _ in _parameter_cell(chapter)}


def to_notebook(source: str | Path, dest: str | Path) -> Path:
    """Convert a MyST-Markdown chapter (jupytext) into a ``.ipynb`` that papermill can execute."""
    import jupytext

    nb = jupytext.read(source)
    nb.metadata.pop("jupytext", None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"{Path(source).stem}-{i:02d}"  # stable ids: re-executed pages diff only where results change
    jupytext.write(nb, dest, fmt="ipynb")
    return Path(dest)


def clean_notebook(nb_path: Path) -> None:
    """Drop per-cell timing metadata papermill writes, so re-executed book pages diff only where results change, and
    fold the cell papermill injects with the run's parameters (the footer and results.json name them too)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    pm = nb.get("metadata", {}).get("papermill", {})
    for key in ("start_time", "end_time", "duration", "input_path", "output_path"):
        pm.pop(key, None)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def absolute_parameters(value: Any) -> Any:
    """Parameters that name an existing relative path (from the caller's directory) made absolute, in lists and
    dicts too: the chapter runs with its output folder as working directory."""
    if isinstance(value, str) and value and not os.path.isabs(value) and os.path.exists(value):
        return os.path.abspath(value)
    if isinstance(value, list):
        return [absolute_parameters(v) for v in value]
    if isinstance(value, dict):
        return {k: absolute_parameters(v) for k, v in value.items()}
    return value


class Kernel:
    """One Jupyter kernel kept for consecutive :func:`run_chapter` calls (``kernel=``), to save each run the kernel's
    start and the imports (~6 s of a tiny run's 8-17 s). Each run begins with a cell, removed from the executed
    notebook, that empties the user namespace (``%reset -f``), closes figures, and moves to the run's folder with its
    environment; modules stay imported, so module-level state carries over. A chapter's own tests run it in a fresh
    kernel, as ``mapflow run`` does; this is for running many chapters or many models (the support matrix). A kernel
    that died is replaced at the next run. Use as a context manager, or call :meth:`close`."""

    def __init__(self):
        self.km = None

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def manager(self):
        """The kernel manager to run on: the kept one if it is alive, else a new one (started by the run)."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        if self.km is not None and self.km.has_kernel and not run_sync(self.km.is_alive)():
            self.close()
        if self.km is None:
            self.km = AsyncKernelManager(kernel_name="python3")
        return self.km

    def close(self) -> None:
        from jupyter_core.utils import run_sync

        if self.km is not None and self.km.has_kernel:
            run_sync(self.km.shutdown_kernel)(now=True)
        self.km = None


#: The tag of the cell :class:`Kernel` puts first in each run.
KERNEL_RESET_TAG = "mapflow-kernel-reset"


def _reset_cell(cwd: Path, env: dict[str, str]) -> dict:
    """The first cell of a run in a kept kernel: an empty namespace, no open figures, the run's folder and
    environment (as a fresh kernel started there would have them), no name left behind."""
    import nbformat

    code = ("get_ipython().run_line_magic('reset', '-f')\n"
            "__import__('matplotlib.pyplot').pyplot.close('all')\n"
            f"__import__('os').chdir({str(cwd)!r})\n"
            f"__import__('os').environ.update({env!r})")
    return nbformat.v4.new_code_cell(code, metadata={"tags": [KERNEL_RESET_TAG]}, id=KERNEL_RESET_TAG)


def run_chapter(chapter: str, parameters: dict[str, Any] | None = None, out: str | Path | None = None,
                name: str = "default", progress: bool = True, kernel: Kernel | None = None) -> Path:
    """Execute ``notebooks/<chapter>.md`` with papermill and return the executed notebook's path.

    Output goes to ``out`` (a file or folder) or ``runs/<name>/<chapter>.ipynb``; a chapter that declares
    ``claims_file`` writes its claims beside it (``<chapter>.claims.json``). Kernels run with one torch thread
    unless ``OMP_NUM_THREADS`` is set. ``kernel``: run in that kept :class:`Kernel` instead of a fresh one.
    """
    import tempfile

    import papermill as pm

    src = paths.NOTEBOOKS / f"{chapter}.md"
    if not src.is_file():
        raise SystemExit(f"mapflow run: no chapter {chapter!r} (no {src}). Chapters: {', '.join(chapters())}")
    dest = Path(out) if out is not None else paths.ROOT / "runs" / name
    if dest.suffix != ".ipynb":
        dest = dest / f"{chapter}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    parameters = {k: absolute_parameters(v) for k, v in (parameters or {}).items()}
    if "claims_file" in chapter_parameters(chapter):  # relative to the kernel's folder, dest.parent
        parameters.setdefault("claims_file", f"{chapter}.claims.json")
    figures = dest.with_name(f"{chapter}.figures.json")
    figures.unlink(missing_ok=True)
    before = os.environ.get(paths.FIGURES_ENV)
    os.environ[paths.FIGURES_ENV] = str(figures)  # the kernel's footer writes the data behind its figures there
    try:
        with tempfile.TemporaryDirectory() as tmp:
            nb = to_notebook(src, Path(tmp) / f"{chapter}.ipynb")
            kept = {}
            if kernel is not None:
                _prepend(nb, _reset_cell(dest.parent.resolve(), {paths.FIGURES_ENV: str(figures.resolve())}))
                kept = {"km": kernel.manager()}
            try:
                pm.execute_notebook(str(nb), str(dest), parameters=parameters, kernel_name="python3",
                                    cwd=str(dest.parent), progress_bar=progress, log_output=False,
                                    extra_arguments=["--IPKernelApp.log_level=CRITICAL"], **kept)  # no log lines
            finally:
                if kernel is not None and dest.exists():
                    _drop_reset_cell(dest)
    finally:
        if before is None:
            os.environ.pop(paths.FIGURES_ENV, None)
        else:
            os.environ[paths.FIGURES_ENV] = before
    clean_notebook(dest)
    write_results(dest)
    return dest


def _prepend(nb_path: Path, cell: dict) -> None:
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.insert(0, cell)
    nbformat.write(nb, nb_path)


def _drop_reset_cell(nb_path: Path) -> None:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if KERNEL_RESET_TAG not in c.get("metadata", {}).get("tags", [])]
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_results(notebook: Path) -> Path:
    """``<chapter>.results.json`` beside an executed chapter: its parameters, every glued value, its claims (if it
    states any) and the provenance its footer glued, for machines (the page is for people)."""
    import ast

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    glued = read_glue(notebook)
    glued.pop("provenance", None)
    claims_file = notebook.with_name(f"{notebook.stem}.claims.json")
    prov = None
    for o in (o for c in nb["cells"] for o in c.get("outputs", [])):
        meta = o.get("metadata", {}).get("scrapbook", {})
        if meta.get("name") == "provenance":
            prov = ast.literal_eval("".join(o["data"][meta.get("mime_prefix", "") + "text/plain"]))
    out = {"chapter": notebook.stem, "parameters": nb.get("metadata", {}).get("papermill", {}).get("parameters", {}),
           "glue": glued, "claims": json.loads(claims_file.read_text()) if claims_file.exists() else [],
           "provenance": json.loads(prov) if prov else None}
    path = notebook.with_name(f"{notebook.stem}.results.json")
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def run_shards(chapter: str, parameters: dict[str, Any], n: int, name: str = "default") -> list[Path]:
    """Run ``chapter`` as ``n`` local processes, shard ``i/n`` each, into the shared result cache (the chapter's
    ``results_dir``); each executed shard goes to ``runs/<name>/shard-<i>/``. Raises if a shard fails. The caller
    then runs the chapter once without a shard, which finds every result cached and renders the page."""
    procs = []
    for i in range(n):
        out = paths.ROOT / "runs" / name / f"shard-{i}"
        cmd = [sys.executable, "-m", "mapflow_utils.cli", "run", chapter, "--out", str(out)]
        for k, v in {**parameters, "shard": f"{i}/{n}"}.items():
            cmd += ["-p", k, json.dumps(v) if not isinstance(v, str) else v]
        procs.append((out / f"{chapter}.ipynb", subprocess.Popen(cmd)))
    failed = [str(out) for out, p in procs if p.wait() != 0]
    if failed:
        raise SystemExit(f"mapflow run --shards: shard(s) failed: {', '.join(failed)}; their logs are above. "
                         "Results of the others are cached: rerun to retry only what is missing.")
    return [out for out, _ in procs]


def read_glue(notebook: str | Path) -> dict[str, str]:
    """The text of every value a notebook glued (myst-nb ``glue``), by name."""
    nb = json.loads(Path(notebook).read_text())
    out = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            if meta:
                text = o.get("data", {}).get(meta.get("mime_prefix", "") + "text/plain")
                if text is not None:
                    out[meta["name"]] = "".join(text).strip("'\"")
    return out


def _shown(value: Any) -> Any:
    """A string parameter through :func:`paths.shown` (repo-relative); other values unchanged."""
    return paths.shown(value) if isinstance(value, str) else value


def fit_parameters(chapter: str, params: dict[str, Any], source: str = "the parameters file") -> dict[str, Any]:
    """``params`` (e.g. a ``configs/paper`` file) fitted to ``chapter``: a chapter that compares ``pairs`` gets
    ``video_model``/``image_model`` as one pair; a name the chapter does not take is left out, with a note (one
    file serves every chapter)."""
    names = set(chapter_parameters(chapter))
    params = dict(params)
    if "pairs" in names and "video_model" not in names and "video_model" in params:
        video = params.pop("video_model")
        params.setdefault("pairs", {Path(str(video)).name: [video, params.pop("image_model", video)]})
    dropped = sorted(k for k in params if k not in names)
    if dropped:
        print(f"mapflow run: {chapter} takes no {', '.join(dropped)} (from {source}); left out")
    return {k: v for k, v in params.items() if k in names}


#: Exceptions a chapter raises on purpose, each with a message naming the parameter or the fix (not failures of
#: mapflow's code): no baseline-correct question, a chapter for the embedded models only, ambiguous answer tokens.
CLEAR_STOPS = ("NoCorrectAnswers", "NotApplicable", "SpanError")


def run_on_classes(chapter: str, families: Sequence[str], out_dir: str | Path,
                   parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run ``chapter`` on a tiny random-weight copy of each model class in ``families`` (the "your model" page).

    For each class: ``mapflow tiny-vlm CLASS --out OUT/CLASS/model``, then ``mapflow run CHAPTER -p video_model …
    -p image_model …`` (the same folder for both) with ``parameters``, executed into ``OUT/CLASS/CHAPTER.ipynb``
    (here in one kept :class:`Kernel` for all classes, each run from an empty namespace: the same results as
    those commands, without a kernel start per class). Returns per class ``{"class", "model", "notebook",
    "seconds", "glue", "command"}``; a run that fails keeps its error (``"error"``) and the others go on.
    """

    if chapter not in chapters():
        raise ValueError(f"no chapter {chapter!r}; chapters: {', '.join(chapters())}")
    out_dir = Path(out_dir)
    with Kernel() as kernel:
        return [_run_on_class(chapter, name, out_dir, parameters or {}, kernel) for name in families]


def _run_on_class(chapter: str, name: str, out_dir: Path, parameters: dict[str, Any], kernel: Kernel) -> dict:
    """One class's row of :func:`run_on_classes`."""
    model = out_dir / name / "model"
    params = {"video_model": str(model), "image_model": str(model), **parameters}
    shown = {k: _shown(v) for k, v in params.items()}
    opts = " ".join(f"-p {k} {shlex.quote(v if isinstance(v, str) else json.dumps(v))}" for k, v in shown.items())
    row = {"class": name, "model": model, "notebook": out_dir / name / f"{chapter}.ipynb", "glue": {},
           "command": f"mapflow tiny-vlm {name} --out {_shown(str(model))}\n"
                      f"mapflow run {chapter} {opts} --out {_shown(str(out_dir / name))}"}
    t = time.perf_counter()
    try:
        save_tiny(name, model)
        run_chapter(chapter, params, out=row["notebook"], progress=False, kernel=kernel)
        row["glue"] = read_glue(row["notebook"])
    except Exception as e:  # noqa: BLE001 -- one class failing must not lose the others' runs
        name_ = getattr(e, "ename", None)
        if name_ in CLEAR_STOPS:  # the chapter's own guard (e.g. random weights answered nothing correctly)
            row["stop"] = f"{name_}: {getattr(e, 'evalue', '')}".replace(str(model), _shown(str(model)))
        row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    row["seconds"] = time.perf_counter() - t
    return row
