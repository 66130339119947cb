"""What the chapters' sweeps cost on the SmolLM2 subject (30 layers × 576), one question at a time, one thread.

    .venv/bin/python benchmarks/smol_sweep.py [--model data/models/smol-videollm-ft] [--questions 3] [--window 9]

Printed, per question (letter format, 8 frames, ~240 tokens):

* prepare + clean run;
* the §3.3 sweep: every flow of ``experiments.FLOWS`` (11) in a window of ``--window`` layers centred on each of the
  30 layers = 330 specs, with ``knockout.run_sweep`` (prefix reuse, batching, layer start);
* the §3.2 cross-frame sweep (30 specs);
* the paper-style baseline on a few specs of the §3.3 sweep (one full eager forward with dense float masks per
  spec, ``reference.logits``), and the engine's speed-up over it measured in this run, extrapolated to 330 specs;
* the **token-layer bound** of the §3.3 sweep: every spec must recompute at least the tokens from its first blocked
  query through the layers from its first blocked layer, ``Σ (L − first query) × (n_layers − first layer)``
  token-layers, priced at the clean text-model forward's cost per token-layer (best of 3, measured in this run);
  "+ head" adds one last-position ``lm_head`` per spec (the full-vocabulary softmax needs it). The engine's time is
  printed as a ratio to both, and beside it the fixed batches of 8 in first-query order that the engine used before
  :func:`~mapflow_utils.engine.knockout.plan_batches` (same run, same code otherwise).

Measured 2026-11-27 on this project's machine (x86_64, 2 cores, one thread, nothing else running; 3 questions):
§3.3 sweep 20.3 s/question (61 ms/spec); token-layer bound 16.1 s: the engine is 1.26x it (1.25-1.27x per
question), 1.04x with one lm_head row per spec; the fixed batches of 8 used before ``plan_batches`` 1.59x; the
paper-style loop 14.7x the engine.

Without ``--model`` (or if the folder is missing) it measures a fresh SmolLM2 VideoLLM (``smol.new_model``): the
cost does not depend on the trained weights.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="data/models/smol-videollm-ft")
    ap.add_argument("--questions", type=int, default=3)
    ap.add_argument("--window", type=int, default=9)
    ap.add_argument("--baseline-specs", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    from mapflow_utils import evaluate, experiments as E, paths
    from mapflow_utils.engine import knockout as K, reference, specs as S
    from mapflow_utils.data import load_tvbench

    from common import subject

    ad, name = subject(args.model)
    n = ad.num_layers
    specs = [s for blocks in E.FLOWS.values() for s in S.sweep_specs(blocks, args.window, n)]
    cross = S.sweep_specs([S.CROSS_FRAME], args.window, n)
    ds = load_tvbench(paths.SYNTHETIC, n_per_task=1, seed=0)[: args.questions]
    rows = []
    for s in ds:
        t0 = time.perf_counter()
        prep = evaluate.prepare(ad, s, "letter")
        t1 = time.perf_counter()
        with torch.no_grad():
            K.run_sweep(ad, prep.clean, prep.spans, specs, prep.answer_ids)
        t2 = time.perf_counter()
        K.run_sweep(ad, prep.clean, prep.spans, cross, prep.answer_ids)
        t3 = time.perf_counter()
        pick = specs[:: max(1, len(specs) // args.baseline_specs)][: args.baseline_specs]
        for spec in pick:
            reference.logits(ad, prep.inputs, prep.spans, spec)
        t4 = time.perf_counter()
        per_ref = (t4 - t3) / len(pick)
        bound, head = token_layer_bound(ad, prep, specs)
        fixed = fixed_batches(ad, prep, specs, 8)
        rows.append((s.task, prep.spans.length, t1 - t0, t2 - t1, t3 - t2, per_ref, bound, head, fixed))
    print(f"model: {name}; {n} layers; window {args.window}; threads {torch.get_num_threads()}")
    print(f"{'task':<22}{'tokens':>7}{'prepare s':>11}{'§3.3 330 specs s':>18}{'cross-frame s':>15}"
          f"{'paper loop s/spec':>19}{'speed-up':>10}{'bound s':>9}{'x bound':>9}{'x +head':>9}{'fixed-8 s':>11}")
    for task, L, p, sw, cf, ref, bound, head, fixed in rows:
        print(f"{task:<22}{L:>7}{p:>11.2f}{sw:>18.1f}{cf:>15.1f}{ref:>19.2f}{ref * len(specs) / sw:>9.1f}x"
              f"{bound:>9.1f}{sw / bound:>8.2f}x{sw / (bound + head):>8.2f}x{fixed:>11.1f}")
    mean = [sum(r[i] for r in rows) / len(rows) for i in range(2, 9)]
    print(f"mean: prepare {mean[0]:.2f} s, §3.3 sweep {mean[1]:.1f} s/question ({1000 * mean[1] / len(specs):.0f} "
          f"ms/spec), cross-frame {mean[2]:.1f} s/question; paper-style loop {mean[3]:.2f} s/spec -> "
          f"{mean[3] * len(specs):.0f} s/question for §3.3 ({mean[3] * len(specs) / mean[1]:.1f}x the engine)")
    print(f"token-layer bound {mean[4]:.1f} s/question ({1000 * mean[4] / len(specs):.0f} ms/spec): the engine is "
          f"{mean[1] / mean[4]:.2f}x it, {mean[1] / (mean[4] + mean[5]):.2f}x with one lm_head per spec; fixed batches "
          f"of 8 (before plan_batches) {mean[6]:.1f} s = {mean[6] / mean[4]:.2f}x the bound")


def token_layer_bound(ad, prep, specs) -> tuple[float, float]:
    """Seconds the §3.3 sweep needs at least: (token-layers it must recompute × the clean forward's cost per
    token-layer, one lm_head row per spec)."""
    from mapflow_utils.engine import knockout as K

    clean, L, n = prep.clean, prep.spans.length, ad.num_layers
    need = 0
    for spec in specs:
        parts = spec.parts(prep.spans)
        need += (L - min(K._first_query(p) for p, _ in parts)) * (n - min(layers[0] for _, layers in parts))
    best, head = float("inf"), float("inf")
    with torch.no_grad():
        for _ in range(3):
            t = time.perf_counter()
            out = ad.language_model(inputs_embeds=clean.embeds, position_ids=clean.position_ids, use_cache=False,
                                    **clean.lm_kwargs)
            best = min(best, time.perf_counter() - t)
            t = time.perf_counter()
            ad.lm_head(out.last_hidden_state[:, -1])
            head = min(head, time.perf_counter() - t)
    return need * best / (L * n), head * len(specs)


def fixed_batches(ad, prep, specs, size: int) -> float:
    """Seconds for the sweep in fixed batches of ``size`` in (first query, first layer) order (the engine before
    plan_batches)."""
    from mapflow_utils.engine import knockout as K

    first = {i: (min(K._first_query(p) for p, _ in s.parts(prep.spans)), s.layers[0]) for i, s in enumerate(specs)}
    order = sorted(first, key=first.get)
    t = time.perf_counter()
    for b in range(0, len(order), size):
        K.run_specs(ad, prep.clean, prep.spans, [specs[i] for i in order[b:b + size]])
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
