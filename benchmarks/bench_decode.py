"""Decoding cost of the two video backends and of synthetic generation, as ratios measured in one run.

    .venv/bin/python benchmarks/bench_decode.py [--n 100]

Baseline: decord reading 8 segment-midpoint frames of each shipped synthetic clip. Printed: seconds per clip for
decord, PyAV (the fallback where decord has no wheel) and generating + writing a clip, each as a ratio to decord.
Runs with one thread (OMP_NUM_THREADS=1) like the rest of mapflow.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mapflow_utils import paths  # noqa: E402
from mapflow_utils.data import load_tvbench, read_frames  # noqa: E402
from mapflow_utils.synthetic import generate_clip, write_mp4  # noqa: E402


def per_item(fn, items) -> float:
    t = time.perf_counter()
    for it in items:
        fn(it)
    return (time.perf_counter() - t) / len(items)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="clips per measurement")
    args = ap.parse_args()
    ds = load_tvbench(paths.SYNTHETIC)
    items = [ds[i % len(ds)] for i in range(args.n)]
    read_frames(items[0].video_path)  # warm-up
    base = per_item(lambda s: read_frames(s.video_path, 8, s.start, s.end, backend="decord"), items)
    pyav = per_item(lambda s: read_frames(s.video_path, 8, s.start, s.end, backend="pyav"), items)
    with tempfile.TemporaryDirectory() as tmp:
        gen = per_item(lambda i: write_mp4(f"{tmp}/{i}.mp4", generate_clip("object_count", 0, i).frames, 8),
                       range(args.n))
    print(f"{'what':<34}{'ms/clip':>10}{'ratio':>8}")
    for name, v in [("decord, 8 frames (baseline)", base), ("PyAV fallback, 8 frames", pyav),
                    ("generate + write one clip", gen)]:
        print(f"{name:<34}{v * 1e3:>10.2f}{v / base:>8.2f}")


if __name__ == "__main__":
    main()
