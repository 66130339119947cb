"""What the benchmark scripts share: the subject they measure."""

from __future__ import annotations

from pathlib import Path


def subject(model: str):
    """``(adapter, name)``: the model folder ``model``, or, when it is missing, a fresh SmolLM2 VideoLLM
    (``smol.new_model``: the cost does not depend on the trained weights)."""
    from mapflow_utils import models
    from mapflow_utils.models import smol

    if Path(model).exists():
        return models.load(model)[2], model
    return models.adapter_for(*smol.new_model()), "fresh SmolLM2 VideoLLM (untrained projector)"
