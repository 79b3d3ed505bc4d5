"""Analyzer faults (issue 8): foreign OUT, damaged or doubled stores, bad options, write errors."""

import errno
import shutil

import numpy as np
import pytest
import zarr

from analyzer import cli
from analyzer.activations import StoreError, open_activations
from analyzer.mi_tensors import Options, analyze
from latent_mi.outputs import OutputError

FAST = ["--bins", "5", "--pair-samples", "2", "--no-progress", "--threads", "1"]


def _copy(tiny_run, tmp_path, name="run"):
    store = tmp_path / name / "activations.zarr"
    shutil.copytree(tiny_run / "activations.zarr", store)
    return store


def _last_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1]


def test_out_at_a_folder_with_other_files_is_refused_and_kept(tiny_run, tmp_path, capsys):
    out = tmp_path / "mi" / "bins-20"  # the run name forgotten
    (out / "other-run.zarr").mkdir(parents=True)
    (out / "other-run.zarr" / "zarr.json").write_text("{}")
    (out / "notes.txt").write_text("keep")
    assert cli.main([str(tiny_run / "activations.zarr"), "--out", str(out), *FAST]) == 1
    line = _last_line(capsys)
    assert line.startswith(f"analyzer: error: {out} exists and is not a mi-dataset output")
    assert (out / "notes.txt").read_text() == "keep" and (out / "other-run.zarr").is_dir()
    plain = tmp_path / "plain.zarr"
    plain.write_text("keep")
    assert cli.main([str(tiny_run / "activations.zarr"), "--out", str(plain), *FAST]) == 1
    assert plain.read_text() == "keep"


def test_own_output_is_replaced_and_stale_temp_cleaned(tiny_run, tmp_path):
    out = tmp_path / "mi.zarr"
    stale = tmp_path / ".mi.zarr.tmp-999999999"  # no such process
    stale.mkdir()
    opts = Options(bins=5, pair_samples=2)
    analyze(tiny_run / "activations.zarr", out, opts)
    analyze(tiny_run / "activations.zarr", out, opts)  # our own: replaced
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["mi.zarr"]


def test_store_with_duplicated_epochs_is_refused(tiny_run, tmp_path):
    store = _copy(tiny_run, tmp_path)
    epoch = zarr.open_array(store / "epoch", mode="r+")
    epoch[:] = np.array([0, 1, 1, 2], dtype=epoch.dtype)  # two trainers interleaved
    with pytest.raises(StoreError, match=r"not strictly increasing \(epochs \[1\] appear more"):
        open_activations(store)


def test_missing_chunk_names_epoch_and_variable_not_nan(tiny_run, tmp_path, capsys):
    store = _copy(tiny_run, tmp_path)
    (store / "activation" / "c" / "2" / "0" / "0").unlink()
    with pytest.raises(StoreError, match=r"chunk of 'activation' at epoch 2 is missing"):
        open_activations(store)
    assert cli.main([str(store), "--out", str(tmp_path / "mi.zarr"), *FAST]) == 1
    assert "chunk of 'activation' at epoch 2 is missing" in _last_line(capsys)


def test_truncated_chunk_names_epoch_and_variable(tiny_run, tmp_path, capsys):
    store = _copy(tiny_run, tmp_path)
    chunk = store / "activation" / "c" / "1" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    assert cli.main([str(store), "--out", str(tmp_path / "mi.zarr"), *FAST]) == 1
    line = _last_line(capsys)
    assert "chunk of 'activation' at epoch 1 is corrupt" in line and str(store) in line
    assert not (tmp_path / "mi.zarr").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--topk", "150"], "--topk values must be in (0, 100], got 150"),
        (["--topk", "5", "-5"], "--topk values must be in (0, 100], got -5"),
        (["--pair-samples", "0"], "--pair-samples must be at least 1, got 0"),
        (["--bins", "1"], "--bins must be in [2, 255], got 1"),
    ],
)
def test_out_of_range_options_are_rejected(tmp_path, capsys, args, message):
    argv = ["store.zarr", "--out", str(tmp_path / "o.zarr"), *args]
    assert cli.main(argv) == 2
    assert _last_line(capsys) == f"analyzer: error: {message}"


def test_output_errors_are_not_reported_as_store_errors(tiny_run, tmp_path, capsys, monkeypatch):
    import xarray as xr

    real = xr.Dataset.to_zarr

    def full_disk(self, store, *args, **kwargs):
        if ".tmp-" in str(store):  # any write of the result (blocks of epochs are appended)
            raise OSError(errno.ENOSPC, "No space left on device", str(store) + "/label_mi/c/0")
        return real(self, store, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_zarr", full_disk)
    out = tmp_path / "mi.zarr"
    assert cli.main([str(tiny_run / "activations.zarr"), "--out", str(out), *FAST]) == 1
    line = _last_line(capsys)
    assert line.startswith("analyzer: error: no space left on ") and "reading" not in line
    assert ".mi.zarr.tmp-" in line and not out.exists()
    assert not list(tmp_path.glob(".mi.zarr*"))


def test_read_only_output_disk_is_an_output_error(tiny_run, tmp_path, capsys, monkeypatch):
    from latent_mi import outputs

    real_open = outputs.os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(outputs.os, "open", read_only)
    out = tmp_path / "ro" / "mi.zarr"
    assert cli.main([str(tiny_run / "activations.zarr"), "--out", str(out), *FAST]) == 1
    line = _last_line(capsys)
    assert line.startswith(f"analyzer: error: cannot write {tmp_path / 'ro'}")
    assert line.endswith("read-only file system")


def test_analyze_refuses_other_kind(tiny_run, tmp_path):
    from latent_mi import outputs

    out = tmp_path / "iv.zarr"
    with outputs.safe_output(out, "interventions") as tmp:
        tmp.mkdir()
    with pytest.raises(OutputError, match="is a 'interventions' output"):
        analyze(tiny_run / "activations.zarr", out, Options(bins=5, pair_samples=2))
