"""A damaged output of this tool is one line naming the file, for every reader (issue 27.4).

Faults injected into a real MI Dataset: a deleted ``channel_label_mi`` chunk (interventions
read it as NaN and knocked out nothing), a deleted ``label_mi`` chunk (Fig 1 lost a curve),
a truncated chunk and a flipped byte (figures, findings).
"""

import numpy as np
import pytest
import xarray as xr

from analyzer.cli import main as analyze
from analyzer.figures.cli import main as figures
from analyzer.report.findings_report import main as findings
from interventions.cli import main as intervene
from latent_mi import contract as C
from latent_mi import manifest
from tests.helpers import tiny_config
from trainer.train import run


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest")
    run_dir = root / "runs" / "tiny-s0"
    run(tiny_config("train.epochs=1", "dataset.n_val=40"), run_dir)
    mi = root / "mi.zarr"
    args = [str(run_dir / C.STORE), "--bins", "8", "--out", str(mi), "--no-progress"]
    assert analyze([*args, "--threads", "1"]) == 0
    return run_dir, mi


@pytest.fixture
def damaged(analyzed, tmp_path):
    """A copy of the MI Dataset and a function that damages one chunk file of a variable."""
    import shutil

    run_dir, mi = analyzed
    copy = tmp_path / "mi.zarr"
    shutil.copytree(mi, copy)
    return run_dir, copy


def _chunk(mi, variable):
    chunks = sorted(p for p in (mi / variable / "c").rglob("*") if p.is_file())
    assert chunks, variable
    return chunks[0]


def test_plain_zarr_reads_a_deleted_chunk_as_nan(damaged):
    """The fault is real: without the manifest check the reader gets NaN, no error."""
    _, mi = damaged
    _chunk(mi, C.CHANNEL_LABEL_MI).unlink()
    values = xr.open_zarr(mi)[C.CHANNEL_LABEL_MI].values
    assert np.isnan(values).all()


def test_deleted_channel_label_mi_chunk_stops_interventions(damaged, tmp_path, capsys):
    run_dir, mi = damaged
    chunk = _chunk(mi, C.CHANNEL_LABEL_MI)
    chunk.unlink()
    out = tmp_path / "iv.zarr"
    args = [str(run_dir), "--mi", str(mi), "--out", str(out), "--draws", "1"]
    assert intervene(args) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    rel = chunk.relative_to(mi).as_posix()
    assert f"its file {rel} is missing" in err and "rerun the analyzer" in err
    assert not out.exists()


def test_deleted_label_mi_chunk_stops_figures(damaged, tmp_path, capsys):
    _, mi = damaged
    chunk = _chunk(mi, C.LABEL_MI)
    chunk.unlink()
    assert figures([str(mi), "--out", str(tmp_path / "fig"), "--names", "fig1_depth_mi"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and chunk.relative_to(mi).as_posix() in err, err


@pytest.mark.parametrize("fault", ["truncate", "flip"])
def test_truncated_or_altered_chunk_is_one_line_for_figures_and_findings(
    damaged, tmp_path, capsys, fault
):
    _, mi = damaged
    chunk = _chunk(mi, C.LABEL_MI)
    data = bytearray(chunk.read_bytes())
    if fault == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    want = "truncated" if fault == "truncate" else "does not match its checksum"
    assert figures([str(mi), "--out", str(tmp_path / "fig"), "--names", "fig1_depth_mi"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and want in err, err
    assert findings(["--mi", str(mi), "--out", str(tmp_path / "findings")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and want in err, err


def test_manifest_lists_every_file_and_an_intact_output_verifies(analyzed):
    _, mi = analyzed
    kind, files = manifest.recorded(mi)
    assert kind == C.KIND_MI
    on_disk = {p.relative_to(mi).as_posix() for p in mi.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {".latent-mi-output.json"}
    manifest.verify(mi)  # no error
    xr.testing.assert_identical(manifest.open_output(mi).load(), xr.open_zarr(mi).load())


@pytest.fixture
def small_mount(tmp_path):
    """A 16 KiB tmpfs (needs root and mount rights; else the test is skipped)."""
    import subprocess

    where = tmp_path / "mnt"
    where.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(where)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_figures_out_on_a_read_only_or_full_file_system_is_one_line(
    analyzed, small_mount, capsys, fault
):
    import subprocess

    _, mi = analyzed
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    args = [str(mi), "--out", str(small_mount / "figs"), "--names", "fig1_depth_mi"]
    assert figures([*args, "--formats", "png", "pdf"]) == 1
    err = capsys.readouterr().err.strip()
    want = "Read-only file system" if fault == "read-only" else "No space left on device"
    assert len(err.splitlines()) == 1 and want in err and str(small_mount) in err, err
