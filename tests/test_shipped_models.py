"""The shipped embedded models load offline and still answer as their model cards say."""

import json

import pytest

from mapflow_utils import evaluate, models, paths
from mapflow_utils.data import load_tvbench

#: Questions per task of the shipped split, as its generator recorded them.
SPLIT_N = json.loads((paths.SYNTHETIC / "synth.json").read_text())["n_per_task"]

SHIPPED = [m for pair in paths.EMBEDDED_PAIRS.values() for m in pair]


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_shipped_model_matches_its_card(model_dir):
    """Predictions on a held-out subset equal the per-question results recorded in eval.json (deterministic), and
    the card's accuracy table agrees with those results."""
    assert (model_dir / "model.safetensors").stat().st_size < 25e6
    card = json.loads((model_dir / "eval.json").read_text())
    _, _, adapter = models.load(model_dir)
    ds = load_tvbench(paths.SYNTHETIC, n_per_task=6, seed=3)
    hits: dict = {}
    res = evaluate.accuracy(adapter, ds, "content", hits=hits)
    assert hits == {uid: card["hits"][uid] for uid in hits}
    for task, (c, n) in card["all"].items():
        assert n == SPLIT_N and c == sum(v for uid, v in card["hits"].items() if uid.startswith(task + "/"))
    assert set(res) == set(card["all"])


def test_models_are_small():
    total = sum(f.stat().st_size for d in SHIPPED for f in d.rglob("*") if f.is_file())
    assert total < 50e6, total


SMOL = [paths.SMOL_VIDEO_MODEL, paths.SMOL_IMAGE_MODEL]


@pytest.mark.parametrize("model_dir", SMOL, ids=lambda p: p.name)
def test_shipped_smol_model_matches_its_card(model_dir):
    """The SmolLM2 pair (base from the wheel + shipped parts, LoRA merged): letter predictions on a held-out subset
    equal the per-question results in eval.json, and the card's table agrees with them."""
    card = json.loads((model_dir / "eval.json").read_text())
    assert card["answer_format"] == "letter" == models.answer_format(model_dir)
    _, _, adapter = models.load(model_dir)
    ds = load_tvbench(paths.SYNTHETIC, n_per_task=2, seed=3)
    hits: dict = {}
    evaluate.accuracy(adapter, ds, "letter", hits=hits)
    assert hits == {uid: card["hits"][uid] for uid in hits}
    for task, (c, n) in card["all"].items():
        assert n == SPLIT_N and c == sum(v for uid, v in card["hits"].items() if uid.startswith(task + "/"))


def test_smol_pair_is_small():
    total = sum(f.stat().st_size for d in SMOL for f in d.rglob("*") if f.is_file())
    assert total < 80e6, total
