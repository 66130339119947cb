"""Every figure of the book, in one style (``mapflow_utils/mapflow.mplstyle``)."""

from __future__ import annotations

import random
from typing import Iterable, Iterator, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .tables import SMALL_N, overall_accuracy, random_accuracy
from .data import sample_indices
from .synthetic import generate_clip

STYLE = "mapflow_utils.mapflow"


#: The data behind every figure drawn in this process, in drawing order: ``{"figure", "kind", "title", "data"}``.
#: A chapter's footer writes it as ``<chapter>.figures.json`` (``chapter.write_figure_data``), which the built page
#: links under each figure.
DRAWN: list[dict] = []


def _jsonable(x):
    """Arrays as lists of floats rounded to 4 decimals; mappings and sequences recursively."""
    if isinstance(x, np.ndarray) or (hasattr(x, "detach") and hasattr(x, "numpy")):
        a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=float)
        return np.where(np.isfinite(a), np.round(a, 4), None).tolist()
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return round(float(x), 4) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _record(kind: str, title: str, data) -> None:
    DRAWN.append({"figure": len(DRAWN) + 1, "kind": kind, "title": title, "data": _jsonable(data)})


def use_style() -> None:
    """Apply the house style (every plotting function calls it)."""
    plt.style.use(STYLE)


def frame_strip(rows: Mapping[str, np.ndarray], titles: Mapping[str, str] | None = None,
                frame_labels: Sequence[str] | None = None, cell: float = 1.0):
    """One row of frames per entry of ``rows`` (label -> uint8 ``[T, H, W, 3]``), an optional line of text above
    each row (``titles``) and labels above the first row's frames. Returns the figure."""
    use_style()
    n_rows, n_cols = len(rows), max(len(f) for f in rows.values())
    gap = 0.45 if titles else 0.1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + 1.4, (cell + gap) * n_rows + 0.2),
                             squeeze=False, gridspec_kw={"hspace": gap / cell * 1.2, "wspace": 0.05})
    for r, (label, frames) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(frames):
                ax.imshow(frames[c])
            if frame_labels is not None and c < len(frame_labels):
                ax.set_xlabel(frame_labels[c], fontsize=7) if r == n_rows - 1 else None
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        if titles and label in titles:
            axes[r, 0].set_title(titles[label], loc="left", fontsize=7, fontweight="normal")
    # the pixels are the video's own; the data of a strip are what each row shows
    _record("frames", " | ".join(rows), {label: {"frames": len(f), "height_width": list(f.shape[1:3]),
                                                 "text": (titles or {}).get(label, "")} for label, f in rows.items()})
    return fig


def example_strip(samples_by_task, num_frames: int = 8, seed: int = 0):
    """One example per task (picked with ``seed``): its sampled frames under its question and answer.

    ``samples_by_task``: task -> list of :class:`~mapflow_utils.data.QASample` (``QADataset.by_task()``).
    Returns the figure.
    """
    rows, titles = {}, {}
    for task, items in samples_by_task.items():
        s = random.Random(f"{seed}/{task}").choice(items)
        label = task.replace("_", " ")
        rows[label] = s.frames(num_frames)
        titles[label] = f"{s.question}   options: {' / '.join(s.candidates)}   answer: {s.answer}"
    return frame_strip(rows, titles, frame_labels=[f"frame {i + 1}" for i in range(num_frames)])


def twin_strip(task: str, seed: int = 0, index: int = 0, num_frames: int = 8):
    """A synthetic clip and its twin with the opposite answer (the same frames played backwards). Returns the
    figure."""

    rows, titles = {}, {}
    for rev in (False, True):
        clip = generate_clip(task, seed, index, reverse=rev)
        idx = sample_indices(len(clip.frames), num_frames, 8, clip.start, clip.end)
        label = f"answer: {clip.answer}"
        rows[label] = clip.frames[idx]
        titles[label] = clip.caption
    return frame_strip(rows, titles, frame_labels=[f"frame {i + 1}" for i in range(num_frames)])


