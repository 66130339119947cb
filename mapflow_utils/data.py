"""Question-answer samples and the TVBench loader.

TVBench (Cores et al., 2024; ``FunAILab/TVBench`` on the Hugging Face hub, CC-BY-4.0) is laid out as::

    <root>/json/<task>.json          a list of records
    <root>/video/<task>/<file>       the videos (the hub ships ``video/<task>.zip``: extract it there)

A record has ``video`` (file name under ``video/<task>/``), ``question``, ``candidates`` (list of strings),
``answer`` (a string equal to one candidate), optionally ``start``/``end`` in seconds (Action Sequence and
Action Localization) and ``question_id``. Our synthetic data (:mod:`mapflow_utils.synthetic`) is written in the
same layout, so one loader serves both.

The ten TVBench tasks and their record counts (the benchmark's statistics figure, October 2024; the hub revision of
25 Oct 2024 revised Action Sequence and removed duplicates, and a later dump shows 437 Action Sequence records, so
the loader reports the counts it finds rather than trusting these):

================== ======  ==================== ======
task               records task                 records
================== ======  ==================== ======
action_antonym      320    action_count          536
action_sequence     528    action_localization   160
scene_transition    185    egocentric_sequence   200
moving_direction    232    object_shuffle        225
object_count        148    unexpected_action     120
================== ======  ==================== ======

The paper (Map the Flow, Table 1) uses the five in the left column (:data:`PAPER_TASKS`). Action Antonym videos
(NTU RGB+D) are not on the hub for licensing reasons; they must be requested from the NTU ROSE lab.
"""

from __future__ import annotations

import json
import math
import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np

from .paths import shown

__all__ = [
    "PAPER_TASKS",
    "TVBENCH_COUNTS",
    "DataError",
    "VideoError",
    "QASample",
    "QADataset",
    "load_tvbench",
    "sample_indices",
    "read_frames",
]

#: The paper's five tasks (Table 1), in the paper's order.
PAPER_TASKS: tuple[str, ...] = (
    "action_antonym",
    "action_sequence",
    "scene_transition",
    "moving_direction",
    "object_count",
)

#: Record counts of the real TVBench per task (statistics figure, Oct 2024); see the module docstring.
TVBENCH_COUNTS: dict[str, int] = {
    "action_antonym": 320,
    "action_count": 536,
    "action_localization": 160,
    "action_sequence": 528,
    "egocentric_sequence": 200,
    "moving_direction": 232,
    "object_count": 148,
    "object_shuffle": 225,
    "scene_transition": 185,
    "unexpected_action": 120,
}

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "video": str,
    "question": str,
    "candidates": list,
    "answer": str,
}


class DataError(ValueError):
    """A data set, record or file that cannot be used; the message names it and the fix."""


class VideoError(DataError):
    """A video that is missing or cannot be decoded; the message names the file and the fix."""


@dataclass(frozen=True)
class QASample:
    """One multiple-choice video question.

    ``candidates`` keeps the record's option order; ``answer`` is one of them. ``start``/``end`` (seconds), when
    present, bound the part of the video the question is about. ``extra`` keeps any other fields of the record
    (e.g. the synthetic ``caption``).
    """

    task: str
    index: int
    video_path: Path
    question: str
    candidates: tuple[str, ...]
    answer: str
    start: float | None = None
    end: float | None = None
    question_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def answer_index(self) -> int:
        """Position of ``answer`` in ``candidates``."""
        return self.candidates.index(self.answer)

    @property
    def uid(self) -> str:
        """A stable id: ``<task>/<question_id or index>``."""
        return f"{self.task}/{self.question_id or self.index}"

    def frames(self, num_frames: int = 8, backend: str = "auto") -> np.ndarray:
        """Decode ``num_frames`` frames (segment midpoints inside ``start``/``end``) as uint8 ``[T, H, W, 3]``."""
        return read_frames(self.video_path, num_frames, start=self.start, end=self.end, backend=backend)


