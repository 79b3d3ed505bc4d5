"""Workflow dry runs: per-config results folders, no default keys leaking into a user's config,
and the SLURM profile checked by snakemake-executor-plugin-slurm's own functions."""

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MINE = {
    "grid": {"arch": ["vgg16"], "activation": ["relu"], "regularizer": ["none"], "seed": [0, 1]},
    "dataset": {"name": "synthetic"},
}


def dry_run(workdir: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
    # a dry run caps threads at --cores (1 if not given); on SLURM nothing caps them
    cores = ["--cores", "64" if "--profile" in args else "2"]
    cmd += ["--directory", str(workdir), "-n", "-p", *cores, *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_each_config_writes_under_its_own_results_folder(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
    default = dry_run(tmp_path, "analyze")
    assert "results/default/mi/bins-20/vgg16-relu-none-s0.zarr" in default
    assert re.search(r"results/runs/vgg16-relu-none-s0-[0-9a-f]{8}/done\.json", default)
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(MINE))
    mine = dry_run(tmp_path, "analyze", "--configfile", "mine.yaml")
    assert "results/mine/mi/bins-20/vgg16-relu-none-s0.zarr" in mine
    assert "results/default/" not in mine


def test_default_config_keys_do_not_leak_into_a_users_config(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(MINE))
    out = dry_run(tmp_path, "train", "--configfile", "mine.yaml")
    cfg = yaml.safe_load(re.search(r"--config-json '(\{.*?\})'", out).group(1))
    # config/config.yaml has width {vgg16: 0.125}, train.epochs 12, vgg16 lr 0.01 (digits-only)
    assert cfg["width"] == 1.0
    assert cfg["train"]["epochs"] != 12 and cfg["train"]["lr"] != 0.01
    assert cfg["dataset"]["name"] == "synthetic"


# ---------------------------------------------------------------- SLURM profile
class Resources(dict):
    """The attribute-and-get access the plugin uses on job.resources."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


LOCAL_RULES = {"train", "analyze", "figures", "robustness"}  # `localrules` of the Snakefile


def _value(text: str):
    return int(text) if re.fullmatch(r"\d+", text) else text


def slurm_jobs(text: str) -> dict[str, SimpleNamespace]:
    """First job of each (non-local) rule in a dry run's output: name, threads, resources."""
    jobs = {}
    for block in re.split(r"\n(?=rule |localrule )", text):
        m = re.match(r"rule (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if not m or not res or m.group(1) in jobs or m.group(1) in LOCAL_RULES:
            continue
        resources = Resources(
            (k, _value(v)) for k, v in (kv.split("=", 1) for kv in res.group(1).split(", "))
        )
        threads = re.search(r"(?:--threads |OMP_NUM_THREADS=)(\d+)", block)
        jobs[m.group(1)] = SimpleNamespace(
            name=m.group(1),
            threads=int(threads.group(1)) if threads else 1,
            resources=resources,
            is_group=lambda: False,
        )
    return jobs


def test_slurm_profile_passes_a_dry_run_and_the_plugins_resource_validation(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from snakemake_executor_plugin_slurm.partitions import (
        parse_gpu_requirements,
        read_partition_file,
    )
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    paper["slurm"] = {"cpu_partition": "short", "gpu_partition": "a100"}
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(paper))
    out = dry_run(
        tmp_path,
        "figures",
        "--profile",
        str(ROOT / "workflow" / "profiles" / "slurm"),
        "--configfile",
        "cluster.yaml",
    )
    jobs = slurm_jobs(out)
    gpu_rules = {"train_run", "interventions_run", "transplant_pair"}
    assert gpu_rules | {"analyze_run", "figure"} <= set(jobs)
    (tmp_path / "partitions.yaml").write_text(
        yaml.safe_dump(
            {
                "partitions": {
                    "short": {"max_runtime": 1440, "max_mem_mb": 64000, "max_threads": 32},
                    "a100": {"max_runtime": 2880, "max_mem_mb": 256000, "max_gpu": 4},
                }
            }
        )
    )
    partitions = {p.name: p for p in read_partition_file(tmp_path / "partitions.yaml")}
    for name, job in jobs.items():
        validate_slurm_extra(job)
        gpus, _ = parse_gpu_requirements(job)  # refuses gpu and gres together
        assert "gres" not in job.resources, name  # one GPU key only
        partition = job.resources["slurm_partition"]
        assert partition == ("a100" if name in gpu_rules else "short"), name
        assert gpus == (1 if name in gpu_rules else 0), name
        assert partitions[partition].score_job_fit(job) is not None, name
        params = {
            "run_uuid": "u",
            "slurm_logfile": "log",
            "comment_str": name,
            "account": "",
            "partition": f"-p {partition}",
            "workdir": str(tmp_path),
        }
        call = get_submit_command(job, params) + set_gres_string(job)
        assert f"--cpus-per-task={job.threads}" in call, (name, call)  # threads = CPUs
        assert ("--gpus=1" in call) == (name in gpu_rules) and "--gres" not in call, call
    assert jobs["analyze_run"].threads == 8 and jobs["train_run"].threads == 8


def test_readme_config_table_matches_config_yaml():
    """The README's `config/config.yaml` column shows what that file sets."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    rows = [  # | key | kind | meaning | default | config/config.yaml |
        line.split(" | ")
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `") and line.count(" | ") == 4
    ]
    checked = 0
    for key, *_, value in rows:
        key, value = key.strip("| `"), value.strip(" |")
        if not re.fullmatch(r"[a-z_.]+", key) or not value.startswith("`"):
            continue
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert yaml.safe_load(value.strip("`")) == node, key
        checked += 1
    assert checked >= 15


def test_snakemake_lint_is_clean(tmp_path):
    """`snakemake --lint` reports nothing (it exits 0 even when it has lints: read its text)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--lint"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Lints for" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
