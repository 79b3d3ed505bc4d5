"""``python -m analyzer.live RUN_DIR``: MI summaries of a training run, epoch by epoch, live.

One long-lived process beside the trainer (nice 19, one thread, the kernels from numba's
cache): it polls the store's epoch count and, when an epoch completes, computes *that epoch
only* with the analyzer's own per-epoch pass (:func:`analyzer.epoch_pass.analyze_epoch`: the
same estimator, bins and nulls as the analysis rule, so the numbers are equal) and logs its
per-layer ``label_mi``, ``label_mi_corrected``, ``input_mi``, ``gini``, ``topk_share``
(nat / 1), the channel-label-MI histogram per layer, a depth-profile image (label MI vs
layer, this epoch against the first logged one, epoch 0) and the store's loss/accuracy to
TensorBoard event files in ``<run_dir>/tensorboard/`` and to ``<run_dir>/live.csv``.

When it falls behind (several epochs completed since its last look), it logs the newest
epoch only and names the skipped ones in one line: training never waits for it. Exits once
the store is no longer running and its newest epoch is logged. Never imports torch.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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


def depth_profile(ds, reference):
    """PNG image Summary.Value: label MI (nat) vs layer of one-epoch Dataset ``ds`` against
    one-epoch Dataset ``reference`` (the first logged epoch)."""
    import io

    from matplotlib.figure import Figure  # no pyplot: the caller's backend stays as it is
    from tensorboard.compat.proto import summary_pb2

    fig = Figure(figsize=(5, 3), dpi=80)
    ax = fig.subplots()
    x = np.arange(ds.sizes["layer"])
    for one, style in ((reference, "--"), (ds, "-")):
        label = f"epoch {int(one.epoch[0])}"
        ax.plot(x, one["label_mi"].isel(epoch=0).values, style, label=label)
    ax.set(xlabel="layer (depth order)", ylabel="label MI (nat)")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    w, h = fig.canvas.get_width_height()
    img = summary_pb2.Summary.Image(
        height=h, width=w, colorspace=4, encoded_image_string=buf.getvalue()
    )
    return summary_pb2.Summary.Value(tag="depth_profile/label_mi", image=img)


def epoch_rows(ds, i: int = 0) -> list[dict]:
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


def log_epoch(ds, reference, run_dir: Path, writer) -> None:
    """Log the one epoch of Dataset ``ds`` (epoch dim of length 1) to TensorBoard and live.csv;
    its depth profile is drawn against ``reference`` (the first logged epoch, usually 0)."""
    path = run_dir / "live.csv"
    new = not path.exists()
    rows = epoch_rows(ds, 0)
    with path.open("a", newline="") as f:
        out = csv.DictWriter(f, ["epoch", "tag", "value"])
        if new:
            out.writeheader()
        out.writerows(rows)
    values = [_scalar(r["tag"], r["value"]) for r in rows]
    for layer in ds.layer.values:
        x = ds[C.CHANNEL_LABEL_MI].isel(epoch=0).sel(layer=layer).values
        values.append(_histogram(f"channel_label_mi/{layer}", np.asarray(x, float)))
    if "label_mi" in ds:
        values.append(depth_profile(ds, reference))
    _emit(writer, int(ds.epoch.values[0]), values)
    writer.flush()


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


def span(epochs) -> str:
    """``1-3, 5`` for epochs [1, 2, 3, 5]."""
    out, run = [], []
    for e in [int(x) for x in epochs]:
        if run and e != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(e)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


class EpochLogger:
    """Computes one epoch of a store with the analyzer's own per-epoch pass and logs it."""

    def __init__(self, run_dir: Path, store: Path, opts):
        self.run_dir, self.store, self.opts = run_dir, store, opts
        self.writer = _event_writer(run_dir / "tensorboard")
        self.done = 0  # epoch indices below this were logged or skipped
        self.reference = None  # the first logged epoch's (one-epoch Dataset): the profile's base

    def step(self) -> bool:
        """Log the newest complete epoch (and epoch 0 first); False when there is none new.

        Epochs completed in between are skipped (training never waits for this process) and
        named in one line; the analysis rule's MI Dataset has every epoch."""
        from analyzer.activations import StoreError
        from analyzer.epoch_pass import analyze_epoch
        from analyzer.mi_tensors import block_dataset
        from analyzer.prepare import prepare

        try:
            setup = prepare(self.store, self.opts, allow_running=True)
        except (StoreError, ValueError):  # no complete epoch yet (or a half-written one)
            return False
        n = len(setup.epochs)
        if n <= self.done:
            return False
        todo = sorted({n - 1} | ({0} if self.done == 0 else set()))
        skipped = [
            e for i, e in enumerate(setup.epochs[self.done : n]) if i + self.done not in todo
        ]
        if skipped:
            print(
                f"live: behind training: skipped epochs {span(skipped)} (the analysis rule's MI "
                f"Dataset has them); logging epoch {int(setup.epochs[n - 1])}",
                file=sys.stderr,
                flush=True,
            )
        for i in todo:
            ds = block_dataset(setup, [i], [analyze_epoch(setup.plan, i)])
            if self.reference is None:
                self.reference = ds
            log_epoch(ds, self.reference, self.run_dir, self.writer)
            print(f"live: logged epoch {int(ds.epoch.values[0])}", file=sys.stderr, flush=True)
        self.done = n
        return True


def watch(
    run_dir: Path, store: Path, bins: int = 20, poll: float = 1.0, permutations: int | None = None
) -> None:
    """Log the newest epoch of ``run_dir``'s store whenever one completes, until it stops running."""
    from analyzer import kernel_cache
    from analyzer.prepare import Options

    opts = Options(bins=bins) if permutations is None else Options(bins, permutations=permutations)
    kernel_cache.ensure_compiled()
    logger = EpochLogger(run_dir, store, opts)
    while True:
        running = _store_running(store)  # before the epoch count: a finished store's is final
        if _epochs_stored(store) > logger.done and logger.step():
            continue
        if not running:
            break
        time.sleep(poll)
    logger.writer.close()


def lower_priority() -> None:
    """One core at the lowest priority: the training loop always gets the CPU first."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(name, "1")  # before numba / BLAS start their threads
    try:
        os.nice(19 - os.nice(0))
    except (AttributeError, OSError):  # no nice on this platform
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analyzer.live", description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--store", help="activation store (default RUN_DIR/activations.zarr)")
    p.add_argument("--bins", type=int, default=20)
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the store")
    p.add_argument("--permutations", type=int, default=None)
    a = p.parse_args(argv)
    lower_priority()
    run_dir = Path(a.run_dir)
    if not run_dir.is_dir():
        print(f"analyzer.live: error: {run_dir} is not a run directory", file=sys.stderr)
        return 2
    watch(run_dir, Path(a.store) if a.store else run_dir / C.STORE, a.bins, a.poll, a.permutations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
