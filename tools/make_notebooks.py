"""Writes the chapter sources in notebooks/ (parameters, calls, prose). Run: .venv/bin/python tools/make_notebooks.py

Notebooks are the sources of truth once written; this script keeps their cell structure in one reviewable place.
"""

import sys

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell


def params(src: str):
    c = code(src)
    c.metadata["tags"] = ["parameters"]
    return c


def checked(src: str):
    c = code(src)
    c.metadata["tags"] = ["nbval-check-output"]
    return c


def write(name: str, cells) -> None:
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, f"notebooks/{name}.ipynb")


MODELS = [
    md("""# The models

> To this end, we fine-tune LLaVA-NeXT-7B with VideoChat2-IT for 3 epochs and use this model for the analysis in
> our main paper. (*Map the Flow*, §3.1)

The paper compares a **Video-FT** model (an image LLM fine-tuned on video instructions) with its **ImageLLM** base.
No weights can be downloaded where this book is built, so its default subjects are our own pair, trained from
scratch on one CPU thread on the synthetic data of {doc}`data`, in the paper's main architecture
(`LlavaNextVideoForConditionalGeneration`: a CLIP-style vision tower run on each frame, a projector, 2×2 pooling of
the patch grid, a Llama text model). The ImageLLM learned captions and questions about still images; the Video-FT
continued from it on video captions and the five tasks, answering with the option's text (the `content` format).
Every number below comes from these shipped weights."""),
    params("""video_model: str = None  # Video-FT model folder or hub id (None: data/models/tiny-videollm-ft)
image_model: str = None  # its ImageLLM base (None: data/models/tiny-imagellm)
data_dir: str = None  # TVBench-format folder (None: the shipped held-out synthetic split)
n_per_task: int = 10  # questions per task for the live checks and the first look at the mechanism
answer_format: str = "content"  # content (tiny models) or letter (real checkpoints, the paper's format)
window: int = 3  # knockout window in layers (the paper's 9 of 32, scaled to 8 layers)
batch_size: int = 8  # knockout specs per forward
seed: int = 0  # seed of the question subset"""),
    code("""import json
from pathlib import Path

from IPython.display import Markdown, display
from myst_nb import glue

from mapflow_utils import book, data, experiments, models, paths, plots

video_dir = paths.model_dir(video_model, paths.VIDEO_MODEL)
image_dir = paths.model_dir(image_model, paths.IMAGE_MODEL)
_, _, video = models.load(video_dir)
_, _, image = models.load(image_dir)
ds = data.load_tvbench(paths.data_dir(data_dir), n_per_task=n_per_task, seed=seed)"""),
    md("## Size and training"),
    code("""display(Markdown(book.markdown_table(book.model_rows({"Video-FT": video_dir, "ImageLLM": image_dir}),
                                      book.MODEL_HEADERS)))
logs = {f"{name}/{run.name}": [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
        for name, d in (("ImageLLM", image_dir), ("Video-FT", video_dir))
        for run in sorted((Path(d) / "training").glob("*")) if name == "ImageLLM" or "video" in run.name}
fig = plots.loss_curves(logs)"""),
    md("""## Accuracy

On the held-out synthetic split (100 questions per task, never seen in training), from each model's `eval.json`
(written by `mapflow card`, which regenerates it). The control rows show the model a single frame repeated, or the
frames shuffled: a model that needs time falls to chance on them."""),
    code("""evals = {name: json.loads((Path(d) / "eval.json").read_text()) for name, d in
         (("Video-FT", video_dir), ("ImageLLM", image_dir))}
tasks = list(evals["Video-FT"]["all"])
rows = book.eval_rows(evals["Video-FT"], "Video-FT") + book.eval_rows(evals["ImageLLM"], "ImageLLM")
display(Markdown(book.markdown_table(rows, ["model", "frames"] + tasks + ["mean"])))
glue("video_acc", f"{book.mean_accuracy(evals['Video-FT']['all']):.1f}", display=False)
glue("image_acc", f"{book.mean_accuracy(evals['ImageLLM']['all']):.1f}", display=False)
glue("video_shuffled", f"{book.mean_accuracy(evals['Video-FT']['shuffled']):.1f}", display=False)
glue("video_one", f"{book.mean_accuracy(evals['Video-FT']['one_random']):.1f}", display=False)
img = evals["ImageLLM"].get("image_qa", {})
glue("image_qa", f"{book.mean_accuracy(img):.1f}" if img else "n/a", display=False)"""),
    md("""The Video-FT answers {glue:text}`video_acc`% of the questions on average (ImageLLM: {glue:text}`image_acc`%;
image QA of the ImageLLM: {glue:text}`image_qa`%). Shown one random frame it falls to {glue:text}`video_one`%, and
with shuffled frames to {glue:text}`video_shuffled`%.

A live check on this run's subset ({glue:text}`n_live` questions per task), recomputed now:"""),
    checked("""live = {name: experiments.accuracy(m, ds, answer_format) for name, m in (("Video-FT", video), ("ImageLLM", image))}
glue("n_live", n_per_task, display=False)
for name, res in live.items():
    print(name, {t: f"{c}/{n}" for t, (c, n) in res.items()})"""),
    md("""## A first look at the mechanism

The knockout sweeps of the next chapters, on the Video-FT and this run's subset (baseline-correct questions only):
each flow is blocked in a window of `window` layers centred on each layer, and the curve is the mean %change of
the predicted answer's probability with a bootstrap 95% band."""),
    code("""sweep = experiments.knockout_sweep(video, ds, list(experiments.FLOWS), window, answer_format,
                                   batch_size=batch_size, progress=True)
groups = {"cross-frame and the Fig. 3 flows": ["cross-frame", "video→question", "video→last", "question→last",
                                              "last→last"],
          "into the last position (Fig. 6)": ["non-option question→last", "true option→last", "false options→last"],
          "into the options (Fig. 7)": ["video→non-option question", "non-option question→true option",
                                       "video→true option"]}
for title, flows in groups.items():
    fig = plots.sweep_lines({f: sweep.summary(f) for f in flows}, title)"""),
    checked("""for f in experiments.FLOWS:
    mean, lo, hi, n = sweep.summary(f)
    print(f"{f:<34} N={n:<3} min {mean.min():7.1f}% at layer {int(mean.argmin()) + 1}")"""),
    code("""probs = experiments.option_probabilities(video, ds, answer_format)
curves = {name: experiments.bootstrap_mean(probs[key] * 100) + (len(probs[key]),)
          for name, key in (("true option", "true"), ("false options (mean)", "false"))}
fig = plots.sweep_lines(curves, "answer probability at the last position (standard lens)",
                        ylabel="probability (%)")
fig.axes[0].set_xlabel("layer")"""),
    md("""## Rerun with your model

```bash
mapflow run models -p video_model /path/to/LLaVA-NeXT-Video-7B-FT -p image_model /path/to/llava-v1.6-vicuna-7b \\
    -p data_dir /path/to/TVBench -p answer_format letter -p window 9 -p n_per_task 50 --name llava7b
```

(the `eval.json` accuracy tables are then produced by `mapflow card --model DIR --runs …` or read from
`mapflow eval --model DIR --controls`)."""),
]

if __name__ == "__main__":
    chapters = {"models": MODELS}
    for name in sys.argv[1:] or chapters:
        write(name, chapters[name])