@dataclass
class QADataset(Sequence[QASample]):
    """The loaded samples, plus what was skipped and why (never silently)."""

    samples: list[QASample]
    root: Path
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):  # type: ignore[override]
        return self.samples[i]

    def __iter__(self) -> Iterator[QASample]:
        return iter(self.samples)

    def by_task(self) -> dict[str, list[QASample]]:
        """Samples grouped by task, in load order."""
        out: dict[str, list[QASample]] = {}
        for s in self.samples:
            out.setdefault(s.task, []).append(s)
        return out

    def shard(self, shard: str | None) -> "QADataset":
        """This process's share of the questions: ``"i/n"`` keeps samples ``[i::n]`` (after the seeded subset, so
        the n shards of one run partition it); ``"slurm"`` reads ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``
        (an array ``--array=0-(n-1)``); ``None`` keeps all."""
        if shard in (None, ""):
            return self
        i, n = parse_shard(shard)
        return QADataset(self.samples[i::n], self.root, list(self.problems))

    def summary(self) -> str:
        """Counts per task and every skipped record, one per line."""
        lines = [f"{shown(self.root)}: {len(self.samples)} samples"]
        for task, items in self.by_task().items():
            lines.append(f"  {task}: {len(items)}")
        if self.problems:
            lines.append(f"  skipped {len(self.problems)}:")
            lines += [f"    - {p}" for p in self.problems]
        return "\n".join(lines)


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) or ``"slurm"`` (from the array job's environment) -> ``(i, n)``."""
    if shard == "slurm":
        try:
            i, n = int(os.environ["SLURM_ARRAY_TASK_ID"]), int(os.environ["SLURM_ARRAY_TASK_COUNT"])
        except KeyError as e:
            raise DataError(f"shard='slurm' needs {e.args[0]} (run it inside an sbatch --array job; "
                            "tools/mapflow.sbatch is a template), or pass shard='i/n'") from None
    else:
        try:
            i, n = (int(x) for x in str(shard).split("/"))
        except ValueError:
            raise DataError(f"shard={shard!r}: expected 'i/n' (e.g. '0/4') or 'slurm'") from None
    if not 0 <= i < n:
        raise DataError(f"shard={shard!r}: need 0 <= i < n")
    return i, n


def _check_record(rec: Any, where: str) -> None:
    if not isinstance(rec, dict):
        raise DataError(f"{where}: a record must be a JSON object, got {type(rec).__name__}. "
                        "Fix the file so that it is a list of objects.")
    for key, typ in _REQUIRED.items():
        if key not in rec:
            raise DataError(f"{where}: missing field '{key}' (every record needs video, question, candidates, "
                            "answer). Add it or remove the record.")
        if not isinstance(rec[key], typ):
            raise DataError(f"{where}: field '{key}' must be {typ.__name__}, got {type(rec[key]).__name__} "
                            f"({rec[key]!r:.60}). Fix the record.")
    cands = rec["candidates"]
    if len(cands) < 2 or not all(isinstance(c, str) and c for c in cands):
        raise DataError(f"{where}: 'candidates' must list at least two non-empty strings, got {cands!r:.80}.")
    if len(set(cands)) != len(cands):
        raise DataError(f"{where}: 'candidates' has duplicates {cands!r:.80}; options must be distinct.")
    if rec["answer"] not in cands:
        raise DataError(f"{where}: answer {rec['answer']!r} is not among candidates {cands!r}. "
                        "Fix the answer (it must equal one candidate string exactly) or remove the record.")
    for key in ("start", "end"):
        v = rec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                              or v < 0):
            raise DataError(f"{where}: '{key}' must be a finite number of seconds >= 0, got {v!r}. Fix the record "
                            "or drop the field (the whole video is then used).")
    if rec.get("start") is not None and rec.get("end") is not None and rec["end"] <= rec["start"]:
        raise DataError(f"{where}: end ({rec['end']}) must be after start ({rec['start']}).")
    if not rec["video"]:
        raise DataError(f"{where}: 'video' is empty. Name the file under the task's video folder.")


def _confined(video: str, root: Path, task: str, where: str) -> None:
    """Refuse a record's video that lies outside ``root/video/<task>/`` (absolute, ``..`` or a link out)."""
    folder = root / "video" / task
    if Path(video).is_absolute() or ".." in Path(video).parts:
        raise DataError(f"{where}: 'video' must be a file name inside {folder}, got {video!r} (absolute paths and "
                        "'..' are refused: videos are read from the data folder only). Move the file there and name "
                        "it relative to that folder, or pass allow_outside=True.")
    if not (folder / video).resolve().is_relative_to(folder.resolve()):
        raise DataError(f"{where}: video {video!r} resolves outside {folder} (a link out of the data folder). Copy "
                        "the file into that folder, or pass allow_outside=True.")


def _read_json(path: Path) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}). Re-save it as "
                        "UTF-8 (e.g. iconv -f latin1 -t utf-8) or re-download it.") from e
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}). "
                        "Re-download or fix the file.") from e
    if not isinstance(data, list):
        raise DataError(f"{path} must hold a JSON list of records, got {type(data).__name__}.")
    if not data:
        raise DataError(f"{path} has no records (empty task). Remove the task from `tasks` or restore the file.")
    return data


