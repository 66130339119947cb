"""Pilot 11 of issue 22: where on the way from the tower to the answer is an object's place lost?

Held-out images (``synthetic.image_sample``, seed 999), the position question ("Where is the <colour> square?",
answer words). Read-outs of the asked square's 3x3 cell (9 classes, 70/30 by image):

* ``tower``: the same read-out of the pooled tower tokens (the projector's input);
* ``video tokens Lk``: one attention layer (``probes.fit_attention_probe``, the asked colour picks its query) over the
  image's 16 video tokens at layer k (0 = the projector's output, what the LLM receives);
* ``last token Lk``: a linear probe on the last prompt position at layer k (``probes.fit_probe``);
* ``answer``: the model's own content-format accuracy on the same questions (4 options).

If the video tokens carry the cell and the last token does not, attention does not route it; if the video tokens do
not, the projector (or the tower) loses it.

    .venv/bin/python tools/pilots/where_probe.py MODEL_FOLDER [...] [--n 300] [--layers 0,4,8,16,24,30]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--layers", default="0,4,8,16,24,30")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    from mapflow_utils import models
    from mapflow_utils.evaluate import predict
    from mapflow_utils.perception import OBJECT_COLORS
    from mapflow_utils.probes import fit_attention_probe, fit_probe
    from mapflow_utils.prompts import build_prompt
    from mapflow_utils.synthetic import CELLS, IMAGE_KINDS, image_sample

    layers = [int(x) for x in args.layers.split(",")]
    kind = IMAGE_KINDS.index("position")
    for folder in args.models:
        model, proc, ad = models.load(folder)
        model.eval()
        vid = proc.tokenizer.convert_tokens_to_ids(proc.tokenizer.video_token)
        tokens, last, colour, cell, hits, tower = [], [], [], [], 0, []
        grab = model.model.multi_modal_projector.register_forward_pre_hook(
            lambda _m, a: tower.append(a[0].detach().reshape(-1, a[0].shape[-1]).float()))
        for i in range(args.n):
            s = image_sample(999, i)
            q, cands, a = s.qa[kind]
            p = build_prompt(proc, q, cands, "content")
            inputs = ad.inputs(s.image[None], p.text)
            with torch.no_grad():
                out = model(**inputs, output_hidden_states=True)
            where = (inputs["input_ids"][0] == vid).nonzero().flatten()
            tokens.append(torch.stack([out.hidden_states[k][0, where] for k in layers]).float())  # [K, 16, d]
            last.append(torch.stack([out.hidden_states[k][0, -1] for k in layers]).float())  # [K, d]
            colour.append(next(j for j, c in enumerate(OBJECT_COLORS) if f" {c} " in f" {q} "))
            cell.append(CELLS.index(a))
            hits += int(predict(ad, q, cands, "content", s.image[None]) == list(cands).index(a))
        grab.remove()
        tw = torch.stack(tower[::2])  # [n, 16, d_tower]: the question's forward (predict() runs the second)
        x, z = torch.stack(tokens), torch.stack(last)  # [n, K, 16, d], [n, K, d]
        qc, y = torch.tensor(colour), torch.tensor(cell)
        m = int(0.7 * args.n)
        rec = {"model": folder, "images": args.n, "answer": round(hits / args.n, 4),
               "majority": round(float(torch.bincount(y[m:]).max()) / (args.n - m), 4)}
        if os.environ.get("WHERE_PROBE_SAVE"):  # the read-outs' inputs, for further checks
            torch.save({"tower": tw, "tokens": x, "last": z, "colour": qc, "cell": y, "layers": layers},
                       os.environ["WHERE_PROBE_SAVE"])
        rec["tower"] = fit_attention_probe(tw[:m], qc[:m], y[:m], tw[m:], qc[m:], y[m:], 9)
        for j, k in enumerate(layers):
            rec[f"video tokens L{k}"] = fit_attention_probe(x[:m, j], qc[:m], y[:m], x[m:, j], qc[m:], y[m:], 9)
            rec[f"last token L{k}"] = fit_probe(z[:m, j], y[:m], z[m:, j], y[m:], 9, epochs=80)
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
