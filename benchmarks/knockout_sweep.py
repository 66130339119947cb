"""The knockout engine against the paper-style loop, on one model and one input, in one run.

    .venv/bin/python benchmarks/knockout_sweep.py [--layers 12] [--hidden 512] [--window 9] [--device cpu]

Baseline (the paper's code): one full forward of the whole video LLM per flow x window position, eager attention,
a dense additive float mask per layer. Engine: ``knockout.run_sweep`` (prefix reuse, batching, layer start) after
one clean run. Printed, each as a ratio measured here:

(i)   the four flows of Fig. 3 (video→question, video→last, question→last, last→last) over all layers: speed-up;
(ii)  the cross-frame sweep over all layers: speed-up;
(iii) attention maps of the question rows onto every key in every layer: ``output_attentions`` (eager) against
      ``attention.attention_rows``: peak-memory ratio (each measured in a fresh subprocess, peak RSS above the
      loaded model) and speed-up.

The model is a random-weight LLaVA-NeXT-Video of realistic shape for a CPU: ``--layers`` text layers of width
``--hidden``, 8 frames x 12x12 pooled video tokens (1,152) plus the paper's prompt. The two methods' probabilities
are compared too (max abs difference). Runs with one thread unless OMP_NUM_THREADS says otherwise.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

FLOWS = [("video", "question"), ("video", "last"), ("question", "last"), ("last", "last")]


def build(args):
    from transformers import LlavaNextVideoForConditionalGeneration

    from mapflow_utils.models import tiny
    from mapflow_utils.data import load_tvbench
    from mapflow_utils.evaluate import prepare
    from mapflow_utils.models import adapter_for
    from mapflow_utils.paths import SYNTHETIC

    cfg = tiny.TinyConfig(image_size=96, patch_size=4, vision_hidden=64, vision_layers=1, hidden=args.hidden,
                          layers=args.layers, heads=args.hidden // 64, kv_heads=max(1, args.hidden // 128),
                          intermediate=args.hidden * 4 // 1, max_positions=4096)
    tok = tiny.build_tokenizer()
    processor = tiny.build_processor(tok, cfg)
    torch.manual_seed(0)
    model = LlavaNextVideoForConditionalGeneration(tiny.build_config(tok, cfg)).eval().to(args.device)
    ad = adapter_for(model, processor)
    sample = load_tvbench(SYNTHETIC, tasks=["moving_direction"])[0]
    frames = sample.frames(8)
    prep = prepare(ad, sample, "letter", frames=frames)
    if args.device != "cpu":
        prep.inputs = {k: v.to(args.device) for k, v in prep.inputs.items()}
    return ad, prep


def paper_loop(ad, prep, specs):
    """One full forward per spec, eager attention, dense float masks. Returns answer probabilities."""
    from mapflow_utils.engine import reference

    out = [torch.softmax(reference.logits(ad, prep.inputs, prep.spans, spec), -1)[prep.answer_ids].cpu()
           for spec in specs]
    return torch.stack(out)


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident memory above the start, sampled every millisecond in a thread (with glibc returning large
    blocks to the OS at once: MALLOC_MMAP_THRESHOLD_ is set for the child processes)."""

    def __enter__(self):
        import threading

        self.base = self.peak = _rss()
        self.stop = False

        def sample():
            while not self.stop:
                self.peak = max(self.peak, _rss())
                time.sleep(0.001)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def _attention_child(args, method, queue):
    ad, prep = build(args)
    rows = list(prep.spans.question)
    meter = PeakRSS().__enter__()
    t = time.perf_counter()
    with torch.no_grad():
        if method == "output_attentions":
            ad.model.set_attn_implementation({"text_config": "eager"})
            att = ad.model(**prep.inputs, output_attentions=True, use_cache=False).attentions
            maps = torch.stack([a[0].mean(0)[rows] for a in att])
        else:
            from mapflow_utils.engine.attention import attention_rows

            maps = attention_rows(ad, prep.clean, prep.spans, rows)
    dt = time.perf_counter() - t
    meter.__exit__()
    queue.put((method, meter.mib, dt, maps.float().sum().item(), prep.spans.length))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--window", type=int, default=9)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--parts", nargs="*", default=["i", "ii", "iii"], help="which measurements to run")
    args = ap.parse_args()
    from mapflow_utils.engine import knockout as K, specs as S

    ad, prep = build(args)
    n = ad.num_layers
    print(f"model: {n} text layers, hidden {args.hidden}; sequence {prep.spans.length} tokens "
          f"({len(prep.spans.video)} video); window {args.window}; device {args.device}; "
          f"threads {torch.get_num_threads()}")
    rows = []
    for part, name, blocks in [("i", "(i) four flows of Fig. 3", [[S.Block(s, t)] for s, t in FLOWS]),
                               ("ii", "(ii) cross-frame", [[S.CROSS_FRAME]])]:
        if part not in args.parts:
            continue
        specs = [spec for b in blocks for spec in S.sweep_specs(b, args.window, n)]
        ref, t_ref = timed(lambda: paper_loop(ad, prep, specs))
        eng, t_eng = timed(lambda: K.run_sweep(ad, prep.clean, prep.spans, specs, prep.answer_ids,
                                               batch_size=args.batch_size))
        rows.append((name, len(specs), t_ref, t_eng, (ref - eng).abs().max().item()))
    if rows:
        print(f"\n{'sweep':<28}{'specs':>6}{'paper loop s':>14}{'engine s':>10}{'speed-up':>10}{'max |dp|':>11}")
    for name, k, a, b, d in rows:
        print(f"{name:<28}{k:>6}{a:>14.2f}{b:>10.2f}{a / b:>9.1f}x{d:>11.1e}")

    if "iii" not in args.parts:
        return
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
    ctx = mp.get_context("spawn")
    results = {}
    for method in ("output_attentions", "attention_rows"):
        q = ctx.Queue()
        p = ctx.Process(target=_attention_child, args=(args, method, q))
        p.start()
        results[method] = q.get()
        p.join()
    (_, m_full, t_full, s_full, L), (_, m_rows, t_rows, s_rows, _) = results["output_attentions"], results[
        "attention_rows"]
    print(f"\n(iii) attention maps of {len(prep.spans.question)} question rows x {L} keys x {n} layers")
    print(f"{'method':<22}{'peak MiB':>10}{'seconds':>9}")
    print(f"{'output_attentions':<22}{m_full:>10.1f}{t_full:>9.2f}")
    print(f"{'attention_rows':<22}{m_rows:>10.1f}{t_rows:>9.2f}")
    print(f"memory ratio (rows / full): {m_rows / max(m_full, 1e-9):.3f}; speed-up {t_full / t_rows:.1f}x; "
          f"sums agree to {abs(s_full - s_rows):.1e}")


if __name__ == "__main__":
    main()