def load_tvbench(
    root: str | Path,
    tasks: Sequence[str] | None = None,
    n_per_task: int | None = None,
    seed: int = 0,
    on_error: Literal["raise", "skip"] = "raise",
    verify_videos: bool = False,
    num_frames: int = 8,
    allow_outside: bool = False,
) -> QADataset:
    """Load TVBench-format questions from ``root``.

    Args:
        root: folder with ``json/`` and ``video/`` (the real TVBench, or ``mapflow data synth`` output).
        tasks: task names (file stems under ``json/``); default :data:`PAPER_TASKS`.
        n_per_task: keep a seeded random subset of this many records per task (in file order); ``None`` keeps all.
        seed: seed of that subset.
        on_error: ``"raise"`` (default) stops at the first bad record or video with a :class:`DataError`;
            ``"skip"`` keeps the good records, lists the bad ones in ``QADataset.problems`` and warns once.
            Unknown or empty tasks always raise; an unreadable json file (not UTF-8, not JSON) leaves its task out
            with ``"skip"``.
        verify_videos: also open every video with the decoder (slower) and check that its ``start``/``end``
            window holds ``num_frames`` frames; by default only existence is checked (those errors then surface
            when the video is read, and a chapter leaves the question out and lists it).
        allow_outside: read a record's video even when it lies outside ``root/video/<task>/`` (an absolute path,
            ``..``, or a link to another disk); by default such a record is a :class:`DataError`.

    Returns:
        A :class:`QADataset`.
    """
    root = Path(root)
    if not (root / "json").is_dir():
        raise DataError(f"{root} has no json/ folder. Point `data_dir` at a TVBench-format folder (json/<task>.json "
                        "and video/<task>/), e.g. the shipped data/synthetic or `mapflow data synth --out DIR`.")
    tasks = list(PAPER_TASKS if tasks is None else tasks)
    if isinstance(tasks, str):
        tasks = [tasks]
    available = sorted(p.stem for p in (root / "json").glob("*.json"))
    samples: list[QASample] = []
    problems: list[str] = []
    for task in tasks:
        path = root / "json" / f"{task}.json"
        if not path.is_file():
            raise DataError(f"Unknown task {task!r}: there is no {path}. Available here: {', '.join(available)}.")
        try:
            records = _read_json(path)
        except DataError as e:
            if on_error == "raise" or "no records" in str(e):
                raise
            problems.append(f"task {task} left out: {e}")
            continue
        order = list(range(len(records)))
        if n_per_task is not None and n_per_task < len(records):
            order = sorted(random.Random(f"{seed}/{task}").sample(order, n_per_task))
        for i in order:
            rec = records[i]
            where = f"{path} record {i}"
            try:
                _check_record(rec, where)
                if not allow_outside:
                    _confined(rec["video"], root, task, where)
                video = root / "video" / task / rec["video"]
                if not video.is_file():
                    hint = (" Action Antonym videos (NTU RGB+D) are not on the hub: request them from the NTU ROSE "
                            "lab." if task == "action_antonym" else "")
                    raise VideoError(f"{where}: video file {video} not found. Extract video/{task}.zip into "
                                     f"{root / 'video' / task}/ or fix the record's 'video'.{hint}")
                if verify_videos:
                    try:
                        n, fps = _length(video)
                        _indices(video, n, num_frames, fps, rec.get("start"), rec.get("end"))
                    except VideoError as e:
                        raise VideoError(f"{where}: {e}") from e
            except DataError as e:
                if on_error == "raise":
                    raise
                problems.append(str(e))
                continue
            samples.append(QASample(
                task=task, index=i, video_path=video, question=rec["question"],
                candidates=tuple(rec["candidates"]), answer=rec["answer"],
                start=rec.get("start"), end=rec.get("end"),
                question_id=str(rec.get("question_id", "")),
                extra={k: v for k, v in rec.items() if k not in (*_REQUIRED, "start", "end", "question_id")},
            ))
    ds = QADataset(samples, root, problems)
    if problems:
        warnings.warn(f"load_tvbench skipped {len(problems)} bad record(s):\n" + "\n".join(problems), stacklevel=2)
    return ds


# --------------------------------------------------------------------------------------------- frames


