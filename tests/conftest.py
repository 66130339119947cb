"""Shared fixtures. Tests run with one torch/OpenMP thread (2-core machines collapse with more). The tiny models
are built once per session by :mod:`tiny_models`."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

import tiny_models  # noqa: E402


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A small synthetic TVBench-format folder (4 questions per task)."""
    from mapflow_utils.synthetic import write_tvbench

    return write_tvbench(tmp_path_factory.mktemp("synth"), n_per_task=4, seed=7)


@pytest.fixture
def tiny_adapter():
    """Our embedded architecture at test size (4 layers x 64), random weights, as an adapter."""
    return tiny_models.tiny_llava()


@pytest.fixture
def prepared_sample():
    """``prepared(index=320, answer_format=None, family=OURS) -> (adapter, Prepared)``, cached per arguments."""
    return tiny_models.prepared
