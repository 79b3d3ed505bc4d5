"""The README's dask-jobqueue script: workers as jobs of the test SLURM cluster (issue 24)."""

import re
import subprocess
import sys

import pytest
import xarray as xr

from tests.slurm_cluster import start_or_skip
from tests.test_analyzer_scale import make_store
from tests.test_dask_cluster import ENV, ROOT

pytest.importorskip("dask_jobqueue")


def readme_script() -> str:
    """The README's python block that uses SLURMCluster."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if "SLURMCluster(" in b)


@pytest.mark.slow
def test_readme_jobqueue_script_on_test_slurm_cluster_equals_local_run(tmp_path):
    start_or_skip()
    store = tmp_path / "run" / "activations.zarr"
    make_store(store, 3)
    script = tmp_path / "analyze_on_slurm.py"
    script.write_text(readme_script())
    local = [sys.executable, "-m", "analyzer", str(store), "--bins", "20", "--no-progress"]
    run = subprocess.run(local + ["--out", str(tmp_path / "local.zarr")], env=ENV, cwd=ROOT)
    assert run.returncode == 0
    cmd = [sys.executable, str(script), str(store), str(tmp_path / "slurm.zarr")]
    run = subprocess.run(cmd, env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = xr.open_zarr(tmp_path / "local.zarr").load().drop_attrs()
    got = xr.open_zarr(tmp_path / "slurm.zarr").load().drop_attrs()
    xr.testing.assert_identical(expected, got)
