"""Shared fixtures. Tests run with one torch/OpenMP thread (2-core machines collapse with more)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A small synthetic TVBench-format folder (4 questions per task)."""
    from mapflow_utils.synthetic import write_tvbench

    return write_tvbench(tmp_path_factory.mktemp("synth"), n_per_task=4, seed=7)
