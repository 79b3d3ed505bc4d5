"""``python -m interventions`` end to end on a tiny trained run: outputs, checks, safety."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from analyzer.cli import main as analyze
from interventions.cli import main as intervene
from latent_mi import contract as C
from tests.helpers import tiny_config
from trainer.train import run

FAST = ["--q", "0.5", "--class-q", "0.5", "--draws", "1", "--noise", "1.0", "--batch-size", "20"]


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    run_dir = root / "runs" / "tiny-s0"
    run(tiny_config("train.epochs=2", "dataset.noise=0.3", "dataset.n_val=40"), run_dir)
    mi = root / "mi.zarr"
    args = [str(run_dir / C.STORE), "--bins", "8", "--out", str(mi), "--no-progress"]
    assert analyze([*args, "--threads", "1"]) == 0
    return root, run_dir, mi


def _edited_mi(analyzed, name, change):
    root, _, mi = analyzed
    ds = xr.open_zarr(mi).load()
    out = root / name
    change(ds).to_zarr(out, mode="w", zarr_format=3)
    return out


def test_cli_writes_every_experiment_and_its_baseline_is_the_best_val_acc(analyzed, tmp_path):
    _, run_dir, mi = analyzed
    out = tmp_path / "iv.zarr"
    argv = [str(run_dir), "--mi", str(mi), "--out", str(out), "--layers", "last", *FAST]
    assert intervene([*argv, "--skip-gains", "0", "1", "--device", "cpu"]) == 0
    ds = xr.open_zarr(out)
    for name in (
        "accuracy",
        "class_accuracy",
        "cover_accuracy",
        "skip_gain_accuracy",
        "n_nonfinite",
    ):
        assert name in ds, name
    done = json.loads((run_dir / C.DONE).read_text())
    assert float(ds.baseline_accuracy) == pytest.approx(done["best_val_acc"])
    assert float(ds.skip_gain_accuracy.sel(gain=1.0)) == pytest.approx(done["best_val_acc"])
    assert ds.attrs["latent_mi_output"] == "interventions"
    assert ds.attrs["ranking_epoch"] == done["best_epoch"]
    assert str(ds.run.values) == "tiny-s0"
    # running again replaces its own output
    assert intervene([*argv, "--skip-gains", "1", "--device", "cpu"]) == 0
    assert list(xr.open_zarr(out).gain.values) == [1.0]


def test_transplanting_a_run_into_itself_changes_nothing(analyzed, tmp_path):
    _, run_dir, mi = analyzed
    out = tmp_path / C.transplant_name("a", "b")
    argv = [str(run_dir), "--donor", str(run_dir), "--mi", str(mi), "--out", str(out)]
    assert intervene([*argv, "--layers", "last", "--q", "0.5", "--draws", "2"]) == 0
    ds = xr.open_zarr(out)
    acc = ds.transplant_accuracy.values
    np.testing.assert_allclose(acc[np.isfinite(acc)], float(ds.recipient_baseline))
    assert ds.attrs["latent_mi_output"] == "transplants"


def test_refuses_to_replace_a_folder_it_did_not_write(analyzed, tmp_path, capsys):
    _, run_dir, mi = analyzed
    out = tmp_path / "precious"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert (
        intervene([str(run_dir), "--mi", str(mi), "--out", str(out), "--layers", "last", *FAST])
        == 1
    )
    assert (out / "keep.txt").read_text() == "mine"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "not replacing" in err[0]
    assert not list(tmp_path.glob(".precious*"))


def test_mi_of_another_run_or_architecture_is_one_line(analyzed, tmp_path, capsys):
    _, run_dir, _ = analyzed
    for key, value in (("arch", "vgg16"), ("seed", 7), ("run", "other-s1")):
        coord = {key: np.array(value, dtype=object if isinstance(value, str) else None)}
        other = _edited_mi(analyzed, f"{key}.zarr", lambda ds, c=coord: ds.assign_coords(c))
        argv = [str(run_dir), "--mi", str(other), "--out", str(tmp_path / "x.zarr"), *FAST]
        assert intervene(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(other) in err[0] and "best.pt" in err[0] and key in err[0]
    assert not (tmp_path / "x.zarr").exists()


def test_checkpoint_of_another_epoch_than_the_ranking_is_one_line(analyzed, tmp_path, capsys):
    _, run_dir, _ = analyzed
    done = json.loads((run_dir / C.DONE).read_text())
    other_epoch = 0 if done["best_epoch"] != 0 else 1

    def move_best(ds):
        acc = ds.val_acc.values.copy()
        acc[other_epoch] = 2.0
        return ds.assign(val_acc=("epoch", acc))

    other = _edited_mi(analyzed, "epoch.zarr", move_best)
    argv = [str(run_dir), "--mi", str(other), "--out", str(tmp_path / "x.zarr"), *FAST]
    assert intervene(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"epoch {other_epoch}" in err[0] and "best.pt" in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_device_without_cuda_is_one_line(analyzed, tmp_path, capsys):
    _, run_dir, mi = analyzed
    argv = [str(run_dir), "--mi", str(mi), "--out", str(tmp_path / "x.zarr"), "--device", "cuda:0"]
    assert intervene(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda:0" in err[0]


def test_nan_weights_in_best_checkpoint_stop_with_one_line(analyzed, tmp_path, capsys):
    import shutil

    _, run_dir, mi = analyzed
    copy = tmp_path / "runs" / "tiny-s0"
    shutil.copytree(run_dir, copy)
    best = copy / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=False)
    name = next(k for k, v in state["model"].items() if v.is_floating_point() and v.numel() > 1)
    state["model"][name].view(-1)[0] = float("nan")
    torch.save(state, best)
    argv = [str(copy), "--mi", str(mi), "--out", str(tmp_path / "iv.zarr"), *FAST]
    assert intervene([*argv, "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "best.pt" in err[0] and "non-finite" in err[0], err
    assert not (tmp_path / "iv.zarr").exists()


def test_baseline_disagreeing_with_the_recorded_accuracy_stops(analyzed, tmp_path, capsys):
    import shutil

    _, run_dir, mi = analyzed
    copy = tmp_path / "runs" / "tiny-s0"
    shutil.copytree(run_dir, copy)
    best = copy / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=False)
    metrics = state["progress"]["last_metrics"]
    metrics["val_acc"] = (metrics["val_acc"] + 0.5) % 1.0  # a record these weights do not meet
    torch.save(state, best)
    argv = [str(copy), "--mi", str(mi), "--out", str(tmp_path / "iv.zarr"), *FAST]
    assert intervene([*argv, "--layers", "last", "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "baseline accuracy" in err[0] and "best.pt" in err[0], err
    assert not (tmp_path / "iv.zarr").exists()