def loss_curves(logs: Mapping[str, Sequence[dict]], title: str = "training loss"):
    """Loss against step for each run (``name -> records of log.jsonl``), one line per loss kind."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.5, 3))
    for name, recs in logs.items():
        kinds = sorted({k for r in recs for k in r if k.startswith("loss_")})
        for kind in kinds:
            pts = [(r["step"], r[kind]) for r in recs if kind in r]
            ax.plot(*zip(*pts), label=f"{name}: {kind[5:]} batches")
            _record("lines", f"{title}: {name}, {kind[5:]}", {"step_loss": pts})
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (answer/caption tokens)")
    ax.set_title(title)
    ax.legend()
    return fig


def sweep_lines(curves: Mapping[str, tuple], title: str, ylabel: str = "% change of answer probability",
                ax=None, xlabel: str = "layer (window centre)"):
    """Mean %change per layer with a 95% band: ``curves[label] = (mean, lo, hi, N)``; layers shown 1-indexed."""
    use_style()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3))
    else:
        fig = ax.figure
    for label, (mean, lo, hi, n) in curves.items():
        x = np.arange(1, len(mean) + 1)
        (line,) = ax.plot(x, mean, marker="o", ms=3, label=f"{label} (N={n})")
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    fewest = min((c[3] for c in curves.values()), default=0)
    if fewest < SMALL_N:
        ax.text(0.99, 0.03, f"N = {fewest}: too few questions to read", transform=ax.transAxes, ha="right",
                va="bottom", color="C1", fontsize="small")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    _record("lines", title, {"x": f"{xlabel} (1-indexed)", "y": ylabel,
                             "curves": {label: {"mean": m, "lo": lo, "hi": hi, "N": n}
                                        for label, (m, lo, hi, n) in curves.items()}})
    return fig


def pathway_bars(results: Mapping[str, object], title: str):
    """Table 3 as bars: overall accuracy (%) with full attention, the effective pathways only, and random blocking
    of as many edges (mean ± SD of the draws), one group per entry of ``results`` (``{name:``
    :class:`~mapflow_utils.results.PathwayResult` ``}``)."""
    use_style()
    fig, ax = plt.subplots(figsize=(1.2 + 2.2 * len(results), 3))
    for k, (name, r) in enumerate(results.items()):
        rand, sd = random_accuracy(r.acc, r.random_labels)
        values = [overall_accuracy(r.acc["full"]), overall_accuracy(r.acc["pathways"]), rand]
        for j, (label, v) in enumerate(zip(("full attention", f"pathways ({100 * r.kept():.0f}% of edges)",
                                            "random blocking"), values)):
            ax.bar(k + (j - 1) * 0.27, v, 0.25, yerr=sd if j == 2 else None, capsize=3, color=f"C{j}",
                   label=label if k == 0 else None)
    _record("bars", title, {name: {"full": overall_accuracy(r.acc["full"]),
                                   "pathways": overall_accuracy(r.acc["pathways"]),
                                   "random_mean_sd": random_accuracy(r.acc, r.random_labels), "kept": r.kept(),
                                   "per_task": r.acc} for name, r in results.items()})
    ax.set_xticks(range(len(results)), list(results))
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def side_by_side(panels: Mapping[str, Mapping[str, tuple]], title: str,
                 ylabel: str = "% change of answer probability", xlabel: str = "layer (window centre)"):
    """One :func:`sweep_lines` panel per entry of ``panels`` (e.g. one per model), each on its own y scale (models'
    magnitudes differ by orders: a shared axis flattens all but the largest)."""
    use_style()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.2), squeeze=False)
    for ax, (name, curves) in zip(axes[0], panels.items()):
        sweep_lines(curves, name, ylabel, ax=ax, xlabel=xlabel)
    fig.suptitle(title)
    return fig


def sweep_grid(curves: Mapping[str, tuple], tasks: Sequence[str], title: str = "",
               ylabel: str = "% change of answer probability"):
    """One panel per task plus one pooled (3 columns); one line per entry of ``curves`` (label ->
    ``(SweepResult, flow)``); the legend with N sits in the pooled panel."""
    use_style()
    panels = list(tasks) + ["all tasks"]
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(9.5, 2.7 * rows + 0.4), sharey=True, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.axis("off")
            continue
        task = panels[k]
        lines = {label: r.summary(flow, None if task == "all tasks" else task) for label, (r, flow) in curves.items()}
        ns = sorted({v[3] for v in lines.values()})
        label_n = f"N={ns[0]}" if len(ns) == 1 else "N=" + "/".join(str(v[3]) for v in lines.values())
        sweep_lines(lines, f"{task.replace('_', ' ')} ({label_n})", ylabel=ylabel if k % cols == 0 else "", ax=ax)
        if task != "all tasks":
            ax.get_legend().remove()
        else:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return fig  # the style's constrained layout places the title and panels


def frequency_lines(norm: Mapping[str, np.ndarray], title: str, xlabel: str = "layer"):
    """Normalised keyword frequency per layer, one line per keyword group (Fig. 4)."""
    use_style()
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    for label, y in norm.items():
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("normalised top-1 frequency")
    ax.set_title(title)
    ax.legend()
    _record("lines", title, {"x": f"{xlabel} (1-indexed)", "frequency": norm})
    return fig


def frame_heatmaps(maps: Mapping[str, np.ndarray], title: str, unit: str = "frame"):
    """Attention mass per (layer, frame unit), one panel per condition: ``maps[label]`` is ``[layers, units]``;
    ``unit`` names what a column is for the model (``Adapter.frame_unit()``: a frame, or a temporal group)."""
    use_style()
    fig, axes = plt.subplots(1, len(maps), figsize=(3.3 * len(maps), 2.8), squeeze=False)
    vmax = max(float(m.max()) for m in maps.values())
    for ax, (label, m) in zip(axes[0], maps.items()):
        im = ax.imshow(m, aspect="auto", cmap="viridis", vmin=0, vmax=vmax, origin="lower",
                       extent=(0.5, m.shape[1] + 0.5, 0.5, m.shape[0] + 0.5))
        ax.set_xlabel(unit if len(unit) < 30 else unit.split(" (")[0])
        ax.set_ylabel("layer")
        ax.set_title(label)
        ax.grid(False)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="attention mass")
    _record("heatmaps", title, {"rows": "layer (1-indexed)", "columns": unit, "mass": maps})
    fig.suptitle(title if unit == "frame" else f"{title}  (columns: {unit})", x=0.01, ha="left", fontweight="bold")
    return fig


def attention_on_frames(frames: np.ndarray, grids: Mapping[str, np.ndarray], title: str):
    """The frames with the attention of each condition drawn over them: ``grids[label]`` is ``[units, h, w]``.

    A unit is a frame, or for models that merge frames a temporal group (then each column shows the group's first
    frame, labelled with the frames it holds); a ``1 x 1`` grid (frames of unequal token counts) is drawn as one
    uniform overlay of that frame's mass.
    """
    use_style()
    units = len(next(iter(grids.values())))
    k = max(1, -(-len(frames) // units))  # frames per unit
    fig, axes = plt.subplots(len(grids), units, figsize=(1.0 * units + 1.2, 1.15 * len(grids) + 0.5), squeeze=False)
    vmax = max(float(g.max()) for g in grids.values()) or 1.0
    for r, (label, g) in enumerate(grids.items()):
        for c in range(units):
            ax = axes[r, c]
            frame = frames[min(c * k, len(frames) - 1)]
            ax.imshow(frame)
            h, w = frame.shape[:2]
            ax.imshow(g[c], cmap="magma", alpha=0.55, vmin=0, vmax=vmax, extent=(0, w, h, 0),
                      interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if r == 0 and k > 1:
                ax.set_title(f"frames {c * k + 1}-{min(len(frames), c * k + k)}", fontsize=7)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    note = f"  (one column per temporal group of {k} frames)" if k > 1 else ""
    if next(iter(grids.values())).shape[-1] == 1:
        note += "  (frames of unequal token counts: mass per frame, no spatial layout)"
    fig.suptitle(title + note, x=0.01, ha="left", fontweight="bold", fontsize=9)
    _record("attention on frames", title, {"units": "frame (or temporal group)", "grids": grids})
    return fig


def _images(figures: Iterable, dpi: int = 80):
    """Each matplotlib figure as an ipywidgets ``Image`` (PNG at ``dpi``: widget state is saved in the page), the
    figure closed. Pass a generator to keep one figure open at a time (matplotlib warns past 20)."""
    import io

    import ipywidgets as widgets

    images = []
    for fig in figures:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        images.append(widgets.Image(value=buf.getvalue(), format="png"))
    return images


def layer_slider(figures: Iterable, description: str = "layer"):
    """An ipywidgets slider over pre-rendered figures (one per layer). The slider drives a ``Stack`` through
    ``jslink``, so it works in the static HTML book, where no Python kernel runs."""
    import ipywidgets as widgets

    images = _images(figures)
    stack = widgets.Stack(images, selected_index=0)
    # the widget counts from 0 (the Stack's index); a label shows the figures' 1-based layer beside it
    slider = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description=description, readout=False,
                               style={"description_width": "initial"})
    play = widgets.Play(value=0, min=0, max=len(images) - 1, interval=700, description="play")
    labels = widgets.Stack([widgets.Label(f"{description} {i + 1} of {len(images)}") for i in range(len(images))],
                           selected_index=0)
    widgets.jslink((play, "value"), (slider, "value"))
    widgets.jslink((slider, "value"), (stack, "selected_index"))
    widgets.jslink((slider, "value"), (labels, "selected_index"))
    return widgets.VBox([widgets.HBox([play, slider, labels]), stack])


def explorer(tree: Mapping, levels: Sequence[str]):
    """Pre-rendered figures under one selector per level, for a reader who would rather choose than scroll.

    ``tree``: nested mappings, one level per entry of ``levels`` (e.g. ``{figure: {subject: {task: Figure}}}`` with
    ``levels=("figure", "subject", "task")``), matplotlib figures at the leaves. Each level with a choice is a
    dropdown driving a ``Stack`` through ``jslink``, so the choice works in the static HTML book from the saved
    widget state; a level with one entry is a label, not a dropdown of one. Dropdowns of the same level that offer
    the same choices are linked to each other, so changing "figure" keeps the chosen subject and task.
    """
    groups: dict[tuple, list] = {}
    root = _explorer(tree, tuple(levels), groups)
    import ipywidgets as widgets

    for same in groups.values():
        for a, b in zip(same, same[1:]):
            widgets.jslink((a, "index"), (b, "index"))
    return root


def _explorer(tree, levels: tuple[str, ...], groups: dict):
    import ipywidgets as widgets

    if not levels:
        return tree if isinstance(tree, widgets.Widget) else _images([tree])[0]
    keys = list(tree)
    children = [_explorer(tree[k], levels[1:], groups) for k in keys]
    labels = [str(k).replace("_", " ") for k in keys]
    if len(keys) == 1:
        return widgets.VBox([widgets.Label(f"{levels[0]}: {labels[0]}"), children[0]])
    stack = widgets.Stack(children, selected_index=0)
    choose = widgets.Dropdown(options=[(label, i) for i, label in enumerate(labels)], value=0,
                              description=levels[0], style={"description_width": "initial"})
    widgets.jslink((choose, "index"), (stack, "selected_index"))
    groups.setdefault((levels, tuple(labels)), []).append(choose)
    return widgets.VBox([choose, stack])


def curve_explorer(figures: Mapping[str, Mapping[str, object]], tasks: Sequence[str],
                   ylabel: str = "% change of answer probability", xlabel: str = "layer (window centre)"):
    """:func:`explorer` over figure × subject × task, one :func:`sweep_lines` panel per choice.

    ``figures[figure][subject]`` has ``curves(task)`` (task None pools the tasks) returning ``{label: (mean, lo, hi,
    N)}``: :class:`~mapflow_utils.results.Lines` for knockout sweeps, :class:`~mapflow_utils.results.ProbabilityLines`
    for the lens's answer probability."""
    panels = list(tasks) + ["all tasks"]
    # each leaf rendered to an image at once (one open figure at a time)
    tree = {fig: {subject: {task: _images([sweep_lines(source.curves(None if task == "all tasks" else task),
                                                       f"{fig}: {subject}, {task.replace('_', ' ')}", ylabel,
                                                       xlabel=xlabel)])[0]
                            for task in panels}
                  for subject, source in subjects.items()}
            for fig, subjects in figures.items()}
    return explorer(tree, ("figure", "subject", "task"))


