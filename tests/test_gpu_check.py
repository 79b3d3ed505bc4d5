"""benchmarks/gpu_check.py end to end on the CPU at a tiny size, so the GPU check cannot rot
between runs on a GPU machine (it runs there as one prepared script)."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    "environment",
    "imagenette_tree",
    "bench_trainer_amp",
    "bench_trainer_fp32",
    "workflow",
    "interventions_all",
    "analyzer_16_threads",
]

pytestmark = pytest.mark.slow


def test_gpu_check_runs_every_step_on_the_cpu(tmp_path):
    out = tmp_path / "check"
    proc = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "gpu_check.py", out, "--device", "cpu",
         "--scale", "tiny"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    failed = {s["name"]: s["error"] for s in summary["steps"] if not s["ok"]}
    assert proc.returncode == 0 and not failed, (failed, proc.stdout[-3000:])
    assert [s["name"] for s in summary["steps"]] == STEPS
    steps = {s["name"]: s["result"] for s in summary["steps"]}
    assert not steps["environment"]["analyzer_imports_torch"]
    for amp, name in (("off", "bench_trainer_fp32"),):
        rows = steps[name]["rows"]
        assert {r["arch"] for r in rows} == {"vgg16", "resnet18", "resnet50"}
        assert all(r["amp"] == amp and r["dump_over_plain"] > 0 for r in rows)
    assert steps["workflow"]["figures"] > 0 and steps["workflow"]["findings"]
    assert steps["interventions_all"]["edits"] > 0
    assert steps["analyzer_16_threads"]["ratio"] > 0
    table = (out / "summary.md").read_text()
    assert "| workflow | yes |" in table and "peak GPU MiB" in table
    with tarfile.open(out / "artifacts.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith(".md") and "findings" in n for n in names)
