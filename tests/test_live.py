"""The live analyzer (issue 23): TensorBoard scalars equal the analyzer's MI Dataset."""

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from analyzer.live import LAYER_SCALARS

ROOT = Path(__file__).resolve().parents[1]
DIGITS = [
    "dataset.name=digits",
    "dataset.image_size=8",
    "dataset.val_fraction=0.9",
    "width=0.125",
    "train.batch_size=32",
    "train.progress=false",
    "train.epochs=3",
]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def read_events(logdir: Path) -> dict[tuple[str, int], float]:
    """(tag, step) -> value, read with TensorBoard's own event reader."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(logdir), size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    assert "depth_profile/label_mi" in acc.Tags()["images"]
    assert {t.split("/")[0] for t in acc.Tags()["histograms"]} == {"channel_label_mi"}
    return {(t, e.step): e.value for t in acc.Tags()["scalars"] for e in acc.Scalars(t)}


def skipped_epochs(log: str) -> set[int]:
    """Epochs named in the live process's "skipped epochs 1-2, 5 (...)" lines."""
    out = set()
    for line in log.splitlines():
        if "skipped epochs " in line:
            for part in line.split("skipped epochs ")[1].split(" (")[0].split(", "):
                lo, _, hi = part.partition("-")
                out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def assert_events_equal_dataset(run_dir: Path, store: Path, tmp: Path, log: str) -> set[int]:
    """The logged epochs' scalars equal the analyzer's MI Dataset of every epoch; epoch 0 and
    the last are logged, every other one logged or named skipped. Returns the logged epochs."""
    import xarray as xr

    from analyzer.mi_tensors import Options, analyze

    ds = xr.open_zarr(analyze(store, tmp / "ref.zarr", Options(bins=20)))
    got = read_events(run_dir / "tensorboard")
    logged = {s for _, s in got}
    every = {int(e) for e in ds.epoch.values}
    assert {0, max(every)} <= logged <= every
    assert logged | skipped_epochs(log) == every and not logged & skipped_epochs(log)
    n = 0
    for e in sorted(logged):
        for layer in ds.layer.values:
            for name in LAYER_SCALARS:
                want = float(ds[name].sel(epoch=e, layer=layer))
                assert got[(f"{name}/{layer}", e)] == pytest.approx(want, rel=1e-6, abs=1e-7)
                n += 1
        assert got[("metrics/val_acc", e)] == pytest.approx(float(ds.val_acc.sel(epoch=e)))
    assert n == len(logged) * ds.sizes["layer"] * len(LAYER_SCALARS)
    csv_epochs = {int(r.split(",")[0]) for r in (run_dir / "live.csv").read_text().splitlines()[1:]}
    assert csv_epochs == logged
    return logged


