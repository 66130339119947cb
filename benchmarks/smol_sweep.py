"""What the chapters' sweeps cost on the SmolLM2 subject (30 layers × 576), one question at a time, one thread.

    .venv/bin/python benchmarks/smol_sweep.py [--model data/models/smol-videollm-ft] [--questions 3] [--window 9]

Printed, per question (letter format, 8 frames, ~240 tokens):

* prepare + clean run;
* the §3.3 sweep: every flow of ``experiments.FLOWS`` (11) in a window of ``--window`` layers centred on each of the
  30 layers = 330 specs, with ``knockout.run_sweep`` (prefix reuse, batching, layer start);
* the §3.2 cross-frame sweep (30 specs);
* the paper-style baseline on a few specs of the §3.3 sweep (one full eager forward with dense float masks per
  spec, ``reference.logits``), and the engine's speed-up over it measured in this run, extrapolated to 330 specs.

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

    from pathlib import Path

    from mapflow_utils import evaluate, experiments as E, knockout as K, models, paths, reference, smol, specs as S
    from mapflow_utils.data import load_tvbench

    if Path(args.model).exists():
        _, _, ad = models.load(args.model)
        name = args.model
    else:
        ad = models.adapter_for(*smol.new_model())
        name = "fresh SmolLM2 VideoLLM (untrained projector)"
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
        rows.append((s.task, prep.spans.length, t1 - t0, t2 - t1, t3 - t2, per_ref))
    print(f"model: {name}; {n} layers; window {args.window}; threads {torch.get_num_threads()}")
    print(f"{'task':<22}{'tokens':>7}{'prepare s':>11}{'§3.3 330 specs s':>18}{'cross-frame s':>15}"
          f"{'paper loop s/spec':>19}{'speed-up':>10}")
    for task, L, p, sw, cf, ref in rows:
        print(f"{task:<22}{L:>7}{p:>11.2f}{sw:>18.1f}{cf:>15.1f}{ref:>19.2f}{ref * len(specs) / sw:>9.1f}x")
    mean = [sum(r[i] for r in rows) / len(rows) for i in range(2, 6)]
    print(f"mean: prepare {mean[0]:.2f} s, §3.3 sweep {mean[1]:.1f} s/question ({1000 * mean[1] / len(specs):.0f} "
          f"ms/spec), cross-frame {mean[2]:.1f} s/question; paper-style loop {mean[3]:.2f} s/spec -> "
          f"{mean[3] * len(specs):.0f} s/question for §3.3 ({mean[3] * len(specs) / mean[1]:.1f}x the engine)")


if __name__ == "__main__":
    main()
