"""Inputs of the interventions: a run's checkpoint, its validation set, the analyzer's ranking.

:func:`load_checkpoint` is the one place a checkpoint becomes a model (extend it for new
model families). :func:`read_ranking` checks that the MI Dataset belongs to the run of the
checkpoint (arch, activation, regularizer, seed, run name) and that the checkpoint is the
epoch the ranking comes from (:func:`latent_mi.contract.best_epoch`); otherwise one line
naming both files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

from latent_mi import contract as C
from latent_mi.manifest import open_output
from trainer.sites import Site, find_sites


class InputError(ValueError):
    """The checkpoint and the MI Dataset do not belong together (one line)."""


@dataclass
class Checkpoint:
    """A run's model (eval mode, on ``device``) and what the checkpoint says about it."""

    path: Path
    model: nn.Module
    config: dict  # the resolved trainer config
    epoch: int  # the epoch whose weights these are
    classes: list[str]
    sites: list[Site]
    recorded_acc: float | None = None  # validation accuracy the trainer recorded for it


def load_checkpoint(run_dir, which: str = "best", device: str | torch.device = "cpu") -> Checkpoint:
    """The model of ``<run_dir>/checkpoints/<which>.pt``, rebuilt with trainer.models."""
    from trainer.zoo import model_from_config

    path = C.checkpoint_path(run_dir, which)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found (train the run first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        cfg = json.loads(state["config"])
    except Exception as e:  # truncated, empty or garbage: many error types
        raise ValueError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:100]}): "
            "it is damaged; restore it, or delete the run directory and train the run again"
        ) from None
    bad = [k for k, v in state["model"].items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise ValueError(
            f"checkpoint {path} has non-finite weights ({bad[0]}"
            f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}): the run is damaged or "
            "diverged; rerun the trainer on its run directory"
        )
    model = model_from_config(cfg, len(state["classes"]))
    model.load_state_dict(state["model"])
    model.eval().to(device)
    recorded = (state.get("progress") or {}).get("last_metrics", {}).get("val_acc")
    return Checkpoint(
        path,
        model,
        cfg,
        int(state["epoch"]),
        list(state["classes"]),
        find_sites(model),
        None if recorded is None else float(recorded),
    )


def validation_set(cfg: dict):
    """The validation Dataset of a run's config, in the dump's fixed sample order."""
    from trainer.zoo import val_set_from_config

    return val_set_from_config(cfg)


def choose_layers(sites: list[Site], which: str) -> list[Site]:
    """all, last, or last-third (:func:`latent_mi.contract.final_third`)."""
    if which == "all":
        return list(sites)
    if which == "last":
        return list(sites[-1:])
    if which == "last-third":
        return list(C.final_third(sites))
    raise ValueError(f"interventions.layers {which!r}: use all, last or last-third")


@dataclass
class MIRanking:
    """Channel-label and class-channel MI at the ranking epoch, per layer, unpadded (nat)."""

    channel: dict[str, np.ndarray]  # layer -> (C,)
    klass: dict[str, np.ndarray]  # layer -> (C, n_classes)
    epoch: int  # the epoch the ranking comes from
    n_classes: int
    pair: dict[str, np.ndarray]  # layer -> (C, C) channel-channel MI, where computed
    coords: dict  # run-identifying scalar coords of the MI Dataset


def _scalar(ds: xr.Dataset, key: str):
    if key not in ds.coords:
        return None
    v = ds.coords[key].values
    return v.item() if v.ndim == 0 else None


def check_same_run(mi_path, ds: xr.Dataset, ckpt: Checkpoint, run_dir) -> None:
    """One line if the MI Dataset is not the ranking of this checkpoint's run."""
    cfg = ckpt.config
    want = {k: cfg.get(k) for k in ("arch", "activation", "regularizer", "seed")}
    want["run"] = Path(run_dir).resolve().name  # the workflow's <run>-<hash> is <run> too
    for key, value in want.items():
        got = _scalar(ds, key)
        if got is None or value is None:
            continue
        if str(got) != str(value) and not (key == "run" and str(got) == C.run_name(value)):
            raise InputError(
                f"MI file {mi_path} is for {key}={got} but checkpoint {ckpt.path} has "
                f"{key}={value}: pass the MI Dataset of this run"
            )
    layers = {str(v) for v in ds.layer.values}
    missing = [s.name for s in ckpt.sites if s.name not in layers]
    if missing:
        raise InputError(
            f"MI file {mi_path} has no layer {missing[0]} of checkpoint {ckpt.path} "
            f"({cfg.get('arch')}): pass the MI Dataset of this run"
        )


def open_mi(mi_path) -> xr.Dataset:
    """The analyzer's MI Dataset at ``mi_path``; a wrong input is one ValueError line."""
    path = Path(mi_path)
    if not path.exists():
        raise FileNotFoundError(f"MI Dataset {path} does not exist (run the analyzer first)")
    ds = open_output(path, "--mi")  # a missing or altered chunk: one line naming it
    if C.CHANNEL_LABEL_MI not in ds or C.VAL_ACC not in ds:
        hint = ""
        if C.ACTIVATION in ds:
            hint = " (it is an activation store: pass the analyzer's output for it, e.g. "
            hint += f"{C.mi_path('results', 20, 'RUN')})"
        raise ValueError(f"--mi {path} is not an analyzer MI Dataset{hint}")
    return ds


def read_ranking(mi_path, ckpt: Checkpoint, run_dir) -> MIRanking:
    """The ranking of ``run_dir`` from its MI Dataset, checked against the checkpoint."""
    ds = open_mi(mi_path)
    check_same_run(mi_path, ds, ckpt, run_dir)
    epochs = ds.epoch.values
    best = int(epochs[C.best_epoch(ds[C.VAL_ACC].values)])
    if ckpt.epoch != best:
        raise InputError(
            f"checkpoint {ckpt.path} is epoch {ckpt.epoch} but the MI ranking {mi_path} comes "
            f"from epoch {best} (its best validation accuracy): analyze this run's final store"
        )
    channel, klass, pair = {}, {}, {}
    cc_ok = "cc_layer" in ds.coords and best in ds.coords.get("cc_epoch", xr.DataArray([])).values
    for layer, n in zip(ds.layer.values, ds[C.N_CHANNELS].values, strict=True):
        name, n = str(layer), int(n)
        channel[name] = ds[C.CHANNEL_LABEL_MI].sel(epoch=best, layer=layer).values[:n]
        klass[name] = ds[C.CLASS_CHANNEL_MI].sel(epoch=best, layer=layer).values[:n]
        if cc_ok and name in {str(v) for v in ds.cc_layer.values}:
            pm = ds[C.CHANNEL_CHANNEL_MI].sel(cc_epoch=best, cc_layer=layer).values
            pair[name] = pm[:n, :n].astype(np.float64)
    coords = {k: ds.coords[k].values for k in C.MI_COORDS if k in ds.coords}
    return MIRanking(
        {k: v.astype(np.float64) for k, v in channel.items()},
        {k: v.astype(np.float64) for k, v in klass.items()},
        best,
        int(ds.sizes["label"]),
        pair,
        coords,
    )