def test_a_live_process_behind_training_skips_to_the_newest_epoch(tiny_run, tmp_path):
    """Training wrote epochs 0-3 before the live process ran: it logs epoch 0 (the depth
    profile's reference) and the newest, 3, names 1-2 as skipped, and imports no torch; the
    analysis rule's MI Dataset still has every epoch."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    code = (
        "import sys; from analyzer.live import main; rc = main([sys.argv[1], '--poll', '0.1']);"
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(run_dir)],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "skipped epochs 1-2 (" in done.stderr and "logging epoch 3" in done.stderr
    logged = assert_events_equal_dataset(
        run_dir, run_dir / "activations.zarr", tmp_path, done.stderr
    )
    assert logged == {0, 3}


def test_span_names_runs_of_epochs():
    from analyzer.live import span

    assert span([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8" and span([4]) == "4" and span([]) == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_scalar(logdir: Path, tag: str) -> list:
    """[[wall_time, step, value], ...] of ``tag`` from a real TensorBoard server on 127.0.0.1."""
    port = _free_port()
    tb = shutil.which("tensorboard", path=str(Path(sys.executable).parent))
    cmd = [tb, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        cmd + ["--load_fast=false"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run=.&tag={tag}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    data = json.loads(r.read())
                if data:
                    return data
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"tensorboard did not serve {tag}")
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_digits_run_with_live_true_logs_the_dataset_and_tensorboard_serves_it(tmp_path):
    from trainer.config import resolve_config
    from trainer.train import run

    run_dir = tmp_path / "run"
    run(resolve_config(None, [*DIGITS, "train.live=true"]), run_dir)
    import zarr

    stored = json.loads(zarr.open_group(run_dir / "activations.zarr", mode="r").attrs["config"])
    assert "live" not in stored["train"]  # not part of the run's identity
    log = (run_dir / "live.log").read_text()
    assert_events_equal_dataset(run_dir, run_dir / "activations.zarr", tmp_path, log)
    got = read_events(run_dir / "tensorboard")
    tag = next(t for t, s in got if t.startswith("label_mi/"))
    served = _serve_scalar(run_dir / "tensorboard", tag)
    assert {int(s): v for _, s, v in served} == pytest.approx(
        {s: v for (t, s), v in got.items() if t == tag}
    )


@pytest.mark.slow
def test_killing_the_live_process_leaves_training_alone(tmp_path, monkeypatch, caplog):
    from trainer import live
    from trainer.config import resolve_config
    from trainer.train import run

    original = live.LiveMonitor.check

    def kill_then_check(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        original(self)

    monkeypatch.setattr(live.LiveMonitor, "check", kill_then_check)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        done = run(resolve_config(None, [*DIGITS, "train.live=true"]), tmp_path / "a")
    lines = [r for r in caplog.records if "live analyzer" in r.getMessage()]
    assert len(lines) == 1 and done["status"] == "complete" and done["epochs"] == 4
    import zarr

    ref = run(resolve_config(None, DIGITS), tmp_path / "b")
    assert ref["epochs"] == done["epochs"]
    a = zarr.open_group(tmp_path / "a" / "activations.zarr", mode="r")
    b = zarr.open_group(tmp_path / "b" / "activations.zarr", mode="r")
    np.testing.assert_array_equal(a["activation"][:], b["activation"][:])


@pytest.mark.slow
def test_recorder_live_in_a_hand_written_loop_logs_the_dataset(tmp_path):
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    from trainer import Recorder
    from trainer.example_model import make_data, make_model

    torch.manual_seed(0)
    train_set, val_set, classes = make_data()
    model = make_model({})
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    out = tmp_path / "mine" / "activations.zarr"
    with Recorder(model, out=out, classes=classes, live=True) as rec:
        rec.record(0, DataLoader(val_set, batch_size=20))
        for epoch in (1, 2):
            model.train()
            for x, y in DataLoader(train_set, batch_size=32, shuffle=True):
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            rec.record(epoch, DataLoader(val_set, batch_size=20), {"train_loss": loss.item()})
    log = (out.parent / "live.log").read_text()
    assert_events_equal_dataset(out.parent, out, tmp_path, log)


def test_status_shows_epoch_accuracy_and_eta(tmp_path, capsys):
    from latent_mi.status import main, run_status

    run_dir = tmp_path / "results" / "cfg" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    prog = {
        "config": json.dumps({"train": {"epochs": 10}}),
        "epochs_complete": 4,  # epochs 0..3
        "best_val_acc": 0.5,
        "last_metrics": {"val_acc": 0.25, "epoch_seconds": 30.0},
    }
    (run_dir / "progress.json").write_text(json.dumps(prog))
    row = run_status(run_dir)
    assert row["epoch"] == "3/10" and row["eta_s"] == 7 * 30.0 and row["status"] == "running"
    assert main([str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "3/10" in out and "0.2500" in out and "3m30s" in out
    (run_dir / "done.json").write_text(json.dumps({"status": "complete"}))
    assert run_status(run_dir)["status"] == "complete" and run_status(run_dir)["eta_s"] is None
    assert main([str(tmp_path / "nowhere")]) == 2


def test_depth_profile_image_leaves_the_matplotlib_backend_alone():
    """The live image is drawn without pyplot: a notebook's backend is not switched to Agg."""
    code = (
        "import matplotlib; matplotlib.use('svg'); import numpy as np, xarray as xr; "
        "from analyzer.live import depth_profile; "
        "ds = xr.Dataset({'label_mi': (('epoch', 'layer'), np.ones((1, 3)))}, "
        "coords={'epoch': [2]}); v = depth_profile(ds, ds); "
        "print(matplotlib.get_backend(), v.image.width, v.image.height, "
        "v.image.encoded_image_string[:4] == b'\\x89PNG')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    assert out == ["svg", "400", "240", "True"]
