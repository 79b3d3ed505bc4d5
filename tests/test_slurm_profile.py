"""The README's SLURM resource table is what workflow/profiles/slurm and the rules ask for."""

import re

import yaml

from tests.test_workflow import ROOT

PROFILE = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
LOCAL = {"train", "analyze", "figures", "robustness", "twelve_bit"}  # localrules: never submitted


def readme_table() -> dict[str, list[str]]:
    """rule -> [partition, threads, memory MB, time min, GPUs] of README's SLURM table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Running on a SLURM cluster") :]
    rows = re.findall(
        r"^\s*\| ([\w ]+?) \| (\w+) \| (.+?) \| (\d+) \| (\d+) \| (\d) \|$", section, re.M
    )
    return {r[0]: list(r[1:]) for r in rows}


def rule_partitions() -> dict[str, tuple[str, str]]:
    """rule -> (partition 'cpu' / 'gpu' / '' (not submitted), GPUs of a literal `gpu=1`)
    from workflow/rules/*.smk."""
    out = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for name, body in re.findall(
            r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), re.M | re.S
        ):
            part = re.search(r"slurm_partition=(CPU|GPU)_PARTITION", body)
            gpu = "1" if re.search(r"^\s+gpu=1,", body, re.M) else "0"
            out[name] = (part.group(1).lower() if part else "", gpu)
    return out


def test_readme_slurm_table_matches_profile_and_rules():
    table = readme_table()
    parts = rule_partitions()
    default = PROFILE["default-resources"]
    assert table["every other rule"] == [
        "cpu",
        "the rule's (1-2)",
        str(default["mem_mb"]),
        str(default["runtime"]),
        "0",
    ]
    named = set(PROFILE["set-resources"]) | set(PROFILE["set-threads"])
    assert named == set(table) - {"every other rule"}
    for rule in named:
        res = PROFILE["set-resources"][rule]
        want = [
            parts[rule][0],
            str(PROFILE["set-threads"][rule]),
            str(res["mem_mb"]),
            str(res["runtime"]),
            str(res.get("gpu", parts[rule][1])),
        ]
        assert table[rule] == want, rule
        assert "gres" not in res  # the one GPU key
    others = set(parts) - named - LOCAL
    assert others and all(parts[r] == ("cpu", "0") for r in others), parts
    assert all(parts[r][0] == "" for r in LOCAL & set(parts))
