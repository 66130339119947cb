"""What every chapter does the same way, so that a chapter reads as claim, parameters, calls, figures, prose and
verdict: loading its subjects and data, showing a table, gluing values, and the closing "rerun" command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from . import __version__, paths
from .data import QADataset, load_tvbench
from .tables import chance, finding_table, markdown_table
from .models import answer_format as own_format, default_dtype, load
from .paper import paper_window


#: When this chapter's kernel imported the module (the first code cell): the page's run time starts here.
STARTED = time.time()


def _quiet_pages() -> None:
    """Executed pages show no progress or weight-loading bars (they would freeze at 100% with a rate that changes
    on every run); terminal use of the package keeps them."""
    import os

    os.environ["MAPFLOW_PROGRESS"] = "0"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


_quiet_pages()


class NotApplicable(RuntimeError):
    """A chapter asked of a model it is not about (e.g. the models chapter of a model without shipped training
    logs and evaluation); the message says what to run instead."""


def require_embedded(model_dir: str, chapter: str, instead: str) -> None:
    """Stop a chapter that describes mapflow's own trained models (training logs, ``eval.json``) with a clear
    message when ``model_dir`` is not one of them."""
    d = Path(model_dir)
    if not (d / "eval.json").is_file() or not (d / "training").is_dir():
        raise NotApplicable(f"The {chapter} chapter describes mapflow's embedded models, from their training logs and "
                            f"shipped evaluation (eval.json); {model_dir} has neither. {instead}")


@dataclass
class Subjects:
    """A chapter's Video-FT and ImageLLM (adapters, see :func:`mapflow_utils.models.load`), its questions and its
    result cache."""

    video: Any
    image: Any
    ds: QADataset
    cache: Path
    video_dir: str
    image_dir: str

    @property
    def n_layers(self) -> int:
        return self.video.num_layers


def setup(*, video_model: str | None = None, image_model: str | None = None, data_dir: str | None = None,
          tasks: Sequence[str] | None = None, n_per_task: int | None = None, seed: int = 0, device: str = "cpu",
          results_dir: str | None = None, verify_videos: bool = False, dtype: str | None = None,
          device_map: str | None = None, shard: str | None = None, **_others: Any) -> Subjects:
    """Load the pair (defaults: the book's subject, :data:`paths.SUBJECT`), the questions (default: the shipped
    held-out synthetic split; a seeded subset of ``n_per_task`` per task) and the cache folder. ``verify_videos``
    decodes every video once first and leaves out, with a warning listing them, those that fail; otherwise a video
    that fails mid-run is left out then (the experiments list it at the end). ``dtype`` None: float32 on CPU,
    bfloat16 on a GPU; ``device_map`` (e.g. ``"auto"``) spreads a large model over several GPUs. Keywords only, as
    a chapter passes its shared parameters: ``setup(**parameters.of(globals()))``; the shared parameters setup does
    not use (window, answer_format, …) are accepted and left to the chapter."""

    video_dir = paths.model_dir(video_model, paths.SUBJECT[0])
    image_dir = paths.model_dir(image_model, paths.SUBJECT[1])
    dtype = dtype or default_dtype(device, device_map)
    _, _, video = load(video_dir, device=device, dtype=dtype, device_map=device_map)
    _, _, image = load(image_dir, device=device, dtype=dtype, device_map=device_map)
    ds = questions(data_dir, tasks, n_per_task, seed, verify_videos, shard)
    return Subjects(video, image, ds, paths.cache_dir(results_dir), video_dir, image_dir)


def defaults(s: Subjects, answer_format: str | None, window: int | None) -> tuple[str, int]:
    """A chapter's ``answer_format`` and ``window`` where its parameters leave them ``None``: the Video-FT's own
    format (``letter`` for the SmolLM2 pair and real checkpoints, ``content`` for the tiny from-scratch models) and
    the paper's window of 9 of 32 layers scaled to its depth (rounded up: 9 for 30 layers, 3 for 8)."""

    return answer_format or own_format(s.video_dir), window or paper_window(s.video.num_layers)


def questions(data_dir: str | None, tasks: Sequence[str] | None, n_per_task: int | None, seed: int,
              verify_videos: bool = False, shard: str | None = None) -> QADataset:
    """A chapter's questions (see :func:`setup`); ``shard`` keeps this process's share (:meth:`QADataset.shard`)."""
    return load_tvbench(paths.data_dir(data_dir), tasks=tasks, n_per_task=n_per_task, seed=seed,
                        on_error="skip" if verify_videos else "raise", verify_videos=verify_videos).shard(shard)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Display a table (Markdown) in the page."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(rows, headers)))


def glue(**values: Any) -> None:
    """Glue each value under its name for the prose (``{glue:text}`name```), without displaying it."""
    from myst_nb import glue as _glue

    for name, value in values.items():
        _glue(name, value, display=False)


