"""Workflow config schema errors name the offending key (dry runs only: seconds)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "dataset": {"name": "synthetic", "image_size": 32, "n_train": 32, "n_val": 16},
    "grid": {"arch": ["resnet18"], "activation": ["relu"], "regularizer": ["none"], "seed": [0]},
    "mi": {"bins": [10]},
}


def dry_run(tmp_path: Path, config: dict) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "figures",
        "--snakefile",
        str(ROOT / "Snakefile"),
    ]
    cmd += ["--directory", str(tmp_path), "--cores", "1", "--configfile", str(path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "patch, expected",
    [
        (
            {"grid": {**BASE["grid"], "seed": ["x"]}},
            "invalid config: grid.seed[0]: 'x' is not of type 'integer'",
        ),
        ({"mi": {"bins": [1]}}, "invalid config: mi.bins[0]: 1 is less than the minimum of 2"),
        (
            {"mi": {"bins": [10], "colour": 1}},
            "invalid config: mi: Additional properties are not allowed",
        ),
    ],
)
def test_schema_error_names_the_key(tmp_path, patch, expected):
    text = dry_run(tmp_path, {**BASE, **patch})
    assert expected in text, text[-2000:]


def test_amp_off_as_yaml_reads_it(tmp_path):
    """`train.amp=off` and `amp: off` in a file: YAML 1.1 reads off as false; both mean off."""
    from trainer.config import resolve_config

    assert resolve_config(None, ["train.amp=off"])["train"]["amp"] == "off"
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  amp: off\n")
    assert resolve_config(path)["train"]["amp"] == "off"
