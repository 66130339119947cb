"""Result cache: one file per (experiment, sample), keyed by everything that made it.

The key of an experiment hashes the model weights, the processor/tokenizer, the model's dtype and device type,
every parameter of the experiment that changes a result (spec, window, format, ``only_correct``, …),
:data:`RESULTS_VERSION` and the versions of mapflow, transformers and torch; each sample adds the hash of its record
and video file. Writes are atomic (temporary file, then rename; the experiment's metadata file too), so an
interrupted run resumes where it stopped, shards of one run can share the cache, and nothing already stored is
recomputed; a changed model, processor, video, dtype or parameter misses the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

#: A temporary file of a result older than this (seconds) is a write that was killed (a write takes milliseconds,
#: after the computation): it is removed when the result is computed again.
ORPHAN_SECONDS = 60
#: Bump when a change of the engine or of an experiment changes its results: every cached result then misses.
RESULTS_VERSION = 2

_FINGERPRINTS: dict[int, str] = {}
#: Per process: results read from the cache ("cached") and computed ("computed"), for the pages' provenance.
STATS: Counter = Counter()
#: File hashes remembered by (path, size, mtime): a model's weights are read once, not on every load.
HASHES_FILE = Path(os.environ.get("MAPFLOW_HASHES", Path(__file__).resolve().parent.parent / "runs" / "file-hashes.json"))
_HASHES: dict[str, str] | None = None


def _remembered() -> dict[str, str]:
    global _HASHES
    if _HASHES is None:
        try:
            _HASHES = json.loads(HASHES_FILE.read_text())
        except (OSError, ValueError):
            _HASHES = {}
    return _HASHES


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-able parts (bytes as they are): cache keys."""
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


def file_hash(path: str | Path, chunk: int = 1 << 22, remember: bool = True) -> str:
    """Content hash of a file; with ``remember``, files of 1 MB or more are hashed once per (path, size, mtime) and
    the hash kept in :data:`HASHES_FILE` (a file rewritten in place gets a new mtime, hence a new hash)."""
    path = Path(path)
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo = _remembered() if remember and st.st_size >= 1 << 20 else None
    if memo is not None and key in memo:
        return memo[key]
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    if memo is not None:
        memo[key] = digest
        try:
            HASHES_FILE.parent.mkdir(parents=True, exist_ok=True)
            tmp = HASHES_FILE.with_name(f"{HASHES_FILE.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(memo))
            os.replace(tmp, HASHES_FILE)
        except OSError:
            pass  # a read-only place: hashes are recomputed next time, results stay correct
    return digest


def model_fingerprint(adapter) -> str:
    """Hash of the model's weights (the safetensors files of a local checkpoint, else the tensors in memory) and of
    its processor's configuration and tokenizer. Computed once per loaded model."""
    key = id(adapter.model)
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    src = Path(str(getattr(adapter.model, "name_or_path", "") or ""))
    files = sorted(src.rglob("*.safetensors")) if src.is_dir() else []  # adapters of a parts folder included
    if files:
        parts = src / "mapflow_parts.json"  # a SmolLM2 parts folder names its base by the GGUF's hash
        weights = fingerprint([file_hash(f) for f in files], parts.read_text() if parts.is_file() else "")
    else:
        h = hashlib.blake2b(digest_size=12)
        for name, t in sorted(adapter.model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(dtype=torch.uint8).numpy().tobytes())
        weights = h.hexdigest()
    proc = adapter.processor
    tok = proc.tokenizer
    style = getattr(proc, "question_style", "mapflow")  # the prompt's layout (keys of the default stay as they were)
    processor = fingerprint(proc.to_json_string() if hasattr(proc, "to_json_string") else repr(proc),
                   tok.backend_tokenizer.to_str() if hasattr(tok, "backend_tokenizer") else repr(tok.get_vocab()),
                   tok.chat_template or "", *([style] if style != "mapflow" else []))
    _FINGERPRINTS[key] = fingerprint(weights, processor)
    return _FINGERPRINTS[key]


def versions() -> dict[str, str]:
    import transformers

    from . import __version__

    return {"mapflow": __version__, "transformers": transformers.__version__, "torch": torch.__version__}


def sample_fingerprint(sample) -> str:
    """Hash of a sample's record (question, options, answer, window) and of its video file."""
    return fingerprint(sample.question, list(sample.candidates), sample.answer, sample.start, sample.end,
              file_hash(sample.video_path))


class ResultCache:
    """Stores arrays per sample under ``root/<experiment key>/<sample key>.npz``."""

    def __init__(self, root: str | Path | None, experiment: str, adapter, params: dict):
        self.root = None if root is None else Path(root)
        p = next(adapter.model.parameters())
        model = {"weights": model_fingerprint(adapter), "dtype": str(p.dtype), "device": p.device.type}
        self.key = fingerprint(experiment, model, params, versions(), RESULTS_VERSION)
        self.meta = {"experiment": experiment, "params": params, "model": model, "versions": versions(),
                     "results_version": RESULTS_VERSION}

    def _path(self, sample) -> Path:
        return self.root / self.key / f"{sample.task}-{sample.index}-{sample_fingerprint(sample)}.npz"

    def get_or_compute(self, sample, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The stored result of ``sample`` or ``compute()``'s, stored atomically."""
        if self.root is None:
            STATS["computed"] += 1
            return compute()
        path = self._path(sample)
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    stored = {k: z[k] for k in z.files}
                STATS["cached"] += 1
                return stored
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:  # truncated or garbage
                aside = path.with_name(path.name + ".corrupt")
                os.replace(path, aside)
                warnings.warn(f"{path}: unreadable cached result ({type(e).__name__}: {str(e)[:80]}); moved aside "
                              f"to {aside.name}, recomputed and replaced", stacklevel=2)
        for left in path.parent.glob(path.name + ".*.tmp") if path.parent.is_dir() else ():
            if time.time() - left.stat().st_mtime > ORPHAN_SECONDS:  # a write killed midway
                left.unlink(missing_ok=True)
        STATS["computed"] += 1
        result = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = path.parent / "experiment.json"
        if not meta.exists():
            tmp_meta = meta.with_name(f"experiment.json.{os.getpid()}.tmp")
            tmp_meta.write_text(json.dumps(self.meta, indent=1, default=str))
            os.replace(tmp_meta, meta)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **result)
        os.replace(tmp, path)
        return result
