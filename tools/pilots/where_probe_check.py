"""Pilot 11's check: is the place lost by the projector, or only hard to read from its output?

Reads the tensors ``where_probe.py`` saves (``WHERE_PROBE_SAVE=/tmp/prof/where9.pt``, layers 0,8,16) and prints the
held-out R² of a ridge map from the projector's output back to the tower's tokens, and the attention read-out of the
cell from those reconstructed tokens, from the tower's tokens through a random 128 → 576 map, and from the
standardised projector output.

    WHERE_PROBE_SAVE=/tmp/prof/where9.pt .venv/bin/python tools/pilots/where_probe.py MODEL --layers 0,8,16
    .venv/bin/python tools/pilots/where_probe_check.py /tmp/prof/where9.pt
"""
import sys

import torch
from mapflow_utils.probes import fit_attention_probe
d = torch.load(sys.argv[1] if len(sys.argv) > 1 else "/tmp/prof/where9.pt")
tw, x, qc, y = d["tower"], d["tokens"][:, 0], d["colour"], d["cell"]
m = 280
def probe(f): return fit_attention_probe(f[:m], qc[:m], y[:m], f[m:], qc[m:], y[m:], 9)
# ridge from projector output back to the tower features, all tokens
A, B = x.reshape(-1, x.shape[-1]), tw.reshape(-1, tw.shape[-1])
ntr = m * 16
A1 = torch.cat([A, torch.ones(len(A), 1)], 1)
W = torch.linalg.solve(A1[:ntr].T @ A1[:ntr] + 1e-2 * torch.eye(A1.shape[1]), A1[:ntr].T @ B[:ntr])
pred = A1[ntr:] @ W
r2 = 1 - ((pred - B[ntr:]) ** 2).sum() / ((B[ntr:] - B[:ntr].mean(0)) ** 2).sum()
print("R2 projector->tower (held-out images)", float(r2))
print("probe on tower reconstructed from projector", probe((A1 @ W).reshape(tw.shape)))
g = torch.Generator().manual_seed(0)
R = torch.randn(tw.shape[-1], 576, generator=g) / tw.shape[-1] ** 0.5
print("probe on tower @ random 128->576", probe(tw @ R))
print("probe on projector standardised", probe((x - x[:m].mean((0, 1))) / (x[:m].std((0, 1)) + 1e-5)))
