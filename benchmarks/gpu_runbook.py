"""The GPU runbook: the §3.3 sweep at the paper's scale, engine against the paper-style loop, in one run.

    .venv/bin/python benchmarks/gpu_runbook.py --device cuda                  # random weights, LLaVA-NeXT-Video-7B shape
    .venv/bin/python benchmarks/gpu_runbook.py --device cuda --shape 13b      # ... 13B shape (40 x 5120)
    .venv/bin/python benchmarks/gpu_runbook.py --device cuda --model ID_OR_DIR --data /path/to/TVBench
    .venv/bin/python benchmarks/gpu_runbook.py --shape tiny                   # the same code at tiny shape, CPU (tested)

Random weights at the paper's shapes (``SHAPES``): a CLIP-L/14 tower at 336 px (24×24 patches, 2×2 pooled: 8 frames
× 144 video tokens, 1,152), a LLaMA text model of the named depth and width, the unembedding resized to 32,064 rows;
bfloat16 on a GPU, float32 on a CPU. One synthetic Moving Direction question in the paper's letter format (about
1,300 tokens at 7B). Printed, each measured in this run: the §3.3 sweep (the four Fig. 3 flows over every window
position, window 9 scaled to depth) per question for the paper-style loop (one full eager forward per spec, dense
float masks: ``knockout_sweep.paper_loop``) and for mapflow's engine (``knockout.run_sweep``), the speed-up, the peak
memory of each (CUDA: ``max_memory_allocated``; CPU: peak RSS above the loaded model) and its ratio, and the largest
difference of the answer probabilities between the two.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from knockout_sweep import FLOWS, PeakRSS, paper_loop  # noqa: E402  (the one paper-style loop)


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vision_hidden: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    image_size: int = 336
    patch_size: int = 14
    vocab: int = 32064


#: LLaVA-NeXT-Video-7B / 13B (Vicuna-7B / 13B text models, CLIP ViT-L/14-336), and a tiny stand-in for the tests.
SHAPES = {"7b": Shape(32, 4096, 32, 11008), "13b": Shape(40, 5120, 40, 13824),
          "tiny": Shape(4, 64, 4, 128, vision_hidden=32, vision_layers=1, vision_heads=2, image_size=96, patch_size=4,
                        vocab=1024)}


def build(shape: Shape, device: str, dtype: torch.dtype):
    """A random-weight ``LlavaNextVideoForConditionalGeneration`` at ``shape`` and its adapter."""
    from transformers import LlavaNextVideoForConditionalGeneration

    from mapflow_utils.models import tiny
    from mapflow_utils.models import adapter_for

    cfg = tiny.TinyConfig(image_size=shape.image_size, patch_size=shape.patch_size, vision_hidden=shape.vision_hidden,
                          vision_layers=shape.vision_layers, vision_heads=shape.vision_heads, hidden=shape.hidden,
                          layers=shape.layers, heads=shape.heads, kv_heads=shape.heads,
                          intermediate=shape.intermediate, max_positions=4096)
    tok = tiny.build_tokenizer()
    processor = tiny.build_processor(tok, cfg)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaNextVideoForConditionalGeneration(tiny.build_config(tok, cfg)).to(dtype).eval()
    model.resize_token_embeddings(shape.vocab, mean_resizing=False)
    return adapter_for(model, processor)


def question(adapter, data: str | None):
    from mapflow_utils import paths
    from mapflow_utils.data import load_tvbench
    from mapflow_utils.evaluate import prepare

    sample = load_tvbench(data or paths.SYNTHETIC, tasks=["moving_direction"], n_per_task=1, seed=0)[0]
    prep = prepare(adapter, sample, "letter")
    return prep


def peak(device: str):
    """A context measuring peak memory above its start: CUDA's allocator, or the process's RSS on a CPU."""
    if device.startswith("cuda"):
        class Cuda:
            def __enter__(self):
                torch.cuda.synchronize()
                self.base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                return self

            def __exit__(self, *exc):
                torch.cuda.synchronize()
                self.mib = (torch.cuda.max_memory_allocated() - self.base) / 2**20

        return Cuda()
    return PeakRSS()


def measure(fn, device: str):
    with peak(device) as meter:
        t = time.perf_counter()
        out = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
    return out, dt, meter.mib


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shape", choices=list(SHAPES), default="7b")
    ap.add_argument("--model", default=None, help="a real checkpoint (hub id or folder) instead of random weights")
    ap.add_argument("--data", default=None, help="a TVBench-format folder (default: the shipped synthetic split)")
    ap.add_argument("--batch-size", type=int, default=8, help="the engine's specs per forward")
    args = ap.parse_args(argv)
    from mapflow_utils.engine import knockout as K, specs as S
    from mapflow_utils.experiments import paper_window

    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    if args.model:
        from mapflow_utils.models import load

        _, _, adapter = load(args.model, device=args.device, dtype=str(dtype).replace("torch.", ""))
        what = args.model
    else:
        adapter = build(SHAPES[args.shape], args.device, dtype)
        what = f"random weights, {args.shape} shape"
    prep = question(adapter, args.data)
    if args.device != "cpu":
        prep.inputs = {k: v.to(args.device) if hasattr(v, "to") else v for k, v in prep.inputs.items()}
    n = adapter.num_layers
    window = paper_window(n)
    specs = [spec for s, t in FLOWS for spec in S.sweep_specs([S.Block(s, t)], window, n)]
    params = sum(p.numel() for p in adapter.model.parameters())
    print(f"model: {what}; {n} text layers, {params / 1e9:.2f} B parameters, {dtype}; device {args.device}")
    print(f"question: {prep.spans.length} tokens ({len(prep.spans.video)} video); §3.3 sweep: {len(specs)} specs "
          f"(4 flows x {n} window positions, window {window})")
    with torch.no_grad():
        ref, t_ref, m_ref = measure(lambda: paper_loop(adapter, prep, specs), args.device)
        eng, t_eng, m_eng = measure(lambda: K.run_sweep(adapter, prep.clean, prep.spans, specs, prep.answer_ids,
                                                        batch_size=args.batch_size), args.device)
    print(f"{'method':<22}{'s / question':>14}{'peak MiB':>12}")
    print(f"{'paper-style loop':<22}{t_ref:>14.2f}{m_ref:>12.1f}")
    print(f"{'engine':<22}{t_eng:>14.2f}{m_eng:>12.1f}")
    print(f"speed-up {t_ref / t_eng:.1f}x; memory ratio (engine / loop) {m_eng / max(m_ref, 1e-9):.2f}; "
          f"max |dp| {(ref.float() - eng.float().cpu()).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
