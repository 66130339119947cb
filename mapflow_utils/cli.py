"""The ``mapflow`` command: ``mapflow data synth``, ``mapflow run CHAPTER -p name value``, ``mapflow book``. A thin
command line: it parses arguments and dispatches to the chapter runner (:mod:`mapflow_utils.runner`), the book build
(:mod:`mapflow_utils.site`), training, cards and the classroom."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from . import paths
from .runner import fit_parameters, run_chapter, run_shards
from .site import build_book
from .synthetic import LONG, SynthConfig, write_tvbench
from .data import PAPER_TASKS
from .models import answer_format
from .models.tiny_vlms import LAYOUTS, save_tiny
from .paper import write_subject_configs


def parse_value(text: str) -> Any:
    """Parse a ``-p`` value like papermill: numbers, booleans, None, lists (``[a, b]``) and strings."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mapflow", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    data = sub.add_parser("data", help="data sets").add_subparsers(dest="data_cmd", required=True)
    synth = data.add_parser("synth", help="write synthetic TVBench-format videos + json")
    synth.add_argument("--out", required=True, help="output folder (gets json/ and video/)")
    synth.add_argument("--n-per-task", type=int, default=100, help="questions per task")
    synth.add_argument("--seed", type=int, default=0, help="generator seed")
    synth.add_argument("--tasks", nargs="*", default=None, help="tasks (default: the paper's five)")
    synth.add_argument("--long", action="store_true", help="long-video variant (64 frames; §D.1)")

    run = sub.add_parser("run", help="execute a chapter notebook with papermill")
    run.add_argument("chapter", help=f"chapter name (a notebook in {paths.NOTEBOOKS})")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a parameter; values are parsed as YAML (numbers, lists, true/false, null)")
    run.add_argument("-r", "--raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a parameter kept as a string")
    run.add_argument("-f", "--parameters-file", default=None, metavar="YAML",
                     help="parameters from a YAML mapping (name: value); -p/-r given as well override them")
    run.add_argument("--shard", default=None, metavar="i/n|slurm",
                     help="run only this share of the questions into the shared result cache (slurm: from the "
                          "array job's environment); then run once without --shard to render the page")
    run.add_argument("--shards", type=int, default=None, metavar="N",
                     help="run N local processes (shards 0/N … N-1/N), then the unsharded run that renders the page")
    run.add_argument("--name", default="default", help="run name: output goes to runs/<name>/<chapter>.ipynb")
    run.add_argument("--out", default=None, help="output notebook or folder (overrides --name)")

    card = sub.add_parser("card", help="evaluate a trained model folder and write its model card")
    card.add_argument("--model", required=True, help="the model folder (e.g. data/models/tiny-videollm-ft)")
    card.add_argument("--runs", nargs="+", required=True, help="training run folders, in order")
    card.add_argument("--title", required=True)
    card.add_argument("--images", type=int, default=200, help="held-out images for image-QA accuracy")
    card.add_argument("--mechanism", type=int, default=0,
                      help="questions per task for a first look at the knockout sweeps (0: none)")
    card.add_argument("--window", type=int, default=3, help="knockout window for --mechanism")
    card.add_argument("--only", nargs="*", default=None,
                      help="SmolLM2 models: compute only these evaluation pieces (to share the work between "
                           "processes); the card is written once every piece is there")

    book = sub.add_parser("book", help="execute the chapters into book/ and build the HTML (Jupyter Book 1)")
    book.add_argument("--no-execute", action="store_true", help="build from the executed notebooks as they are")
    book.add_argument("--chapters", nargs="*", default=None, help="execute only these chapters")

    sub.add_parser("train", help="train the embedded models (see mapflow train -h)", add_help=False)

    asg = sub.add_parser("assignments", help="the classroom assignments (otter-grader): build, grade")
    asg_sub = asg.add_subparsers(dest="asg_cmd", required=True)
    ab = asg_sub.add_parser("build", help="otter assign each master into dist/assignments/<name>/ (student and "
                                          "autograder notebooks, the autograder zip); the solutions must pass")
    ab.add_argument("names", nargs="*", help="assignments (default: all)")
    ag = asg_sub.add_parser("grade", help="grade submissions locally with the autograder zip (otter run, no Docker)")
    ag.add_argument("name", help="the assignment, e.g. a1_knockout")
    ag.add_argument("submissions", nargs="+", help="submitted notebooks (.ipynb) or export zips")
    ag.add_argument("--out", default=None, help="also write the scores as CSV here")
    ag.add_argument("--dist", default=None, help="the built assignment folder (default: dist/assignments/<name>)")

    tv = sub.add_parser("tiny-vlm", help="save a tiny random-weight copy of a supported model class (for trying "
                                         "chapters on every class without downloads)")
    tv.add_argument("model_class", help="e.g. Qwen2VLForConditionalGeneration, or a paper layout: "
                                        "PllavaForConditionalGeneration, LlavaNextForConditionalGeneration (llava-v1.6), "
                                        "InternVLChatV1_5 (see mapflow_utils.models.tiny_vlms.LAYOUTS)")
    tv.add_argument("--out", required=True, help="output folder (pass it as a chapter's video_model)")
    tv.add_argument("--seed", type=int, default=0)

    cv = sub.add_parser("convert", help="convert an InternVL-Chat V1.5 checkpoint (the paper's Mini-InternVL) to "
                                        "transformers' InternVL + Phi-3, without its remote code (models.load does "
                                        "this by itself, once, into the cache)")
    cv.add_argument("src", help="the original checkpoint folder (config.json model_type internvl_chat)")
    cv.add_argument("dst", help="output folder (load it with mapflow_utils.models.load, or pass it as video_model)")
    pc = sub.add_parser("paper-configs", help="write configs/paper/<model>.yaml, the paper's setup per subject, "
                                              "from data/paper/numbers.yaml")
    pc.add_argument("--out", default=None, help="output folder (default: configs/paper)")

    ev = sub.add_parser("eval", help="multiple-choice accuracy per task of a model on a TVBench-format folder")
    ev.add_argument("--model", required=True, help="model folder or hub id (loaded with mapflow_utils.models.load)")
    ev.add_argument("--data", default=None, help="TVBench-format folder (default: the shipped synthetic split)")
    ev.add_argument("--format", default=None, choices=["letter", "content"],
                    help="answer format (default: the model's own: letter for the SmolLM2 pair, content for the tiny)")
    ev.add_argument("--n-per-task", type=int, default=None, help="seeded subset per task (default: all)")
    ev.add_argument("--controls", action="store_true", help="also the single-frame and shuffled-frame controls")
    ev.add_argument("--images", type=int, default=0, help="also image-QA accuracy on this many held-out images")

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        if len(argv) > 1 and argv[1] == "smol-tower":
            from .perception import main as tower_main

            return tower_main(argv[1:])
        if len(argv) > 1 and argv[1].startswith("smol-"):
            from .train_smol import main as smol_main

            return smol_main(argv[1:])
        from .train import main as train_main

        return train_main(argv[1:])
    args = parser.parse_args(argv)
    if args.cmd == "data":

        out = write_tvbench(args.out, n_per_task=args.n_per_task, seed=args.seed,
                            tasks=args.tasks or PAPER_TASKS, cfg=LONG if args.long else SynthConfig(), progress=True)
        print(f"wrote {out}")
    elif args.cmd == "run":
        params = {}
        if args.parameters_file:
            loaded = yaml.safe_load(Path(args.parameters_file).read_text())
            if not isinstance(loaded, dict):
                raise SystemExit(f"mapflow run: {args.parameters_file} must hold a YAML mapping of parameter: value")
            params.update(fit_parameters(args.chapter, loaded, args.parameters_file))
        params.update({k: parse_value(v) for k, v in args.parameter})
        params.update({k: v for k, v in args.raw})
        if args.shard:
            params["shard"] = args.shard
        if args.shards:
            run_shards(args.chapter, params, args.shards, name=args.name)
        print(run_chapter(args.chapter, params, out=args.out, name=args.name))
    elif args.cmd == "eval":
        from .cards import evaluate

        evaluate(args.model, args.data, args.format or answer_format(args.model), args.n_per_task, args.controls,
                 args.images)
    elif args.cmd == "card":
        from . import cards
        from .models import smol

        if smol.is_parts(args.model):
            ev = cards.evaluate_card(args.model, images=args.images, only=args.only)
            if ev is None:
                print(f"computed {args.only}; the card is written once every piece of {cards.CARD_PIECES} is there")
                return 0
            print(cards.write_smol_card(args.model, args.runs, args.title, ev, cards.role(args.model)))
            return 0

        table = cards.evaluate(args.model, controls=True, images=args.images)
        extra = cards.mechanism(args.model, args.mechanism, args.window) if args.mechanism else ""
        print(cards.write_tiny_card(args.model, args.runs, args.title, table, extra))
    elif args.cmd == "tiny-vlm":

        if args.model_class not in LAYOUTS:
            raise SystemExit(f"mapflow tiny-vlm: no tiny {args.model_class!r}; known: {', '.join(LAYOUTS)}")
        print(save_tiny(args.model_class, args.out, args.seed))
    elif args.cmd == "convert":
        from .models.internvl_chat import convert

        print(convert(args.src, args.dst))
    elif args.cmd == "paper-configs":

        for path in write_subject_configs(args.out):
            print(paths.shown(path))
    elif args.cmd == "book":
        build_book(execute=not args.no_execute, only=args.chapters)
    elif args.cmd == "assignments":
        _assignments(args)
    return 0


def _assignments(args) -> None:
    from . import classroom

    if args.asg_cmd == "build":
        for name in args.names or classroom.ASSIGNMENTS:
            dist = classroom.build(name)
            print(f"{name}: {paths.shown(str(classroom.student_notebook(dist)))} (students), "
                  f"{paths.shown(str(classroom.autograder_zip(dist)))} (grading)")
        return
    dist = Path(args.dist) if args.dist else classroom.DIST / args.name
    rows = []
    for sub in args.submissions:
        g = classroom.grade(dist, Path(sub))
        rows.append([sub] + [f"{s:g}/{p:g}" for s, p in g.questions.values()] + [f"{g.total[0]:g}/{g.total[1]:g}"])
        print(f"{sub}: {g.total[0]:g}/{g.total[1]:g}")
        for q, (s, p) in g.questions.items():
            print(f"  {q}: {s:g}/{p:g}" + (f"  {g.messages[q]}" if q in (g.messages or {}) else ""))
    if args.out:
        import csv

        with open(args.out, "w", newline="") as f:
            csv.writer(f).writerows([["submission"] + list(g.questions) + ["total"]] + rows)


if __name__ == "__main__":
    raise SystemExit(main())

