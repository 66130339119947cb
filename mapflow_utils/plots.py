"""Every figure of the book, in one style (``mapflow_utils/mapflow.mplstyle``)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

STYLE = "mapflow_utils.mapflow"


def use_style() -> None:
    """Apply the house style (every plotting function calls it)."""
    plt.style.use(STYLE)


def frame_strip(rows: Mapping[str, np.ndarray], titles: Mapping[str, str] | None = None,
                frame_labels: Sequence[str] | None = None, cell: float = 0.9):
    """One row of frames per entry of ``rows`` (label -> uint8 ``[T, H, W, 3]``); returns the figure."""
    use_style()
    n_rows = len(rows)
    n_cols = max(len(f) for f in rows.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + 1.6, cell * n_rows * 1.25 + 0.3),
                             squeeze=False)
    for r, (label, frames) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(frames):
                ax.imshow(frames[c])
            if r == 0 and frame_labels is not None and c < len(frame_labels):
                ax.set_title(frame_labels[c], fontsize=7, fontweight="normal", loc="center")
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        if titles and label in titles:
            axes[r, 0].text(0, -0.12, titles[label], transform=axes[r, 0].transAxes, fontsize=7, va="top",
                            ha="left", clip_on=False)
    fig.tight_layout()
    return fig
