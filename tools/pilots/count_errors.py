"""Issue 22: are the ImageLLM's count errors by letter a letter-binding or a counting problem?

    OMP_NUM_THREADS=1 .venv/bin/python tools/pilots/count_errors.py [MODEL]   (default runs/ship/smol-imagellm)

80 held-out images (seed 999, the training evaluation's images of the count kind), each asked "How many squares are
there?" in the letter and in the content format; tabulates the letter errors (which digit, which letter, whether the
content format errs the same way). Result: tools/pilots/results/count-errors-imagellm-s0.txt.
"""
import collections
import sys

import torch
torch.set_num_threads(1)
from mapflow_utils import models
from mapflow_utils.evaluate import predict
from mapflow_utils.synthetic import image_sample, SynthConfig
_, _, ad = models.load(sys.argv[1] if len(sys.argv) > 1 else "runs/ship/smol-imagellm")
cfg = SynthConfig()
rows = []
for i in range(80):
    s = image_sample(999, 4 * i + 3, cfg)
    q, cands, a = s.qa[3]
    L = predict(ad, q, cands, "letter", s.image[None], "")
    C = predict(ad, q, cands, "content", s.image[None], "")
    rows.append(dict(cands=cands, a=a, L=L, C=C, t=cands.index(a)))
n = len(rows)
print("letter acc", sum(r["L"] == r["t"] for r in rows) / n, "content acc", sum(r["C"] == r["t"] for r in rows) / n)
err = [r for r in rows if r["L"] != r["t"]]
print("letter errors", len(err))
print(" letter picks the content answer's letter:", sum(r["L"] == r["C"] for r in err))
print(" letter idx == true count-1 (digit-as-position):", sum(r["L"] == int(r["a"]) - 1 for r in err))
print(" picked option's digit:", collections.Counter(r["cands"][r["L"]] for r in err), "true:", collections.Counter(r["a"] for r in err))
print(" picked letter:", collections.Counter("ABC"[r["L"]] for r in err), "all true letters:", collections.Counter("ABC"[r["t"]] for r in rows))
print(" by true count, letter acc:", {k: round(sum(r["L"] == r["t"] for r in rows if r["a"] == k) / max(1, sum(r["a"] == k for r in rows)), 2) for k in "123"})
print(" content errors by true count:", {k: sum(r["C"] != r["t"] for r in rows if r["a"] == k) for k in "123"})
