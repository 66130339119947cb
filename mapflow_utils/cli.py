"""The ``mapflow`` command: ``mapflow data synth``, ``mapflow run CHAPTER -p name value``, ``mapflow book``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from . import paths


def parse_value(text: str) -> Any:
    """Parse a ``-p`` value like papermill: numbers, booleans, None, lists (``[a, b]``) and strings."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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


def run_chapter(chapter: str, parameters: dict[str, Any] | None = None, out: str | Path | None = None,
                name: str = "default", progress: bool = True) -> Path:
    """Execute ``notebooks/<chapter>.md`` with papermill and return the executed notebook's path.

    Output goes to ``out`` (a file or folder) or ``runs/<name>/<chapter>.ipynb``; a chapter that declares
    ``claims_file`` writes its claims beside it (``<chapter>.claims.json``). Kernels run with one torch thread
    unless ``OMP_NUM_THREADS`` is set.
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
            pm.execute_notebook(str(nb), str(dest), parameters=parameters, kernel_name="python3",
                                cwd=str(dest.parent), progress_bar=progress, log_output=False,
                                extra_arguments=["--IPKernelApp.log_level=CRITICAL"])  # no kernel log lines
    finally:
        if before is None:
            os.environ.pop(paths.FIGURES_ENV, None)
        else:
            os.environ[paths.FIGURES_ENV] = before
    clean_notebook(dest)
    write_results(dest)
    return dest


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
    -p image_model …`` (the same folder for both) with ``parameters``, executed into ``OUT/CLASS/CHAPTER.ipynb``.
    Returns per class ``{"class", "model", "notebook", "seconds", "glue", "command"}``; a run that fails keeps its
    error (``"error"``) and the others go on.
    """
    from .tiny_vlms import save_tiny

    if chapter not in chapters():
        raise ValueError(f"no chapter {chapter!r}; chapters: {', '.join(chapters())}")
    out_dir = Path(out_dir)
    rows = []
    for name in families:
        model = out_dir / name / "model"
        params = {"video_model": str(model), "image_model": str(model), **(parameters or {})}
        shown = {k: _shown(v) for k, v in params.items()}
        opts = " ".join(f"-p {k} {shlex.quote(v if isinstance(v, str) else json.dumps(v))}" for k, v in shown.items())
        row = {"class": name, "model": model, "notebook": out_dir / name / f"{chapter}.ipynb", "glue": {},
               "command": f"mapflow tiny-vlm {name} --out {_shown(str(model))}\n"
                          f"mapflow run {chapter} {opts} --out {_shown(str(out_dir / name))}"}
        t = time.perf_counter()
        try:
            save_tiny(name, model)
            run_chapter(chapter, params, out=row["notebook"], progress=False)
            row["glue"] = read_glue(row["notebook"])
        except Exception as e:  # noqa: BLE001 -- one class failing must not lose the others' runs
            name_ = getattr(e, "ename", None)
            if name_ in CLEAR_STOPS:  # the chapter's own guard (e.g. random weights answered nothing correctly)
                row["stop"] = f"{name_}: {getattr(e, 'evalue', '')}".replace(str(model), _shown(str(model)))
            row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        row["seconds"] = time.perf_counter() - t
        rows.append(row)
    return rows


def status_text(provenances: dict[str, dict]) -> str:
    """The status page (QuantEcon's): per chapter its run time, results cached against computed, commit, date and
    machine (``provenances``: chapter -> the ``provenance`` of its ``results.json``, empty if not executed), headed
    by the commit of the newest execution and the pages executed at another one, which it names."""
    from .tables import markdown_table

    rows, runs = [], []
    for ch, prov in provenances.items():
        rows.append([f"{{doc}}`{ch}`", f"{prov['run_seconds']:.0f}" if prov else "not executed",
                     f"{prov.get('results_cached', 0)} / {prov.get('results_computed', 0)}" if prov else "",
                     f"`{prov.get('commit', '')}`", prov.get("executed", "not recorded"), prov.get("machine", "")])
        if prov:
            runs.append((prov.get("executed", ""), prov.get("commit", ""), ch))
    head = ""
    if runs:
        newest = max(runs)[1]
        older = [f"{{doc}}`{ch}` (`{c}`)" for _, c, ch in runs if c != newest]
        head = (f"Every page was executed at commit `{newest}`." if not older else
                f"The newest execution is at commit `{newest}`; executed at another commit: {', '.join(older)} "
                "(rerun `mapflow book` for one commit throughout).")
        if newest.endswith("+local changes"):
            head += " That commit had local changes: run `make book` on a clean checkout for a reproducible record."
    return ("# Status\n\nHow each page of this book was last executed (`mapflow book`, one torch thread per chapter), "
            "from the `<chapter>.results.json` files beside the executed chapters. Run times include loading the "
            "models; results come from the book's committed cache (`data/results/`) where they were already "
            f"there.\n\n{head}\n\n" + markdown_table(rows, ["chapter", "run time (s)", "results cached / computed",
                                                          "commit", "executed", "machine"]) + "\n")


