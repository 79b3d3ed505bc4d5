"""``python -m analyzer.live RUN_DIR``: MI summaries of a training run, epoch by epoch, live.

Polls the store's epoch count; when new epochs are complete it extends the run's live MI
Dataset ``<run_dir>/live/mi.zarr`` with the analyzer's incremental path (only new epochs are
computed, same estimator and bins as the analysis rule) and logs each new epoch's per-layer
``label_mi``, ``label_mi_corrected``, ``input_mi``, ``gini``, ``topk_share`` (nat / 1), the
channel-label-MI histogram per layer, a depth-profile image (label MI vs layer, this epoch
against epoch 0) and the store's loss/accuracy to TensorBoard event files in
``<run_dir>/tensorboard/`` and to ``<run_dir>/live.csv``. Exits once the store is no longer
running and every epoch is logged. Never imports torch.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from latent_mi import contract as C

LAYER_SCALARS = ("label_mi", "label_mi_corrected", "input_mi", "gini")
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


def _event_writer(logdir: Path):
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    return EventFileWriter(str(logdir))


def _emit(writer, step: int, values) -> None:
    """Write one event at ``step`` with Summary.Values ``values``."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    ev = event_pb2.Event(
        wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=values)
    )
    writer.add_event(ev)


def _scalar(tag: str, v: float):
    from tensorboard.compat.proto import summary_pb2

    return summary_pb2.Summary.Value(tag=tag, simple_value=float(v))


def _histogram(tag: str, x: np.ndarray):
    from tensorboard.compat.proto import summary_pb2

    x = x[np.isfinite(x)]
    counts, edges = np.histogram(x, bins=20) if x.size else (np.zeros(1), np.zeros(2))
    h = summary_pb2.HistogramProto(
        min=float(x.min()) if x.size else 0.0,
        max=float(x.max()) if x.size else 0.0,
        num=float(x.size),
        sum=float(x.sum()),
        sum_squares=float((x**2).sum()),
        bucket_limit=[float(e) for e in edges[1:]],
        bucket=[float(c) for c in counts],
    )
    return summary_pb2.Summary.Value(tag=tag, histo=h)


def depth_profile(ds, i: int):
    """PNG image Summary.Value: label MI (nat) vs layer, epoch index ``i`` against epoch 0."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tensorboard.compat.proto import summary_pb2

    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    x = np.arange(ds.sizes["layer"])
    for j, style in ((0, "--"), (i, "-")):
        ax.plot(x, ds["label_mi"].isel(epoch=j).values, style, label=f"epoch {int(ds.epoch[j])}")
    ax.set(xlabel="layer (depth order)", ylabel="label MI (nat)")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    w, h = fig.canvas.get_width_height()
    plt.close(fig)
    img = summary_pb2.Summary.Image(
        height=h, width=w, colorspace=4, encoded_image_string=buf.getvalue()
    )
    return summary_pb2.Summary.Value(tag="depth_profile/label_mi", image=img)


def epoch_rows(ds, i: int) -> list[dict]:
    """The live rows (tag, value) of epoch index ``i`` of MI Dataset ``ds``."""
    epoch = int(ds.epoch.values[i])
    rows = []
    for layer in ds.layer.values:
        for name in LAYER_SCALARS:
            if name in ds:
                rows.append((f"{name}/{layer}", float(ds[name].isel(epoch=i).sel(layer=layer))))
        if "topk_share" in ds:
            ts = ds["topk_share"].isel(epoch=i).sel(layer=layer)
            for k in ts[ts.dims[0]].values:
                rows.append((f"topk_share_{k:g}/{layer}", float(ts.sel({ts.dims[0]: k}))))
    for name in METRICS:
        if name in ds:
            rows.append((f"metrics/{name}", float(ds[name].isel(epoch=i))))
    return [{"epoch": epoch, "tag": t, "value": v} for t, v in rows]


def log_epochs(ds, start: int, run_dir: Path, writer) -> int:
    """Log epoch indices ``start..`` of ``ds``; returns the number of epochs logged."""
    path = run_dir / "live.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        out = csv.DictWriter(f, ["epoch", "tag", "value"])
        if new:
            out.writeheader()
        for i in range(start, ds.sizes["epoch"]):
            rows = epoch_rows(ds, i)
            out.writerows(rows)
            values = [_scalar(r["tag"], r["value"]) for r in rows]
            for layer in ds.layer.values:
                x = ds[C.CHANNEL_LABEL_MI].isel(epoch=i).sel(layer=layer).values
                values.append(_histogram(f"channel_label_mi/{layer}", np.asarray(x, float)))
            if "label_mi" in ds:
                values.append(depth_profile(ds, i))
            _emit(writer, rows[0]["epoch"] if rows else i, values)
    writer.flush()
    return ds.sizes["epoch"] - start


def _store_running(store: Path) -> bool:
    try:
        attrs = json.loads((store / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return True
    return attrs.get(C.ATTR_STATUS, "running") == "running"


def _epochs_stored(store: Path) -> int:
    """Epochs in the store's ``val_acc`` array (its shape; the analyzer keeps only complete ones)."""
    try:
        return int(json.loads((store / C.VAL_ACC / "zarr.json").read_text())["shape"][0])
    except (OSError, ValueError, KeyError, IndexError):
        return 0


def watch(
    run_dir: Path, store: Path, bins: int = 20, poll: float = 1.0, permutations: int | None = None
) -> None:
    """Analyze and log new epochs of ``run_dir`` until its store stops running."""
    import dask
    import xarray as xr

    from analyzer.mi_tensors import Options, analyze

    opts = (
        Options(bins=bins)
        if permutations is None
        else Options(bins=bins, permutations=permutations)
    )
    out = run_dir / "live" / "mi.zarr"
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = _event_writer(run_dir / "tensorboard")
    logged = 0
    while True:
        running = _store_running(store)
        seen = _epochs_stored(store)
        if seen > logged and store.exists():
            if seen - logged > 1:
                print(
                    f"live: {seen - logged} epochs complete since the last pass; analyzing up to epoch {seen - 1}",
                    file=sys.stderr,
                )
            with dask.config.set(scheduler="threads", num_workers=1):  # one core beside training
                analyze(store, out, opts, allow_running=True)
            ds = xr.open_zarr(out)
            new = log_epochs(ds, logged, run_dir, writer)
            logged += new
            if not new:
                time.sleep(poll)
                continue
            print(f"live: logged epochs up to {int(ds.epoch.values[-1])}", file=sys.stderr)
        elif not running:
            break
        else:
            time.sleep(poll)
    writer.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analyzer.live", description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--store", help="activation store (default RUN_DIR/activations.zarr)")
    p.add_argument("--bins", type=int, default=20)
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks at progress.json")
    p.add_argument("--permutations", type=int, default=None)
    a = p.parse_args(argv)
    run_dir = Path(a.run_dir)
    if not run_dir.is_dir():
        print(f"analyzer.live: error: {run_dir} is not a run directory", file=sys.stderr)
        return 2
    watch(run_dir, Path(a.store) if a.store else run_dir / C.STORE, a.bins, a.poll, a.permutations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