def finding(claim, figure, accuracy: dict, samples) -> None:
    """Glue what the box at the top of every chapter shows (``finding_*``): the paper's claim, this book's verdict
    with its rule and numbers, the headline ``figure``, and the subject's accuracy on the chapter's questions
    against chance and one random frame (``accuracy``: :func:`~mapflow_utils.experiments.subject_accuracy`)."""
    from IPython.display import Markdown


    glue(finding_claim=claim.claim, finding_verdict=claim.verdict, finding_rule=claim.rule, finding_ours=claim.ours,
         finding_paper=claim.paper, finding_figure=figure,
         finding_accuracy=Markdown(finding_table(accuracy, chance(samples))))


#: The parameters of "rerun with your model" for the paper's main model on a GPU.
PAPER_RUN = "-p answer_format letter -p window 9 -p n_per_task 200"


def rerun(chapter: str, options: str = PAPER_RUN, video_model: str = "/path/to/LLaVA-NeXT-Video-7B-FT",
          data: str = "-p data_dir /path/to/TVBench", device: str = "-p device cuda") -> None:
    """Show the command that reruns ``chapter`` on a real checkpoint and the real TVBench."""
    from IPython.display import Markdown, display

    cmd = f"mapflow run {chapter} -p video_model {video_model} {data} \\\n    {options} {device} --name llava7b"
    display(Markdown(f"```bash\n{cmd}\n```"))


def _commit() -> str:
    import subprocess

    try:
        sha = subprocess.run(["git", "-C", str(paths.ROOT), "rev-parse", "--short=10", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(paths.ROOT), "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":!book", ":!data/results"],  # the book's own outputs do not count
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha + ("+local changes" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(subjects: Subjects | None = None, seed: int | None = None, ds: QADataset | None = None) -> dict:
    """What produced this page: commit, versions, machine, device and dtype, seed, model weights' hashes, the data
    split, results read from the cache against computed, and the run time so far."""
    import os
    import platform

    import torch
    import transformers

    from .cache import STATS, model_fingerprint

    from datetime import datetime, timezone

    out = {"commit": _commit(), "executed": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "mapflow": __version__, "transformers": transformers.__version__,
           "torch": torch.__version__, "python": platform.python_version(),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch thread(s)"}
    if subjects is not None:
        p = next(subjects.video.model.parameters())
        out.update(device=str(p.device), dtype=str(p.dtype).replace("torch.", ""),
                   video_model=paths.shown(subjects.video_dir), video_weights=model_fingerprint(subjects.video),
                   image_model=paths.shown(subjects.image_dir), image_weights=model_fingerprint(subjects.image))
        ds = ds or subjects.ds
    if ds is not None:
        out["data"] = f"{paths.shown(ds.root)} ({len(ds)} questions)"
    if seed is not None:
        out["seed"] = seed
    out.update(results_cached=STATS["cached"], results_computed=STATS["computed"],
               run_seconds=round(time.time() - STARTED, 1))
    return out


def write_figure_data(path: str | None = None) -> Path | None:
    """Write the data behind every figure this kernel drew (:data:`mapflow_utils.plots.DRAWN`, in drawing order) to
    ``path`` (default: where the runner said, :data:`mapflow_utils.paths.FIGURES_ENV`; nothing when neither)."""
    import json
    import os
    import sys

    path = path or os.environ.get(paths.FIGURES_ENV)
    if not path:
        return None
    plots = sys.modules.get("mapflow_utils.plots")  # a chapter that drew nothing never imported it
    out = Path(path)
    out.write_text(json.dumps({"figures": plots.DRAWN if plots else []}, ensure_ascii=False,
                              separators=(",", ":")) + "\n")
    return out


def footer(subjects: Subjects | None = None, seed: int | None = None, ds: QADataset | None = None) -> None:
    """The page's provenance footer (a short line of small text), also glued as ``provenance`` (JSON) for the
    runner's ``<chapter>.results.json``."""
    import json

    from IPython.display import Markdown, display

    info = provenance(subjects, seed, ds)
    glue(provenance=json.dumps(info))
    write_figure_data()
    parts = [f"commit `{info['commit']}`", f"mapflow {info['mapflow']}, transformers {info['transformers']}, "
             f"torch {info['torch']}", info["machine"]]
    if "device" in info:
        parts.append(f"{info['device']}, {info['dtype']}; Video-FT `{info['video_model']}` ({info['video_weights']}), "
                     f"ImageLLM `{info['image_model']}` ({info['image_weights']})")
    if "data" in info:
        parts.append(f"data `{info['data']}`" + (f", seed {info['seed']}" if "seed" in info else ""))
    parts.append(f"results: {info['results_cached']} read from the cache, {info['results_computed']} computed; "
                 f"run time {info['run_seconds']:.0f} s")
    display(Markdown("<small>Produced by: " + "; ".join(parts) + ".</small>"))