def write_status(book: Path = paths.BOOK) -> Path:
    """``book/status.md`` (:func:`status_text`) from the ``results.json`` files beside the executed chapters."""
    provs = {}
    for ch in chapters():
        f = book / f"{ch}.results.json"
        provs[ch] = (json.loads(f.read_text()).get("provenance") or {}) if f.exists() else {}
    return paths.write_if_changed(book / "status.md", status_text(provs))


def summary_text(book: Path = paths.BOOK) -> str:
    """The landing page's "what reproduces here" block, from the claims files beside the executed chapters (never
    typed): per chapter, its headline claim and verdict and the count of each verdict, then the totals."""
    from . import claims
    from .tables import markdown_table

    order = chapter_defaults("verdicts")["chapters"]  # the claims page's order: §3.2–3.5, then the appendices
    collected = claims.collect([book / f"{ch}.claims.json" for ch in order])
    n = claims.counts(collected)
    return ("<!-- generated by `mapflow book` from book/<chapter>.claims.json; do not edit -->\n\n"
            + markdown_table(claims.chapter_rows(collected),
                             ["chapter", "headline claim", "verdict here", " / ".join(claims.VERDICTS)])
            + f"\n\nOf {sum(n.values())} verdicts in the book (each claim once), {n['reproduces']} reproduce, {n['partly']} partly and "
              f"{n['does not reproduce']} do not ({{doc}}`verdicts` lists them all, with the paper's numbers "
              "beside ours).\n")


def write_summary(book: Path = paths.BOOK) -> Path:
    """``book/_summary.md`` (:func:`summary_text`), which the landing page includes."""
    return paths.write_if_changed(book / "_summary.md", summary_text(book))


class BookError(RuntimeError):
    """The book cannot be built here; the message names the fix."""


