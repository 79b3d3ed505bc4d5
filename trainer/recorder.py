"""Record a hand-written training loop into the activation store (``from trainer import Recorder``).

::

    rec = Recorder(model, sites=["layer1", "layer2.0.relu"], out="runs/mine/activations.zarr",
                   classes=class_names, config={"model_factory": "mypkg.nets:make"})
    rec.record(0, val_loader)                      # epoch 0: before any update
    for epoch in range(1, E + 1):
        train_one_epoch(...)                       # the user's own code
        rec.record(epoch, val_loader, metrics={"train_loss": loss, "lr": lr})
    rec.close()

Each ``record`` runs ``val_loader`` (the same samples in the same order every time) through
the model in eval mode and no_grad, captures the GAP value of every site
(:mod:`trainer.sites`; ``sites=None``: the default rule of :mod:`trainer.discovery`), computes
``val_loss`` / ``val_acc`` from the logits (unless given in ``metrics``) and appends one epoch
with :mod:`trainer.store`, so the store is exactly the trainer's: ``python -m analyzer``, the
figures and notebooks read it unchanged. An interrupted append never counts (the ``epoch``
coord is written last); recording an epoch the store already holds replaces it and drops the
epochs after it; a new Recorder on an existing store continues it (same sites and labels).
The run directory is locked (``latent_mi.outputs.dir_lock``) from construction to ``close()``.

Checkpoints ``<out>/../checkpoints/{init,best,last}.pt`` (the trainer's format) let
``python -m interventions`` run on the recording when ``config`` names a
``model_factory`` (``"module:function"``, called as ``function(config)`` to rebuild the
model) and the validation set can be rebuilt (``config["dataset"]`` a trainer dataset section,
or ``data_factory: "module:function"`` returning the validation dataset in the same order).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latent_mi import contract as C
from latent_mi import outputs
from trainer import store
from trainer.data import INPUT_FEATURES, input_summary
from trainer.discovery import attach_sites
from trainer.run_files import atomic_torch_save
from trainer.sites import capture_gap, find_sites

METRICS = C.EPOCH_METRICS


def summarize_inputs(x: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """(batch, ...) inputs -> (batch, F) summary and feature names.

    Images (batch, 3, H, W): the trainer's summary (per-channel mean and std, 4x4 grayscale
    thumbnail); other (batch, C, ...) inputs: per-channel mean and std and the mean over
    channels pooled to 16 values.
    """
    x = x.float()
    if x.dim() == 4 and x.shape[1] == 3:
        return input_summary(x), list(INPUT_FEATURES)
    flat = x.flatten(2) if x.dim() > 2 else x[:, None, :]
    mean, std = flat.mean(dim=2), flat.std(dim=2, unbiased=flat.shape[2] > 1)
    pooled = F.adaptive_avg_pool1d(flat.mean(dim=1, keepdim=True), 16).flatten(1)
    c = flat.shape[1]
    names = [f"mean_ch{i}" for i in range(c)] + [f"std_ch{i}" for i in range(c)]
    return torch.cat([mean, std, pooled], dim=1), names + [f"pool_{i}" for i in range(16)]


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


class Recorder:
    """Writes the activation-store contract from any training loop (see the module doc)."""

    def __init__(
        self,
        model: nn.Module,
        sites: list[str] | None = None,
        out: str | Path = "runs/mine/activations.zarr",
        classes: list[str] | None = None,
        config: dict | None = None,
        *,
        dtype: str = "float32",
        unit_chunk: int = 1024,
        checkpoints: bool = True,
        live: bool = False,
    ):
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype {dtype!r}: use float32 or float16")
        self.model = model
        self.names = list(sites) if sites is not None else None
        self.path = Path(out)
        self.classes = [str(c) for c in classes] if classes is not None else None
        self.user_config = dict(config or {})
        self.dtype, self.unit_chunk, self.checkpoints = dtype, unit_chunk, checkpoints
        self.live = live  # start the live analyzer (trainer/live.py) after the first record
        self._monitor = None
        self.net: nn.Module | None = None  # the model with its sites attached (first record)
        self.sites = None
        # the run directory is locked from here to close(), as the trainer's (a second writer
        # stops with one line naming this process)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = outputs.dir_lock(self.path.parent)
        self._lock.__enter__()

    # ------------------------------------------------------------ measuring
    def _attach(self, example: torch.Tensor) -> None:
        self.net = attach_sites(self.model, self.names, example[:1])
        self.sites = find_sites(self.net)
        self.config = {
            "arch": type(self.model).__name__,
            "activation": "custom",
            "regularizer": "none",
            "seed": 0,
            "width": 1.0,
            "dataset": {"name": "custom"},
            **self.user_config,
            "sites": [s.name for s in self.sites] if self.names is not None else None,
            "input_shape": list(example.shape[1:]),
            "recorder": True,
        }

    @torch.no_grad()
    def _measure(self, val_loader):
        """One pass over ``val_loader``: (activation (sample, unit), labels, summary, loss, acc)."""
        device = _device_of(self.model)
        was_training = self.model.training
        self.model.eval()
        chunks, labels, summaries, names = [], [], [], None
        loss_sum, correct, total, logits_ok = 0.0, 0, 0, True
        try:
            for batch in val_loader:
                x, y = batch[0].to(device), batch[1].to(device)
                if self.net is None:
                    self._attach(x)
                with capture_gap(self.sites) as pooled:
                    logits = self.net(x)
                chunks.append(torch.cat([pooled[s.name] for s in self.sites], dim=1).float().cpu())
                summary, names = summarize_inputs(x)
                summaries.append(summary.cpu())
                labels.append(y.cpu())
                logits_ok &= isinstance(logits, torch.Tensor) and logits.dim() == 2
                if logits_ok:
                    loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
                    correct += (logits.argmax(1) == y).sum().item()
                total += len(y)
        finally:
            self.model.train(was_training)
        if total == 0:
            raise ValueError("Recorder.record: val_loader yielded no samples")
        loss = loss_sum / total if logits_ok else math.nan
        acc = correct / total if logits_ok else math.nan
        act = torch.cat(chunks).numpy()
        return act, torch.cat(labels).numpy(), torch.cat(summaries).numpy(), names, loss, acc

    # ------------------------------------------------------------ writing
    def record(self, epoch: int, val_loader, metrics: dict | None = None) -> dict:
        """Measure the model on ``val_loader`` and store it as ``epoch`` (0 = before training).

        ``metrics``: any of train_loss, train_acc, train_hsic, val_loss, val_acc, lr,
        epoch_seconds (val_loss / val_acc default to the measured ones). Returns the metrics.
        """
        metrics = dict(metrics or {})
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown:
            raise ValueError(
                f"Recorder.record: unknown metrics {', '.join(unknown)} (known: {', '.join(METRICS)})"
            )
        if not isinstance(epoch, int | np.integer) or epoch < 0:
            raise ValueError(f"Recorder.record: epoch must be an integer >= 0, got {epoch!r}")
        t0 = time.perf_counter()
        act, labels, summary, features, loss, acc = self._measure(val_loader)
        metrics = {"val_loss": loss, C.VAL_ACC: acc, **{k: float(v) for k, v in metrics.items()}}
        metrics.setdefault("epoch_seconds", time.perf_counter() - t0)
        if store_exists(self.path):
            self._append(int(epoch), act, labels, metrics)
        elif epoch != 0:
            raise ValueError(
                f"Recorder.record: {self.path} does not exist yet: record epoch 0 first"
            )
        else:
            self._create(act, labels, summary, features, metrics)
        if self.checkpoints:
            self._checkpoint(int(epoch))
        if self.live and self._monitor is None:
            from trainer.live import LiveMonitor

            self._monitor = LiveMonitor(self.path.parent, store=self.path)
        elif self._monitor is not None:
            self._monitor.check()
        return metrics

    def _create(self, act, labels, summary, features, metrics) -> None:
        classes = self.classes or [str(k) for k in range(int(labels.max()) + 1)]
        cfg = self.config
        identity = {
            "dataset": cfg["dataset"],
            "arch": str(cfg["arch"]),
            "activation": str(cfg["activation"]),
            "regularizer": str(cfg["regularizer"]),
            "seed": int(cfg["seed"]),
            "width": float(cfg["width"]),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        store.create_store(
            self.path,
            activation=act,
            metrics=metrics,
            labels=labels,
            input_summary=summary,
            input_features=features,
            sites=[s.describe() for s in self.sites],
            attrs=store.run_attrs(
                identity,
                json.dumps(cfg, sort_keys=True, default=str),
                classes,
                "recorded by trainer.Recorder before the first update of the user's loop",
            ),
            dtype=self.dtype,
            unit_chunk=self.unit_chunk,
        )

    def _append(self, epoch: int, act, labels, metrics) -> None:
        import zarr

        group = zarr.open_group(self.path, mode="r+")  # raw zarr: a torn append may be present
        stored = [(s["name"], int(s["channels"])) for s in json.loads(group.attrs[C.ATTR_SITES])]
        ours = [(s.name, s.channels) for s in self.sites]
        if stored != ours:
            raise ValueError(f"Recorder: {self.path} holds other sites than {[n for n, _ in ours]}")
        if not np.array_equal(group[C.LABEL][:], labels):
            raise ValueError(
                f"Recorder: val_loader gives other samples or order than {self.path} holds"
            )
        n = store.complete_epochs(self.path)  # an interrupted append does not count
        if epoch > n:
            raise ValueError(
                f"Recorder.record: epoch {epoch} after epochs 0-{n - 1}: record epochs in order"
            )
        store.truncate_epochs(self.path, epoch)
        store.append_epoch(self.path, epoch, act, metrics, self.dtype)
        group.attrs.update(status="running", epochs_complete=epoch + 1)

    def _checkpoint(self, epoch: int) -> None:
        import zarr

        run_dir = self.path.parent
        C.checkpoint_path(run_dir, "last").parent.mkdir(exist_ok=True)
        group = zarr.open_group(self.path, mode="r")
        state = {
            "epoch": epoch,
            "model": self.net.state_dict(),
            C.ATTR_CONFIG: json.dumps(self.config, sort_keys=True, default=str),
            C.ATTR_SITES: [s.describe() for s in self.sites],
            C.ATTR_CLASSES: json.loads(group.attrs[C.ATTR_CLASSES]),
        }
        if epoch == 0:
            atomic_torch_save(state, C.checkpoint_path(run_dir, "init"))
        if C.best_epoch(group[C.VAL_ACC][: epoch + 1]) == epoch:
            atomic_torch_save(state, C.checkpoint_path(run_dir, "best"))
        atomic_torch_save(state, C.checkpoint_path(run_dir, "last"))

    def close(self, status: str = "complete") -> None:
        """Mark the store finished (``complete`` or ``diverged``) and consolidate its metadata."""
        if self._lock is None:
            return
        try:
            if store_exists(self.path):
                n = store.complete_epochs(self.path)
                store.truncate_epochs(self.path, n)
                store.finalize_store(self.path, status, n)
        finally:
            if self._monitor is not None:
                self._monitor.close(finished=status != "running")
            self._lock.__exit__(None, None, None)
            self._lock = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, *_):
        self.close("complete" if exc_type is None else "running")


def store_exists(path: Path) -> bool:
    return (Path(path) / "zarr.json").is_file()
