"""The researcher's cluster path under a real scheduler (`make test-slurm`): a one-node Slurm cluster on localhost
(tools/slurm_one_node.sh, Debian's slurm-wlm + munge), a chapter submitted as an array of shards through
tools/mapflow.sbatch exactly as the README shows, then the page-rendering run with --dependency=afterok. The shards
together compute every sample once, the merge computes nothing, and its claims equal a one-process run's."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from mapflow_utils import paths, runner

CHAPTER = "s3_2_temporal"
#: The tiny pair, two tasks, two questions each: seconds per shard on one core.
PARAMS = {"video_model": str(paths.VIDEO_MODEL), "image_model": str(paths.IMAGE_MODEL),
          "tasks": ["action_antonym", "object_count"], "n_per_task": 2, "window": 1}
SHARDS = 2


def _p(params: dict) -> list[str]:
    out = []
    for k, v in params.items():
        out += ["-p", k, json.dumps(v) if not isinstance(v, str) else v]
    return out


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-state")
    start = subprocess.run(["bash", str(paths.ROOT / "tools" / "slurm_one_node.sh"), "start", str(state)],
                           capture_output=True, text=True, timeout=900)
    assert start.returncode == 0, f"the one-node cluster did not start:\n{start.stdout}\n{start.stderr}"
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    yield env
    subprocess.run(["bash", str(paths.ROOT / "tools" / "slurm_one_node.sh"), "stop", str(state)], timeout=120)


def _sbatch(env: dict, *args: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", *args], cwd=paths.ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, f"sbatch {args}: {out.stderr}"
    return out.stdout.strip().split(";")[0]


def _wait(env: dict, jobs: list[str], timeout: float = 1800) -> dict[str, str]:
    """Wait until the jobs leave the queue; their final states (``scontrol show job``, array tasks included)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        q = subprocess.run(["squeue", "-h", "-j", ",".join(jobs)], env=env, capture_output=True, text=True)
        if q.returncode == 0 and not q.stdout.strip():
            break
        time.sleep(3)
    else:
        pytest.fail(f"jobs {jobs} still queued after {timeout} s")
    states = {}
    for j in jobs:
        info = subprocess.run(["scontrol", "-o", "show", "job", j], env=env, capture_output=True, text=True).stdout
        for line in info.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            task = fields.get("ArrayTaskId")
            states[f"{j}_{task}" if task else j] = fields.get("JobState", "?")
    return states


def test_array_of_shards_then_afterok_merge_under_slurm(slurm, tmp_path):
    shared = tmp_path / "shared-cache"
    params = {**PARAMS, "results_dir": str(shared)}
    (paths.ROOT / "runs").mkdir(exist_ok=True)
    array = _sbatch(slurm, f"--array=0-{SHARDS - 1}", "tools/mapflow.sbatch", CHAPTER, *_p(params))
    merged_out = tmp_path / "merged"
    page = _sbatch(slurm, f"--dependency=afterok:{array}", f"--output={tmp_path}/page-%j.log",
                   "--wrap", " ".join([".venv/bin/mapflow", "run", CHAPTER, *map(repr, _p(params)), "--out",
                                       str(merged_out)]))
    states = _wait(slurm, [array, page])
    logs = "\n".join(p.read_text()[-2000:] for p in [*paths.ROOT.glob(f"runs/slurm-{array}_*.log"),
                                                     *tmp_path.glob("page-*.log")])
    assert set(states.values()) == {"COMPLETED"} and len(states) == SHARDS + 1, f"{states}\n{logs}"

    shard_provs = [json.loads((paths.ROOT / "runs" / f"{CHAPTER}-shard-{i}" / f"{CHAPTER}.results.json").read_text())
                   ["provenance"] for i in range(SHARDS)]
    cached = sorted(p.relative_to(shared).as_posix() for p in shared.rglob("*.npz"))
    assert cached and sum(p["results_computed"] for p in shard_provs) == len(cached), \
        f"the shards computed {[p['results_computed'] for p in shard_provs]} results for {len(cached)} cached: " \
        "a sample computed twice or not at all"
    merged = json.loads((merged_out / f"{CHAPTER}.results.json").read_text())
    assert merged["provenance"]["results_computed"] == 0, "the page-rendering run recomputed something"
    assert sorted(p.relative_to(shared).as_posix() for p in shared.rglob("*.npz")) == cached

    single = runner.run_chapter(CHAPTER, {**PARAMS, "results_dir": str(tmp_path / "single-cache")},
                             out=tmp_path / "single", progress=False)
    assert json.loads((merged_out / f"{CHAPTER}.claims.json").read_text()) == \
        json.loads(single.with_name(f"{CHAPTER}.claims.json").read_text())


def test_the_array_template_asks_for_no_gpu_by_default():
    """A CPU partition must run the template as is: the GPU request is sbatch's parameter, not the script's."""
    text = (paths.ROOT / "tools" / "mapflow.sbatch").read_text()
    directives = [l for l in text.splitlines() if l.startswith("#SBATCH")]
    assert not [d for d in directives if "gres" in d or "gpu" in d], directives
    assert "--gres=gpu:1" in text, "the usage should show how to ask for a GPU"
