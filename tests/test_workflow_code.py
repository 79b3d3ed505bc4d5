"""Dry runs of the workflow: each rule's code inputs, and configs refused before any job."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_workflow import TINY_CONFIG, job_counts

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analyzer", "interventions", "latent_mi", "trainer")
# what each rule runs: `python -m <module>` (read from its shell command) or a script
SCRIPTS = {
    "figure": "workflow/scripts/figures.py",
    "twelve_bit_figure": "workflow/scripts/figures.py",
}
TRAINING = {"train_run", "twelve_bit_train_run"}  # trainer code is not an input (README)


def dry_run(workdir: Path, *args: str, check: bool = True) -> str:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
    cmd += ["--directory", str(workdir), "--cores", "2", "-n", "-p", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    text = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, text[-3000:]
    elif proc.returncode == 0:
        raise AssertionError(f"snakemake {' '.join(args)} succeeded: {text[-2000:]}")
    return text


def jobs_by_rule(text: str) -> dict[str, tuple[set[str], str]]:
    """First job of each rule in a dry run with -p: (its input files, its shell command)."""
    jobs = {}
    for block in re.split(r"\n(?=\[.*\]\n(?:local)?rule )", text):
        m = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if not m or m.group(1) in jobs:
            continue
        inputs = re.search(r"^\s+input: (.*)$", block, re.M)
        files = set(inputs.group(1).split(", ")) if inputs else set()
        shell = re.search(
            r"^(?:Shell command: )?\s*((?:OMP_NUM_THREADS=\d+ )?python -m .*)$", block, re.M
        )
        jobs[m.group(1)] = (files, shell.group(1) if shell else "")
    return jobs


def imported_project_files(module: str | None, script_imports: str | None = None) -> set[str]:
    """Project files a command really imports (python -X importtime), as repo-relative paths:
    ``python -m <module> --help``, or the given import statements for a script."""
    args = ["-m", module, "--help"] if module else ["-c", script_imports]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if "|" in line}
    files = set()
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        base = Path(*name.split("."))
        for rel in (base.with_suffix(".py"), base / "__init__.py"):
            if (ROOT / rel).is_file():
                files.add(str(rel))
    assert files, proc.stderr[-2000:]
    return files


@pytest.mark.slow
def test_every_rule_declares_the_project_modules_its_command_imports(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    jobs = jobs_by_rule(dry_run(tmp_path, "figures", "robustness"))
    assert {"analyze_run", "interventions_run", "findings_bins", "robustness_run"} <= set(jobs)
    checked = 0
    for rule, (inputs, shell) in jobs.items():
        # inputs are relative to the working directory
        code = {os.path.relpath(tmp_path / f, ROOT) for f in inputs if f.endswith(".py")}
        if rule in TRAINING:
            assert not code, rule  # editing the trainer never retrains a finished run
            continue
        module = re.search(r"python -m ([\w.]+)", shell)
        if module:
            used = imported_project_files(module.group(1))
        elif rule in SCRIPTS:
            script = (ROOT / SCRIPTS[rule]).read_text()
            assert "from analyzer import figures" in script
            used = imported_project_files(None, "import analyzer.figures as f; f.DRAW")
            used.add(SCRIPTS[rule])
        else:
            assert not code, rule  # a target rule
            continue
        missing = used - code
        assert not missing, (rule, sorted(missing))
        checked += 1
    assert checked >= 8


def test_unknown_torchvision_arch_is_refused_before_any_job_in_one_line(tmp_path):
    bad = {**TINY_CONFIG, "grid": {**TINY_CONFIG["grid"], "arch": ["torchvision:notamodel"]}}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(bad))
    text = dry_run(tmp_path, "figures", check=False)
    assert re.search(
        r"invalid config: grid\.arch: unknown torchvision classifier 'notamodel'", text
    )
    assert "Traceback" not in text and "rule train_run" not in text


def test_twelve_bit_runs_only_where_a_config_enables_them(tmp_path):
    mine = {k: v for k, v in TINY_CONFIG.items() if k != "twelve_bit"}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))  # enabled
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mine))
    default = job_counts(dry_run(tmp_path, "figures"))
    assert default["twelve_bit_train_run"] == 1 and default["train_run"] == 4
    counts = job_counts(dry_run(tmp_path, "figures", "--configfile", "mine.yaml"))
    assert counts["train_run"] == 4 and "twelve_bit_train_run" not in counts
    asked = job_counts(dry_run(tmp_path, "twelve_bit", "--configfile", "mine.yaml"))
    assert asked.get("twelve_bit_train_run") == 3  # the target still trains when asked