def require_jupyter_book_1() -> str:
    """The installed Jupyter Book's version, if it is 1.x. Jupyter Book 2 (mystmd, what a plain ``pip install
    jupyter-book`` gives now) reads neither ``_config.yml``/``_toc.yml`` nor saved widget state nor ``glue``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("jupyter-book")
    except PackageNotFoundError:
        raise BookError("Jupyter Book is not installed: run `make install` (it pins jupyter-book==1.0.4.post1)") \
            from None
    if not v.startswith("1."):
        raise BookError(f"jupyter-book {v} is installed, but this book needs Jupyter Book 1 (jupyter-book==1.0.4.post1, "
                        "as pinned in pyproject.toml): Jupyter Book 2 cannot render the chapters' saved widget "
                        "state or glued values, nor read _config.yml/_toc.yml. Run `pip install "
                        "jupyter-book==1.0.4.post1` (or `make install`).")
    return v


def build_book(execute: bool = True, only: Sequence[str] | None = None) -> Path:
    """Execute every chapter into ``book/`` (unless ``execute=False``) and build the HTML with Jupyter Book 1.

    Returns ``_build/html/index.html``.
    """
    require_jupyter_book_1()
    if execute:
        for ch in only or chapters():
            t = time.perf_counter()
            run_chapter(ch, out=paths.BOOK / f"{ch}.ipynb", progress=False)
            print(f"executed {ch} in {time.perf_counter() - t:.1f} s", flush=True)
        write_status()
    write_summary()
    from .classroom import page

    page()
    from .publish import write_book_config

    config = write_book_config(paths.ROOT / "_build" / "_config.yml")  # links and buttons from repository.url
    cmd = [sys.executable, "-m", "jupyter_book", "build", str(paths.ROOT), "--config", str(config)]
    jb = Path(sys.executable).with_name("jupyter-book")
    if jb.exists():
        cmd = [str(jb), "build", str(paths.ROOT), "--config", str(config)]
    subprocess.run(cmd, check=True)
    index = paths.ROOT / "_build" / "html" / "index.html"
    print(f"book: {index}")
    return index


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mapflow", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    data = sub.add_parser("data", help="data sets").add_subparsers(dest="data_cmd", required=True)
    synth = data.add_parser("synth", help="write synthetic TVBench-format videos + json")
    synth.add_argument("--out", required=True, help="output folder (gets json/ and video/)")
    synth.add_argument("--n-per-task", type=int, default=100, help="questions per task")
    synth.add_argument("--seed", type=int, default=0, help="generator seed")
    synth.add_argument("--tasks", nargs="*", default=None, help="tasks (default: the paper's five)")
    synth.add_argument("--long", action="store_true", help="long-video variant (64 frames; §D.1)")

    run = sub.add_parser("run", help="execute a chapter notebook with papermill")
    run.add_argument("chapter", help=f"chapter name (a notebook in {paths.NOTEBOOKS})")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a parameter; values are parsed as YAML (numbers, lists, true/false, null)")
    run.add_argument("-r", "--raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a parameter kept as a string")
    run.add_argument("-f", "--parameters-file", default=None, metavar="YAML",
                     help="parameters from a YAML mapping (name: value); -p/-r given as well override them")
    run.add_argument("--shard", default=None, metavar="i/n|slurm",
                     help="run only this share of the questions into the shared result cache (slurm: from the "
                          "array job's environment); then run once without --shard to render the page")
    run.add_argument("--shards", type=int, default=None, metavar="N",
                     help="run N local processes (shards 0/N … N-1/N), then the unsharded run that renders the page")
    run.add_argument("--name", default="default", help="run name: output goes to runs/<name>/<chapter>.ipynb")
    run.add_argument("--out", default=None, help="output notebook or folder (overrides --name)")

    card = sub.add_parser("card", help="evaluate a trained model folder and write its model card")
    card.add_argument("--model", required=True, help="the model folder (e.g. data/models/tiny-videollm-ft)")
    card.add_argument("--runs", nargs="+", required=True, help="training run folders, in order")
    card.add_argument("--title", required=True)
    card.add_argument("--images", type=int, default=200, help="held-out images for image-QA accuracy")
    card.add_argument("--mechanism", type=int, default=0,
                      help="questions per task for a first look at the knockout sweeps (0: none)")
    card.add_argument("--window", type=int, default=3, help="knockout window for --mechanism")
    card.add_argument("--only", nargs="*", default=None,
                      help="SmolLM2 models: compute only these evaluation pieces (to share the work between "
                           "processes); the card is written once every piece is there")

    book = sub.add_parser("book", help="execute the chapters into book/ and build the HTML (Jupyter Book 1)")
    book.add_argument("--no-execute", action="store_true", help="build from the executed notebooks as they are")
    book.add_argument("--chapters", nargs="*", default=None, help="execute only these chapters")

    sub.add_parser("train", help="train the embedded models (see mapflow train -h)", add_help=False)

    asg = sub.add_parser("assignments", help="the classroom assignments (otter-grader): build, grade")
    asg_sub = asg.add_subparsers(dest="asg_cmd", required=True)
    ab = asg_sub.add_parser("build", help="otter assign each master into dist/assignments/<name>/ (student and "
                                          "autograder notebooks, the autograder zip); the solutions must pass")
    ab.add_argument("names", nargs="*", help="assignments (default: all)")
    ag = asg_sub.add_parser("grade", help="grade submissions locally with the autograder zip (otter run, no Docker)")
    ag.add_argument("name", help="the assignment, e.g. a1_knockout")
    ag.add_argument("submissions", nargs="+", help="submitted notebooks (.ipynb) or export zips")
    ag.add_argument("--out", default=None, help="also write the scores as CSV here")
    ag.add_argument("--dist", default=None, help="the built assignment folder (default: dist/assignments/<name>)")

    tv = sub.add_parser("tiny-vlm", help="save a tiny random-weight copy of a supported model class (for trying "
                                         "chapters on every class without downloads)")
    tv.add_argument("model_class", help="e.g. Qwen2VLForConditionalGeneration, or a paper layout: "
                                        "PllavaForConditionalGeneration, LlavaNextForConditionalGeneration (llava-v1.6), "
                                        "InternVLChatV1_5 (see mapflow_utils.tiny_vlms.LAYOUTS)")
    tv.add_argument("--out", required=True, help="output folder (pass it as a chapter's video_model)")
    tv.add_argument("--seed", type=int, default=0)

    cv = sub.add_parser("convert", help="convert an InternVL-Chat V1.5 checkpoint (the paper's Mini-InternVL) to "
                                        "transformers' InternVL + Phi-3, without its remote code (models.load does "
                                        "this by itself, once, into the cache)")
    cv.add_argument("src", help="the original checkpoint folder (config.json model_type internvl_chat)")
    cv.add_argument("dst", help="output folder (load it with mapflow_utils.models.load, or pass it as video_model)")
    pc = sub.add_parser("paper-configs", help="write configs/paper/<model>.yaml, the paper's setup per subject, "
                                              "from data/paper/numbers.yaml")
    pc.add_argument("--out", default=None, help="output folder (default: configs/paper)")

    ev = sub.add_parser("eval", help="multiple-choice accuracy per task of a model on a TVBench-format folder")
    ev.add_argument("--model", required=True, help="model folder or hub id (loaded with mapflow_utils.models.load)")
    ev.add_argument("--data", default=None, help="TVBench-format folder (default: the shipped synthetic split)")
    ev.add_argument("--format", default=None, choices=["letter", "content"],
                    help="answer format (default: the model's own: letter for the SmolLM2 pair, content for the tiny)")
    ev.add_argument("--n-per-task", type=int, default=None, help="seeded subset per task (default: all)")
    ev.add_argument("--controls", action="store_true", help="also the single-frame and shuffled-frame controls")
    ev.add_argument("--images", type=int, default=0, help="also image-QA accuracy on this many held-out images")

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        if len(argv) > 1 and argv[1] == "smol-tower":
            from .perception import main as tower_main

            return tower_main(argv[1:])
        if len(argv) > 1 and argv[1].startswith("smol-"):
            from .train_smol import main as smol_main

            return smol_main(argv[1:])
        from .train import main as train_main

        return train_main(argv[1:])
    args = parser.parse_args(argv)
    if args.cmd == "data":
        from .synthetic import LONG, SynthConfig, write_tvbench
        from .data import PAPER_TASKS

        out = write_tvbench(args.out, n_per_task=args.n_per_task, seed=args.seed,
                            tasks=args.tasks or PAPER_TASKS, cfg=LONG if args.long else SynthConfig(), progress=True)
        print(f"wrote {out}")
    elif args.cmd == "run":
        params = {}
        if args.parameters_file:
            loaded = yaml.safe_load(Path(args.parameters_file).read_text())
            if not isinstance(loaded, dict):
                raise SystemExit(f"mapflow run: {args.parameters_file} must hold a YAML mapping of parameter: value")
            params.update(fit_parameters(args.chapter, loaded, args.parameters_file))
        params.update({k: parse_value(v) for k, v in args.parameter})
        params.update({k: v for k, v in args.raw})
        if args.shard:
            params["shard"] = args.shard
        if args.shards:
            run_shards(args.chapter, params, args.shards, name=args.name)
        print(run_chapter(args.chapter, params, out=args.out, name=args.name))
    elif args.cmd == "eval":
        from .cards import evaluate
        from .models import answer_format

        evaluate(args.model, args.data, args.format or answer_format(args.model), args.n_per_task, args.controls,
                 args.images)
    elif args.cmd == "card":
        from . import cards, smol

        if smol.is_parts(args.model):
            ev = cards.evaluate_card(args.model, images=args.images, only=args.only)
            if ev is None:
                print(f"computed {args.only}; the card is written once every piece of {cards.CARD_PIECES} is there")
                return 0
            print(cards.write_smol_card(args.model, args.runs, args.title, ev, cards.role(args.model)))
            return 0

        table = cards.evaluate(args.model, controls=True, images=args.images)
        extra = cards.mechanism(args.model, args.mechanism, args.window) if args.mechanism else ""
        print(cards.write_tiny_card(args.model, args.runs, args.title, table, extra))
    elif args.cmd == "tiny-vlm":
        from .tiny_vlms import LAYOUTS, save_tiny

        if args.model_class not in LAYOUTS:
            raise SystemExit(f"mapflow tiny-vlm: no tiny {args.model_class!r}; known: {', '.join(LAYOUTS)}")
        print(save_tiny(args.model_class, args.out, args.seed))
    elif args.cmd == "convert":
        from .internvl_chat import convert

        print(convert(args.src, args.dst))
    elif args.cmd == "paper-configs":
        from .experiments import write_subject_configs

        for path in write_subject_configs(args.out):
            print(paths.shown(path))
    elif args.cmd == "book":
        build_book(execute=not args.no_execute, only=args.chapters)
    elif args.cmd == "assignments":
        _assignments(args)
    return 0


def _assignments(args) -> None:
    from . import classroom

    if args.asg_cmd == "build":
        for name in args.names or classroom.ASSIGNMENTS:
            dist = classroom.build(name)
            print(f"{name}: {paths.shown(str(classroom.student_notebook(dist)))} (students), "
                  f"{paths.shown(str(classroom.autograder_zip(dist)))} (grading)")
        return
    dist = Path(args.dist) if args.dist else classroom.DIST / args.name
    rows = []
    for sub in args.submissions:
        g = classroom.grade(dist, Path(sub))
        rows.append([sub] + [f"{s:g}/{p:g}" for s, p in g.questions.values()] + [f"{g.total[0]:g}/{g.total[1]:g}"])
        print(f"{sub}: {g.total[0]:g}/{g.total[1]:g}")
        for q, (s, p) in g.questions.items():
            print(f"  {q}: {s:g}/{p:g}" + (f"  {g.messages[q]}" if q in (g.messages or {}) else ""))
    if args.out:
        import csv

        with open(args.out, "w", newline="") as f:
            csv.writer(f).writerows([["submission"] + list(g.questions) + ["total"]] + rows)


if __name__ == "__main__":
    raise SystemExit(main())
