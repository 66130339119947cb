"""The GPU runbook (benchmarks/gpu_runbook.py) runs, at tiny shape on a CPU, the same code it runs at the paper's
shape on a GPU: both methods timed, peak memory of each, the ratio, and the two methods agree."""

import os
import re
import subprocess
import sys

from mapflow_utils import paths


def test_gpu_runbook_runs_at_tiny_shape_on_cpu():
    out = subprocess.run([sys.executable, str(paths.ROOT / "benchmarks" / "gpu_runbook.py"), "--shape", "tiny"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "4 text layers" in text and "1152 video" in text, text
    assert re.search(r"paper-style loop\s+[\d.]+\s+[\d.]+", text) and re.search(r"engine\s+[\d.]+\s+[\d.]+", text)
    m = re.search(r"max \|dp\| ([\d.e+-]+)", text)
    assert m and float(m.group(1)) < 1e-5, f"the engine and the paper-style loop disagree: {text}"
    assert "speed-up" in text and "memory ratio" in text


def test_attribution_benchmark_prints_its_ratios():
    """benchmarks/attribution.py on the from-scratch Video-FT (8 layers), one question: both methods timed, the
    ratios printed, and the estimate ranks the window positions like the exact sweep."""
    out = subprocess.run([sys.executable, str(paths.ROOT / "benchmarks" / "attribution.py"), "--model",
                          str(paths.VIDEO_MODEL), "--questions", "1", "--window", "3"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "88 specs per question (11 flows x 8 window positions" in text, text
    m = re.search(r"the estimate is ([\d.]+)x cheaper than the exact sweep and costs ([\d.]+) clean forwards", text)
    assert m and float(m.group(1)) > 0 and float(m.group(2)) > 0, text
    rho = float(text.splitlines()[2].split()[-1])
    assert rho > 0, f"the estimate does not rank like the exact sweep: {text}"