def attention_slider(frames: np.ndarray, grids: Mapping[str, np.ndarray], word: str):
    """Fig. 5 drawn on the frames of one question, one figure per layer (``grids[label]``: ``[layers, frames, h,
    w]`` attention of ``word`` per layer), under a 1-based layer slider that works in the static page."""
    n = len(next(iter(grids.values())))
    figs = (attention_on_frames(frames, {k: g[l] for k, g in grids.items()},
                                f'layer {l + 1}: "{word}" → frames (mean over questions)') for l in range(n))
    return layer_slider(figs, "layer")


def lens_slider(readout: dict, variant: str = "standard"):
    """The logit lens at the last position, one bar chart per layer (the ``k`` most probable tokens, the answer's
    token highlighted), under a 1-based layer slider that works in the static page. ``readout``:
    :func:`~mapflow_utils.experiments.lens_readout`."""
    use_style()
    return layer_slider(_lens_bars(readout, variant), "layer")


def _lens_bars(readout: dict, variant: str) -> Iterator:
    """:func:`lens_slider`'s figures, one at a time."""
    n = len(readout["tokens"])
    for layer, (tokens, probs) in enumerate(zip(readout["tokens"], readout["probs"])):
        fig, ax = plt.subplots(figsize=(5.5, 2.8))
        colors = ["tab:green" if t == readout["answer_token"] else "tab:gray" for t in tokens]
        ax.barh(range(len(tokens))[::-1], 100 * probs, color=colors)
        ax.set_yticks(range(len(tokens))[::-1], [f"'{t}'" for t in tokens], fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_xlabel("probability at the last position (%)")
        where = f"layer {layer + 1} of {n}" if variant == "standard" else (
            f"input of layer {layer + 1}" if layer < n - 1 else "final norm output")
        ax.set_title(f"{variant} lens, {where}; answer '{readout['answer_token']}' in green", fontsize=9)
        _record("lens bars", f"{variant} lens, {where}", {"tokens": list(tokens), "probability": probs,
                                                          "answer": readout["answer_token"]})
        yield fig


def letter_curve(records: Sequence[dict], chance: float, title: str = "answer-letter accuracy while training"):
    """Held-out letter accuracy against training step (the bounded letter attempt), with the chance level."""
    use_style()
    pts = [(r["step"], 100 * r["letter_accuracy"]) for r in records if "letter_accuracy" in r]
    fig, ax = plt.subplots(figsize=(5, 2.8))
    if pts:
        ax.plot(*zip(*pts), marker="o", ms=3, label="letter accuracy (held-out image questions)")
    ax.axhline(100 * chance, color="black", lw=0.8, ls="--", label=f"chance ({100 * chance:.1f}%)")
    _record("lines", title, {"step_accuracy_percent": pts, "chance_percent": 100 * chance})
    ax.set_ylim(0, 100)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend()
    return fig


def held_out_curves(logs: Mapping[str, Sequence[dict]], chance: float, title: str):
    """Held-out accuracy per task (or image question kind) through consecutive training runs (``name -> records
    of log.jsonl``, in order), against the step counted from the first run; each run's answer format (``letter`` or
    ``content``: the options' words) is read from its records and named at its start. Runs without held-out records
    (the projector alignment) only shift the axis."""
    use_style()
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    offset, colours = 0, {}
    for name, recs in logs.items():
        evals = [r for r in recs if "by" in r]
        last = max((r["step"] for r in recs), default=0)
        if evals:
            fmt = next(k for k in evals[0] if k.endswith("_accuracy"))
            ax.axvline(offset, color="grey", lw=0.6, ls=":")
            ax.text(offset, 2, f" {name} ({fmt[:-9]})", fontsize=6, rotation=90, va="bottom", color="grey")
            for group in evals[-1]["by"]:
                pts = [(offset + r["step"], 100 * r["by"][group]) for r in evals if group in r["by"]]
                kw = {"color": colours[group]} if group in colours else {"label": group}
                (line,) = ax.plot(*zip(*pts), marker="o", ms=2, lw=1, **kw)
                colours.setdefault(group, line.get_color())
                _record("lines", f"{title}: {name}, {group}", {"step_accuracy_percent": pts, "format": fmt})
        offset += last
    ax.axhline(100 * chance, color="black", lw=0.8, ls="--", label=f"chance ({100 * chance:.1f}%)")
    ax.set_ylim(0, 100)
    ax.set_xlabel("step (counted from the first run)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


# ------------------------------------------------------------------ beyond the paper: the whole map at once


def _map_panel(ax, grid: np.ndarray, names: Sequence[str], title: str, limit: float):
    """One (query block × key block) heat map of %change on a diverging scale centred on 0 (blank: not attributed
    or not attended: a query cannot see later keys)."""
    im = ax.imshow(np.where(np.isfinite(grid), grid, np.nan), cmap="RdBu", vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("blocked keys (source)")
    ax.set_ylabel("blocked queries (target)")
    ax.set_title(title, fontsize=9)
    ax.grid(False)
    return im


def _limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(max(1e-6, np.percentile(finite, 99))) if finite.size else 1.0


def strongest_map(mean_map: np.ndarray, names: Sequence[str], title: str):
    """Each (query block, key block) pair's strongest estimated effect over the layers (the most negative mean
    %change of blocking that pair in one layer), with the layer where it occurs written in the cell."""
    use_style()
    with np.errstate(all="ignore"):
        filled = np.where(np.isfinite(mean_map), mean_map, np.inf)
        layer = filled.argmin(0)
        low = np.take_along_axis(mean_map, layer[None], 0)[0]
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    im = _map_panel(ax, low, names, title, _limit(low))
    for i in range(len(names)):
        for j in range(len(names)):
            if np.isfinite(low[i, j]) and abs(low[i, j]) >= 0.5:
                ax.text(j, i, str(layer[i, j] + 1), ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, shrink=0.8, label="% change (strongest layer; number: that layer)")
    _record("heatmap", title, {"rows (queries)": list(names), "columns (keys)": list(names),
                               "strongest % change": low, "layer (1-indexed)": layer + 1})
    return fig


def map_slider(mean_map: np.ndarray, names: Sequence[str], title: str):
    """The whole map one layer at a time (estimated mean %change of blocking each block pair in that layer alone),
    on one colour scale, under a 1-based layer slider that works in the static page."""
    use_style()
    limit = _limit(mean_map)

    def figures():
        for layer, grid in enumerate(mean_map):
            fig, ax = plt.subplots(figsize=(5.2, 4.6))
            im = _map_panel(ax, grid, names, f"{title}: layer {layer + 1} of {len(mean_map)}", limit)
            fig.colorbar(im, ax=ax, shrink=0.8, label="% change")
            _record("heatmap", f"{title}: layer {layer + 1}", {"rows (queries)": list(names),
                                                               "columns (keys)": list(names), "% change": grid})
            yield fig

    return layer_slider(figures(), "layer")


def query_explorer(mean_map: np.ndarray, names: Sequence[str], title: str):
    """Flow × layer: for the chosen query block (the flow's target), the estimated mean %change of blocking each key
    block (its source) in each layer alone, as one heat map (a dropdown that works in the static page)."""
    use_style()
    limit = _limit(mean_map)
    tree = {}
    for i, target in enumerate(names):
        rows = mean_map[:, i, :].T  # [keys, layers]
        if not np.isfinite(rows).any():
            continue
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        im = ax.imshow(rows, aspect="auto", cmap="RdBu", vmin=-limit, vmax=limit,
                       extent=(0.5, rows.shape[1] + 0.5, len(names) - 0.5, -0.5))
        ax.set_yticks(range(len(names)), [f"{n} → {target}" for n in names], fontsize=7)
        ax.set_xlabel("layer")
        ax.set_title(f"{title}: into {target}", fontsize=9)
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.8, label="% change")
        _record("heatmap", f"{title}: into {target}", {"rows": [f"{n} → {target}" for n in names],
                                                       "columns": "layer (1-indexed)", "% change": rows})
        tree[target] = fig
    return explorer(tree, ("query block",))


def estimate_vs_exact(lines: Mapping[str, Mapping[str, tuple]], title: str):
    """One panel per flow: the estimated and the exact mean %change per window position (95% bands), each panel on
    its own scale. ``lines[flow] = {"exact": (mean, lo, hi, N), "estimate": …}``."""
    use_style()
    cols = 3
    rows = -(-len(lines) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(9.5, 2.6 * rows + 0.4), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(lines):
            ax.axis("off")
            continue
        flow = list(lines)[k]
        sweep_lines(lines[flow], flow, ylabel="% change" if k % cols == 0 else "", ax=ax)
        if k:
            ax.get_legend().remove()
        else:
            ax.legend(fontsize=7)
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return fig
