"""The first-order knockout estimate against the exact §3.3 sweep and one clean forward, in one run, one thread.

    .venv/bin/python benchmarks/attribution.py [--model data/models/smol-videollm-ft] [--questions 3] [--window 9]

Both methods start from the clean run every experiment makes anyway (``evaluate.prepare``: it tells whether the
question is baseline-correct and gives the exact engine its prefix keys and values). Per question (the model's own
answer format, 8 frames), after one untimed pass of each method:

* ``forward``: that clean run (``knockout.clean_run``, best of 3);
* ``exact``: the exact §3.3 sweep on it (every flow of ``experiments.FLOWS`` in a window of ``--window`` layers
  centred on each layer: 11 × n_layers specs, with ``knockout.run_sweep``);
* ``estimate``: what the estimate of the same specs adds to the clean run: recording the run with its graph
  (``attribution.recorded_run``, ``prepare(..., graph=True)``, minus the plain clean run's time), the backward
  (``attribution.attribute``) and ``Attribution.sweep``;
* ``all-in``: each method with its clean run counted (the plain run + exact, the recorded run + backward + sweep).

Printed: the times, exact/estimate (the issue's target is ≥ 20x on the book's subject), the all-in ratio, the
estimate over one clean forward, and Spearman ρ between the estimated and exact %change over the 11 × n_layers specs
of the question (a sanity check; the chapter validates properly).

With ``--map``, also the whole map of the first question (every block pair of ``attribution.map_blocks`` in every
layer alone, the causally possible ones): exactly, one knockout each through ``knockout.run_sweep``, against the
estimate's backward and ``Attribution.block_map`` on a recorded run.

Measured 2026-12-02 on this project's machine (one thread, nothing else running, the book's subject, 5 questions):
exact §3.3 sweep 17.6 s per question, estimate 0.76 s beyond the clean run: 23.3x (22.3-24.0x per question; 24.6x
in a run beside a training job), 1.6 clean forwards; with the clean run counted in both, 14.6x; ρ 0.78-0.93 per
question. The whole map of one question (15 blocks, 3,510 knockouts, beside a training job): exact 379.2 s,
estimate 0.95 s (398x), ρ 0.93 over the cells. The estimate's floor here is a backward over the positions from the
video on (its matrix products are the forward's, transposed, less the system prompt's rows:
``attribution._gradient_from``) plus recording the attention weights. Before that restriction (the backward over
every position): 19.0x, 1.06 s against 20.1 s.

Without ``--model`` (or if the folder is missing) it measures a fresh SmolLM2 VideoLLM (``smol.new_model``): the
cost does not depend on the trained weights.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="data/models/smol-videollm-ft")
    ap.add_argument("--questions", type=int, default=3)
    ap.add_argument("--window", type=int, default=9)
    ap.add_argument("--map", action="store_true", help="also time the whole map of the first question, exactly")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    from pathlib import Path

    from mapflow_utils.engine import attribution, knockout as K
    from mapflow_utils import evaluate, experiments as E, models, paths
    from mapflow_utils.results import spearman
    from mapflow_utils.engine import specs as S
    from mapflow_utils.data import load_tvbench

    from common import subject

    ad, name = subject(args.model)
    n = ad.num_layers
    specs = [s for blocks in E.FLOWS.values() for s in S.sweep_specs(blocks, args.window, n)]
    fmt = models.answer_format(args.model) if Path(args.model).exists() else "letter"
    ds = load_tvbench(paths.SYNTHETIC, n_per_task=1, seed=0)[: args.questions]
    warm = evaluate.prepare(ad, ds[0], fmt)  # one untimed pass of each method first (allocator, kernels)
    K.run_sweep(ad, warm.clean, warm.spans, specs[:: len(specs) // 8], warm.answer_ids)
    recorded = attribution.recorded_run(ad, warm.inputs, warm.spans.video.start)
    attribution.attribute(ad, recorded, warm.spans, warm.answer_ids[warm.predicted]).sweep(specs)
    rows = []
    for s in ds:
        prep = evaluate.prepare(ad, s, fmt)
        clean, ans = prep.clean, prep.answer_ids[prep.predicted]
        fwd = []
        for _ in range(3):
            t = time.perf_counter()
            K.clean_run(ad, prep.inputs)
            fwd.append(time.perf_counter() - t)
        t0 = time.perf_counter()
        exact = E.percent_change(prep, K.run_sweep(ad, clean, prep.spans, specs, prep.answer_ids).numpy())
        t1 = time.perf_counter()
        recorded = attribution.recorded_run(ad, prep.inputs, prep.spans.video.start)
        t2 = time.perf_counter()
        est = attribution.attribute(ad, recorded, prep.spans, ans).sweep(specs)
        t3 = time.perf_counter()
        f = min(fwd)
        rows.append((s.task, clean.length, f, t1 - t0, (t2 - t1 - f) + (t3 - t2), t3 - t1, spearman(est, exact)))
    print(f"model: {name} ({n} layers); {len(specs)} specs per question (11 flows x {n} window positions, "
          f"window {args.window}); one thread")
    print(f"{'task':18} {'tokens':>6} {'forward s':>9} {'exact s':>8} {'estimate s':>10} {'exact/est':>9} "
          f"{'all-in':>6} {'est/fwd':>7} {'rho':>6}")
    for task, L, f, ex, es, rec, rho in rows:
        print(f"{task:18} {L:6d} {f:9.3f} {ex:8.2f} {es:10.3f} {ex / es:9.1f} {(f + ex) / rec:6.1f} {es / f:7.1f} "
              f"{rho:6.3f}")
    f, ex, es, rec = (np.mean([r[i] for r in rows]) for i in (2, 3, 4, 5))
    print(f"mean: exact sweep {ex:.2f} s, estimate {es:.3f} s -> the estimate is {ex / es:.1f}x cheaper than the "
          f"exact sweep and costs {es / f:.1f} clean forwards ({f:.3f} s); with the clean run counted in both "
          f"({f + ex:.2f} s vs {rec:.3f} s): {(f + ex) / rec:.1f}x")
    if args.map:
        whole_map(ad, evaluate.prepare(ad, ds[0], fmt), attribution, K)


def whole_map(ad, prep, attribution, K) -> None:
    """Every causally possible (query block, key block, layer) knockout of one question, exactly and estimated."""
    from mapflow_utils import experiments as E
    from mapflow_utils.engine.specs import PairsSpec
    from mapflow_utils.results import spearman

    ans = prep.answer_ids[prep.predicted]
    blocks = attribution.map_blocks(prep.spans)
    L = prep.spans.length
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    specs, where = [], []
    for i, (_, qi) in enumerate(blocks):
        for j, (_, kj) in enumerate(blocks):
            pairs = torch.zeros(L, L, dtype=torch.bool)
            pairs[torch.tensor(qi)[:, None], torch.tensor(kj)[None, :]] = True
            pairs &= causal
            if pairs.any() and min(qi) >= prep.spans.video.start:  # the system prompt's rows are not attributed
                specs += [PairsSpec({l: pairs}) for l in range(ad.num_layers)]
                where += [(i, j, l) for l in range(ad.num_layers)]
    t0 = time.perf_counter()
    exact = E.percent_change(prep, K.run_sweep(ad, prep.clean, prep.spans, specs, prep.answer_ids).numpy())
    t1 = time.perf_counter()
    K.clean_run(ad, prep.inputs)
    t2 = time.perf_counter()
    recorded = attribution.recorded_run(ad, prep.inputs, prep.spans.video.start)
    t3 = time.perf_counter()
    grid = attribution.attribute(ad, recorded, prep.spans, ans).block_map(blocks)
    t4 = time.perf_counter()
    estimate_s = (t3 - t2) - (t2 - t1) + (t4 - t3)  # what recording adds to the clean run, the backward, the map
    est = np.array([attribution.pct(grid[l, i, j]) for i, j, l in where])
    print(f"whole map of one question: {len(blocks)} blocks, {len(specs)} knockouts: exact {t1 - t0:.1f} s, estimate "
          f"{estimate_s:.2f} s -> {(t1 - t0) / estimate_s:.0f}x; Spearman rho over the cells {spearman(est, exact):.3f}")


if __name__ == "__main__":
    main()
