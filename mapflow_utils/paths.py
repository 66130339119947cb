"""Where the shipped data and the book live, independent of the current directory."""

from __future__ import annotations

from pathlib import Path

#: The repository root (the package is installed in editable mode from it).
ROOT: Path = Path(__file__).resolve().parent.parent
#: Shipped data: ``synthetic/`` (evaluation split), ``models/`` (tiny weights), ``paper/`` (the paper's numbers).
DATA: Path = ROOT / "data"
#: The shipped held-out synthetic split in TVBench layout.
SYNTHETIC: Path = DATA / "synthetic"
NOTEBOOKS: Path = ROOT / "notebooks"
BOOK: Path = ROOT / "book"


def data_dir(path: str | Path | None) -> Path:
    """Resolve a chapter's ``data_dir`` parameter: ``None`` means the shipped synthetic split."""
    return SYNTHETIC if path in (None, "") else Path(path).expanduser().resolve()


#: The embedded models.
MODELS: Path = DATA / "models"
VIDEO_MODEL: Path = MODELS / "tiny-videollm-ft"
IMAGE_MODEL: Path = MODELS / "tiny-imagellm"


def model_dir(name: str | Path | None, default: Path) -> str:
    """Resolve a chapter's model parameter: ``None`` means the embedded model; a local folder or a hub id as is."""
    if name in (None, ""):
        return str(default)
    p = Path(name).expanduser()
    return str(p.resolve()) if p.exists() else str(name)


def cache_dir(path: str | Path | None) -> Path:
    """Resolve a chapter's ``results_dir``: ``None`` means ``runs/cache`` in the repository."""
    return ROOT / "runs" / "cache" if path in (None, "") else Path(path).expanduser().resolve()
