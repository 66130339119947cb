"""Probes: how much of a label a set of frozen features holds, measured on held-out examples.

One fitting routine (:func:`fit_probe`) for every probe in mapflow — the vision tower's per-token probes
(:mod:`mapflow_utils.perception`) and the LLM's last-token probe (:func:`last_token_probe`) — so "linear probe"
means the same thing everywhere: standardised inputs, Adam, cross-entropy, a fixed number of epochs, deterministic
per seed, accuracy on the held-out part.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from .models import adapter_for
from .prompts import build_prompt
from .synthetic import SynthConfig, clip_frames


def fit_probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
              classes: int, hidden: int = 0, epochs: int = 60, lr: float = 3e-3, weight_decay: float = 1e-4,
              seed: int = 0, predictions: bool = False):
    """Held-out accuracy of a probe (linear, or one hidden GELU layer of ``hidden`` units) fitted on
    ``x_train [n, d]`` → ``y_train [n]`` (int64 classes); inputs standardised with the training statistics.
    ``predictions=True`` returns ``(accuracy, predicted classes of x_test)``."""
    torch.manual_seed(seed)
    x_train, x_test = x_train.float(), x_test.float()
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-5
    xtr, xte = (x_train - mu) / sd, (x_test - mu) / sd
    d = xtr.shape[1]
    net = nn.Linear(d, classes) if not hidden else nn.Sequential(nn.Linear(d, hidden), nn.GELU(),
                                                                  nn.Linear(hidden, classes))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 256):
            b = perm[i:i + 256]
            loss = F.cross_entropy(net(xtr[b]), y_train[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = net(xte).argmax(1)
    acc = round(float((pred == y_test).float().mean()), 4)
    return (acc, pred) if predictions else acc


@torch.no_grad()
def last_token_states(model, processor, task: str, n: int, seed: int, answer_format: str = "letter"):
    """Hidden states at the last prompt position of ``n`` synthetic ``task`` questions (seed ``seed``): float
    ``[n, layers + 1, hidden]`` and the answers (strings)."""

    was = model.training
    model.eval()
    ad, cfg = adapter_for(model, processor), SynthConfig()
    states, answers = [], []
    for i in range(n):
        c, frames, _ = clip_frames(task, seed, i, cfg)
        p = build_prompt(processor, c.question, c.candidates, answer_format, task=task)
        out = model(**ad.inputs(frames, p.text), output_hidden_states=True)
        states.append(torch.stack([h[0, -1] for h in out.hidden_states]).float())
        answers.append(c.answer)
    model.train(was)
    return torch.stack(states), answers


def last_token_probe(model, processor, task: str, n: int = 120, seed: int = 31337,
                     answer_format: str = "letter") -> dict:
    """A linear probe of ``task``'s answer (the option's text, not its letter) from the last prompt position at
    every layer, 70/30 by question, prompts in ``answer_format``: ``{"best": accuracy, "layer": index (0 =
    embeddings), "majority": …}``."""
    states, answers = last_token_states(model, processor, task, n, seed, answer_format)
    names = sorted(set(answers))
    y = torch.tensor([names.index(a) for a in answers])
    m = int(n * 0.7)
    accs = [fit_probe(states[:m, k], y[:m], states[m:, k], y[m:], len(names), epochs=80)
            for k in range(states.shape[1])]
    best = int(np.argmax(accs))
    return {"best": accs[best], "layer": best, "majority": round(float(torch.bincount(y[m:]).max()) / (n - m), 4)}


class _AttentionReadout(nn.Module):
    """One attention layer reading a label from a set of tokens: per query (e.g. the asked colour) ``heads``
    learned query vectors attend over the tokens (features + a learned frame-index embedding when given); an MLP
    reads the heads together (so it can compare them, e.g. a square's place early and late)."""

    def __init__(self, d: int, queries: int, classes: int, frames: int, width: int = 64, heads: int = 4):
        super().__init__()
        self.inp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, width))
        self.frame = nn.Embedding(frames, width) if frames else None
        self.q = nn.Parameter(torch.randn(queries, heads, width) * width ** -0.5)
        self.k, self.v = nn.Linear(width, heads * width), nn.Linear(width, heads * width)
        self.out = nn.Sequential(nn.Linear(heads * width, width), nn.GELU(), nn.Linear(width, classes))
        self.heads, self.width = heads, width

    def forward(self, x: torch.Tensor, query: torch.Tensor, frame: torch.Tensor | None) -> torch.Tensor:
        z = self.inp(x)  # [n, T, w]
        if self.frame is not None:
            z = z + self.frame(frame)[None]
        n, t, _ = z.shape
        k = self.k(z).view(n, t, self.heads, self.width)
        v = self.v(z).view(n, t, self.heads, self.width)
        a = torch.einsum("nhw,nthw->nht", self.q[query], k).softmax(-1)  # [n, heads, T]
        return self.out(torch.einsum("nht,nthw->nhw", a, v).reshape(n, -1))


def fit_attention_probe(x_train: torch.Tensor, q_train: torch.Tensor, y_train: torch.Tensor,
                        x_test: torch.Tensor, q_test: torch.Tensor, y_test: torch.Tensor, classes: int,
                        frame: torch.Tensor | None = None, epochs: int = 100, lr: float = 2e-3,
                        seed: int = 0) -> float:
    """Held-out accuracy of one attention layer reading a label from a token set: ``x [n, T, d]`` (e.g. a
    clip's video tokens), ``q [n]`` which learned query to use (e.g. the asked colour: what a question tells the
    model), ``frame [T]`` each token's frame index (what RoPE offsets give an LLM) or ``None`` (no time). It asks
    whether the label is *readable by attention* from the tokens, a looser and fairer test than a linear probe on
    thousands of concatenated features."""
    torch.manual_seed(seed)
    net = _AttentionReadout(x_train.shape[-1], int(max(q_train.max(), q_test.max())) + 1, classes,
                            0 if frame is None else int(frame.max()) + 1)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    g = torch.Generator().manual_seed(seed)
    x_train, x_test = x_train.float(), x_test.float()
    for _ in range(epochs):
        perm = torch.randperm(len(x_train), generator=g)
        for i in range(0, len(x_train), 64):
            b = perm[i:i + 64]
            loss = F.cross_entropy(net(x_train[b], q_train[b], frame), y_train[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = net(x_test, q_test, frame).argmax(1)
    return round(float((pred == y_test).float().mean()), 4)