def sample_indices(
    n_frames: int, num_segments: int, fps: float = 1.0, start: float | None = None, end: float | None = None
) -> np.ndarray:
    """Indices of ``num_segments`` uniformly spaced segment midpoints.

    The window is ``[round(start*fps), round(end*fps))`` clipped to ``[0, n_frames)`` (the whole video when
    ``start``/``end`` are None); it is cut into ``num_segments`` equal segments and the middle frame of each is
    taken (the MVBench/TVBench protocol). Returns int64 ``[num_segments]``. Raises :class:`VideoError` when the
    window holds no frame or fewer than ``num_segments`` (a window outside the clip is never silently widened, and
    a too-short clip never repeats frames).
    """
    lo = 0 if start is None else max(0, int(round(start * fps)))
    hi = n_frames if end is None else min(n_frames, int(round(end * fps)))
    if hi <= lo:
        raise VideoError(f"the window start={start} s, end={end} s holds no frame of a video of {n_frames} frames "
                         f"at {fps:g} fps ({n_frames / fps:.2f} s). Fix the record's start/end.")
    if hi - lo < num_segments:
        raise VideoError(f"{hi - lo} frame(s) in the window (start={start}, end={end}) of a {n_frames}-frame video, "
                         f"fewer than the {num_segments} frames asked: frames would repeat. Use a longer clip or "
                         "fewer frames (num_frames).")
    seg = (hi - lo) / num_segments
    idx = lo + np.floor(seg * (np.arange(num_segments) + 0.5)).astype(np.int64)
    return np.clip(idx, lo, hi - 1)


def _decord():
    try:
        import decord  # noqa: F401
    except ImportError:
        return None
    return decord


def _open_video(path: Path):
    """Open a video with decord (or PyAV), raising :class:`VideoError` for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video file {path} not found. Check `data_dir` and the record's 'video' field.")
    decord = _decord()
    if decord is not None:
        try:
            return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        except (RuntimeError, decord.DECORDError) as e:  # truncated files raise DECORDError, others RuntimeError
            raise VideoError(f"cannot decode video {path} (corrupt or truncated: {str(e).splitlines()[0][:120]}). "
                             "Re-download or re-extract it; load_tvbench(..., on_error='skip', verify_videos=True) leaves such "
                             "files out up front.") from e
    import av

    try:
        return av.open(str(path))
    except av.error.FFmpegError as e:
        raise VideoError(f"cannot decode video {path} (corrupt or truncated: {e}). Re-download or re-extract it; "
                         "load_tvbench(..., on_error='skip', verify_videos=True) leaves such files out up front.") from e


def _length(path: Path) -> tuple[int, float]:
    """``(frames, fps)`` of a video (decord's index, or PyAV's decoded frames)."""
    vr = _open_video(path)
    if _decord() is not None:
        return len(vr), float(vr.get_avg_fps())
    with vr as container:
        stream = container.streams.video[0]
        try:
            return sum(1 for _ in container.decode(stream)), float(stream.average_rate or 1)
        except Exception as e:  # av.error.FFmpegError and friends
            raise VideoError(f"cannot decode video {path} ({e}). Re-download or re-extract it.") from e


def read_frames(
    path: str | Path,
    num_frames: int = 8,
    start: float | None = None,
    end: float | None = None,
    backend: Literal["auto", "decord", "pyav"] = "auto",
) -> np.ndarray:
    """Decode ``num_frames`` segment-midpoint frames (see :func:`sample_indices`) as uint8 ``[T, H, W, 3]``.

    ``backend="auto"`` uses decord where it is installed and PyAV otherwise (decord has no wheel for some
    platforms). Raises :class:`VideoError` naming the file when it is missing or cannot be decoded.
    """
    path = Path(path)
    use_decord = backend == "decord" or (backend == "auto" and _decord() is not None)
    if use_decord:
        decord = _decord()
        if decord is None:
            raise VideoError("backend='decord' but decord is not installed; pip install decord or use 'pyav'.")
        vr = _open_video(path)
        idx = _indices(path, len(vr), num_frames, vr.get_avg_fps(), start, end)
        try:
            return vr.get_batch(idx.tolist()).asnumpy()
        except (RuntimeError, decord.DECORDError) as e:
            raise VideoError(f"cannot decode frames {idx.tolist()} of {path}: {e}. Re-download the file.") from e
    import av

    if not path.is_file():
        raise VideoError(f"video file {path} not found. Check `data_dir` and the record's 'video' field.")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 1)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except av.error.FFmpegError as e:
        raise VideoError(f"cannot decode video {path} (corrupt or truncated: {e}). Re-download or re-extract it; "
                         "load_tvbench(..., on_error='skip', verify_videos=True) leaves such files out up front.") from e
    if not frames:
        raise VideoError(f"video {path} has no frames. Re-download or re-extract it.")
    idx = _indices(path, len(frames), num_frames, fps, start, end)
    return np.stack([frames[i] for i in idx])


def _indices(path: Path, *args) -> np.ndarray:
    """:func:`sample_indices` with the video's path in its error."""
    try:
        return sample_indices(*args)
    except VideoError as e:
        raise VideoError(f"{path}: {e}") from None
