"""Where the shipped data and the book live, independent of the current directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

#: The repository root (the package is installed in editable mode from it).
ROOT: Path = Path(__file__).resolve().parent.parent
#: Shipped data: ``synthetic/`` (evaluation split), ``models/`` (tiny weights), ``paper/`` (the paper's numbers).
DATA: Path = ROOT / "data"
#: The shipped held-out synthetic split in TVBench layout.
SYNTHETIC: Path = DATA / "synthetic"
#: The shipped long-video split (64-frame clips; §D.1).
SYNTHETIC_LONG: Path = DATA / "synthetic-long"
NOTEBOOKS: Path = ROOT / "notebooks"
BOOK: Path = ROOT / "book"


def data_dir(path: str | Path | None, default: Path = SYNTHETIC) -> Path:
    """Resolve a chapter's ``data_dir`` parameter: ``None`` means ``default`` (the shipped synthetic split)."""
    return default if path in (None, "") else Path(path).expanduser().resolve()


#: The embedded models.
MODELS: Path = DATA / "models"
VIDEO_MODEL: Path = MODELS / "tiny-videollm-ft"
IMAGE_MODEL: Path = MODELS / "tiny-imagellm"
#: The SmolLM2 pair (SmolLM2-135M-Instruct extended LLaVA-style; shipped as parts: vision + LoRA adapters).
SMOL_VIDEO_MODEL: Path = MODELS / "smol-videollm-ft"
SMOL_IMAGE_MODEL: Path = MODELS / "smol-imagellm"
#: The book's subject, what every chapter runs on when its ``video_model`` / ``image_model`` are None: the SmolLM2
#: pair (a pretrained 30-layer LLM, the paper's letter format). The tiny pairs are App. A/B's comparison.
SUBJECT: tuple[Path, Path] = (SMOL_VIDEO_MODEL, SMOL_IMAGE_MODEL)
#: The embedded (Video-FT, ImageLLM) pairs by size: ``base`` (8 layers x 128) and ``deep`` (12 layers x 96; App. A/B).
EMBEDDED_PAIRS: dict[str, tuple[Path, Path]] = {
    "base": (VIDEO_MODEL, IMAGE_MODEL),
    "deep": (MODELS / "tiny-deep-videollm-ft", MODELS / "tiny-deep-imagellm"),
}


def model_dir(name: str | Path | None, default: Path) -> str:
    """Resolve a chapter's model parameter: ``None`` means the embedded model; a local folder or a hub id as is."""
    if name in (None, ""):
        return str(default)
    p = Path(name).expanduser()
    if not p.exists() and not p.is_absolute() and (ROOT / p).exists():
        p = ROOT / p  # a repo-relative folder (e.g. data/models/...) from a notebook running elsewhere
    return str(p.resolve()) if p.exists() else str(name)


#: The book's result cache, committed: ``make book`` writes it and ``make test-book`` reads it (through
#: ``MAPFLOW_RESULTS``), so the executed pages are checked against results anyone can recompute.
BOOK_RESULTS: Path = DATA / "results"
#: The environment variable by which the runner (``mapflow run``/``mapflow book``) tells a chapter's kernel where to
#: write the data behind its figures (``plots.DRAWN``, by ``chapter.footer``): ``<chapter>.figures.json`` beside the
#: executed notebook, linked under every figure of the built page.
FIGURES_ENV = "MAPFLOW_FIGURES"


def write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` only when it differs from what is there: a generated page that is current is never
    rewritten, so tiers that read it while another regenerates it (``make -j2``) never see it half-written."""
    path = Path(path)
    if not (path.is_file() and path.read_text() == text):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def cache_dir(path: str | Path | None) -> Path:
    """Resolve a chapter's ``results_dir``: ``None`` means ``$MAPFLOW_RESULTS`` (a repo-relative or absolute folder;
    the Makefile's book targets set it to ``data/results``) or else ``runs/cache``."""
    if path in (None, ""):
        env = os.environ.get("MAPFLOW_RESULTS")
        if not env:
            return ROOT / "runs" / "cache"
        path = Path(env) if Path(env).is_absolute() else ROOT / env
    return Path(path).expanduser().resolve()


def work_cache(name: str) -> Path:
    """A cache of derived model files (converted bases, converted checkpoints): ``$MAPFLOW_CACHE/<name>`` or
    ``<repo>/runs/<name>``."""
    env = os.environ.get("MAPFLOW_CACHE")
    return (Path(env).expanduser() if env else ROOT / "runs") / name


def shown(path: str | Path) -> str:
    """An absolute path inside the repository as a repo-relative string (printed commands and executed pages stay
    valid in any clone); anything else unchanged."""
    p = Path(path)
    if p.is_absolute():
        try:
            return str(p.resolve().relative_to(ROOT))
        except ValueError:
            pass
    return str(path)


def is_subject(pair: Sequence) -> bool:
    """Whether a resolved (Video-FT, ImageLLM) pair is the book's own subject (:data:`SUBJECT`)."""
    return tuple(Path(p).resolve() for p in pair) == tuple(p.resolve() for p in SUBJECT)


def resolve_pairs(pairs: dict | None) -> dict[str, tuple[str, str]]:
    """App. A/B's ``pairs`` parameter: ``{name: [Video-FT, ImageLLM]}`` folders or hub ids, each resolved like
    ``video_model``; ``None`` means the book's subject and the embedded tiny pairs (``smol``, then
    :data:`EMBEDDED_PAIRS`)."""
    if pairs is None:
        return {name: (str(v), str(i)) for name, (v, i) in {"smol": SUBJECT, **EMBEDDED_PAIRS}.items()}
    return {name: (model_dir(v, VIDEO_MODEL), model_dir(i, IMAGE_MODEL)) for name, (v, i) in pairs.items()}
