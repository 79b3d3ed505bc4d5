"""The workflow's robustness summary gets the MI Datasets exactly when mi.estimators lists
more than the histogram (then it says under which estimators each finding holds)."""

import re

import pytest
import yaml

from tests.test_workflow import TINY_CONFIG
from tests.test_workflow_code import dry_run, jobs_by_rule


def _summary_command(tmp_path, estimators):
    config = {**TINY_CONFIG, "mi": {**TINY_CONFIG["mi"], "estimators": estimators}}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    inputs, shell = jobs_by_rule(dry_run(tmp_path, "robustness"))["robustness_summary"]
    return inputs, shell


@pytest.mark.slow
def test_robustness_summary_reads_the_mi_datasets_when_estimators_are_on(tmp_path):
    inputs, shell = _summary_command(tmp_path, ["histogram", "knn", "probe"])
    mi = re.search(r"--mi (.*?) --out", shell).group(1).split()
    assert len(mi) == 4  # 2 archs x 2 seeds of TINY_CONFIG, first bin count
    assert all("/mi/bins-10/" in path for path in mi), mi
    assert set(mi) <= inputs  # an input: a new analysis reruns the summary


@pytest.mark.slow
def test_robustness_summary_without_estimators_needs_no_analysis(tmp_path):
    inputs, shell = _summary_command(tmp_path, ["histogram"])
    assert re.search(r"--mi\s+--out", shell), shell
    assert not any("/mi/" in path for path in inputs), inputs
