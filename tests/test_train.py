"""The training recipe: its inputs equal the processor's, and a few steps of every stage run end to end."""

import json
from dataclasses import asdict

import torch

from mapflow_utils import prompts as P
from mapflow_utils import train
from mapflow_utils.data import sample_indices
from mapflow_utils.synthetic import generate_clip
from tiny_models import TINY, tiny_llava


def test_training_inputs_match_the_processor():
    """The batches are built without the processor for speed; they must be what the processor would give."""
    ad = tiny_llava()
    proc = ad.processor
    for task, i in [("moving_direction", 5), ("action_sequence", 2)]:
        clip = generate_clip(task, 0, i)
        idx = sample_indices(len(clip.frames), 8, 8, clip.start, clip.end)
        prompt = P.build_prompt(proc, clip.question, clip.candidates, "content", task=task)
        inputs = proc(text=prompt.text, videos=[clip.frames[idx]], return_tensors="pt")
        n_video = int((inputs["input_ids"] == ad.video_token_id).sum())
        ids, labels = train.encode(proc, prompt.text, " " + clip.answer, n_video)
        prompt_ids = inputs["input_ids"][0].tolist()
        assert ids[: len(prompt_ids)] == prompt_ids
        assert all(l == -100 for l in labels[: len(prompt_ids)]) and labels[-1] == proc.tokenizer.eos_token_id
        answer = proc.tokenizer.decode([t for t in labels if t != -100][:-1])
        assert answer.strip() == clip.answer
        assert (inputs["pixel_values_videos"][0] - train.pixels(clip.frames[idx])).abs().max() < 1e-5


def test_batches_are_deterministic():
    ad = tiny_llava()
    cfg = train.StageConfig(stage="videollm", batch_size=3, seed=4)
    a, b = train.Batches(ad.processor, cfg, 4).batch(7), train.Batches(ad.processor, cfg, 4).batch(7)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_stage_runs_a_few_steps(tmp_path, monkeypatch):
    """The smoke test CI runs: two steps of each stage, on the same code path as the real training."""
    from mapflow_utils.models import tiny

    monkeypatch.setattr(tiny, "build", lambda cfg=None, seed=0, _b=tiny.build: _b(TINY, seed))
    img = train.train_stage(train.StageConfig(stage="imagellm", steps=2, batch_size=2, caption_steps=1,
                                              save_every=1, log_every=1), tmp_path / "img", log=lambda *a: None)
    assert (img / "model" / "model.safetensors").is_file() and (img / "checkpoint.pt").is_file()
    vid = train.train_stage(train.StageConfig(stage="videollm", steps=2, batch_size=2, image_share=0.5,
                                              log_every=1), tmp_path / "vid", init=img / "model",
                            log=lambda *a: None)
    meta = json.loads((vid / "train.json").read_text())
    assert meta["steps_done"] == 2
    losses = [json.loads(l) for l in (vid / "log.jsonl").read_text().splitlines()]
    assert all(v == v and v < 20 for r in losses for k, v in r.items() if k.startswith("loss"))
    let = train.train_stage(train.StageConfig(stage="letters", steps=2, batch_size=2, save_every=2,
                                              log_every=1), tmp_path / "let", init=img / "model",
                            log=lambda *a: None)
    recs = [json.loads(l) for l in (let / "log.jsonl").read_text().splitlines()]
    from mapflow_utils.models import load

    model, processor, _ = load(let / "model")  # the logged accuracy is the saved model's, measured again
    assert recs[-1]["letter_accuracy"] == train.letter_accuracy(model, processor)
    # resuming a finished run does nothing more
    again = train.train_stage(train.StageConfig(stage="videollm", steps=2, batch_size=2, log_every=1),
                              tmp_path / "vid", init=img / "model", log=lambda *a: None)
    assert json.loads((again / "train.json").read_text())["steps_done"] == 2


def test_train_command_reproduces_the_run_config():
    from mapflow_utils import paths
    from mapflow_utils.cards import train_command
    from mapflow_utils.train import StageConfig

    meta = {"config": asdict(StageConfig(stage="videollm", seed=3, size="deep", steps=7, lr=1e-3)),
            "init": str(paths.ROOT / "runs" / "train" / "x" / "model")}
    cmd = train_command("deep-videollm-s3", meta)
    assert cmd.startswith("mapflow train videollm --seed 3 --size deep --init runs/train/x/model --steps 7 ")
    assert "--lr 0.001" in cmd and cmd.endswith("--out runs/train/deep-videollm-s3")
    assert "--init" not in train_command("a", {"config": asdict(StageConfig()), "init": "None"})
