"""The one declaration of names shared across stages (trainer -> store -> analyzer -> figures).

Torch-free, and numpy only inside :func:`best_epoch`, so the analyzer, the figures, the
settings table and the Snakemake rules import it cheaply. Every file name, store/MI variable
name, attrs key, site kind and path template that more than one stage relies on is declared
here; code elsewhere imports it instead of retyping the string.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

# ---------------------------------------------------------------- run directory (trainer)
STORE = "activations.zarr"  # <run_dir>/activations.zarr: the activation store
CHECKPOINTS = "checkpoints"  # <run_dir>/checkpoints/{init,best,last}.pt
INIT_CKPT = "init.pt"  # epoch 0, before any update
BEST_CKPT = "best.pt"  # the epoch of best_epoch(val_acc)
LAST_CKPT = "last.pt"  # the latest epoch (resume point)
PROGRESS = "progress.json"  # epochs complete, best epoch (resume reads it)
DONE = "done.json"  # written last: the run finished (workflow target)
CHECKPOINT_FILES = {"init": INIT_CKPT, "best": BEST_CKPT, "last": LAST_CKPT}


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """``<run_dir>/checkpoints/<which>.pt`` for which in init/best/last (or ``epoch-NNN``)."""
    return Path(run_dir) / CHECKPOINTS / CHECKPOINT_FILES.get(which, f"{which}.pt")


# ---------------------------------------------------------------- activation store
ACTIVATION = "activation"  # (epoch, sample, unit): GAP value per unit (= site x channel)
LABEL = "label"  # (sample,)
INPUT_SUMMARY = "input_summary"  # (sample, input_feature)
VAL_ACC = "val_acc"  # (epoch,): validation accuracy, fraction in [0, 1]
EPOCH_METRICS = (  # per-epoch scalars of the store, in this order
    "train_loss",
    "train_acc",
    "train_hsic",
    "val_loss",
    VAL_ACC,
    "lr",
    "epoch_seconds",
)
UNIT_COORDS = ("site", "channel", "site_kind")  # coords of the flattened ``unit`` dim

# site kinds: the trainer writes each site's kind (store coord ``site_kind``, attrs ``sites``);
# the analyzer carries it as ``layer_kind``; figures, interventions and hsic.site_kinds read it
SITE_CONV_RELU = "conv-relu"  # VGG: the ReLU after a convolution
SITE_CONV_TANH = "conv-tanh"  # VGG: the tanh after a convolution
SITE_BRANCH = "branch"  # ResNet: a block's residual branch, before the skip addition
SITE_POST_ADD = "post-add"  # ResNet: a block's output, after the addition and its activation
SITE_BLOCK = "block"  # any other model (trainer.discovery): a block holding a convolution
SITE_ACT = "act"  # any other model: an activation module after a convolution or linear layer
SITE_NAMED = "named"  # any other model: a module named in ``sites``
SITE_KINDS = (
    SITE_CONV_RELU,
    SITE_CONV_TANH,
    SITE_BRANCH,
    SITE_POST_ADD,
    SITE_BLOCK,
    SITE_ACT,
    SITE_NAMED,
)

# attrs keys (store and MI Dataset)
RUN_KEYS = ("dataset", "arch", "activation", "regularizer", "seed")  # identify a run's model
ATTR_CONFIG = "config"  # the resolved trainer config, JSON
ATTR_SITES = "sites"  # JSON list of {name, kind, channels} in depth order
ATTR_CLASSES = "classes"  # JSON list of class names
ATTR_STATUS = "status"  # running / complete / diverged
ATTR_BEST_EPOCH = "best_epoch"  # MI Dataset: epoch label of best_epoch(val_acc)

# ---------------------------------------------------------------- MI Dataset (analyzer)
CHANNEL_LABEL_MI = "channel_label_mi"  # (epoch, layer, channel), nat
CLASS_CHANNEL_MI = "class_channel_mi"  # (epoch, layer, channel, label), nat
CHANNEL_CHANNEL_MI = "channel_channel_mi"  # (cc_epoch, cc_layer, channel, channel_b), nat
LABEL_MI = "label_mi"  # (epoch, layer), nat
INPUT_MI = "input_mi"  # (epoch, layer), nat
N_CHANNELS = "n_channels"  # coord (layer,): channels of each (padded) layer
MI_COORDS = (*RUN_KEYS, "run", "bins")  # scalar coords that identify an MI Dataset's run


# ---------------------------------------------------------------- results/ path templates
RUNS = "runs"  # the folder of trained runs, beside the configs' results folders


def runs_root(results: str | Path) -> str:
    """``<parent of results>/runs`` (``results/runs`` for ``results/<config>``): the trained
    runs, shared by every config whose results folder sits in the same parent."""
    parent = os.path.dirname(str(results).rstrip("/"))
    return f"{parent}/{RUNS}" if parent else RUNS


def settings_hash(settings: dict) -> str:
    """8 hex digits of the SHA-256 of ``settings`` as canonical JSON (sorted keys): the
    same settings give the same digits on every machine."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def trained_run_name(run: str, identity: dict) -> str:
    """``<run>-<settings_hash(identity)>``: a trained run's folder name, from the run's name
    (arch-activation-regularizer-s<seed>) and the settings that define its training."""
    return f"{run}-{settings_hash(identity)}"


def run_name(trained: str) -> str:
    """``<run>-<8 hex digits>`` (a trained run's folder name) -> ``<run>``, the name the
    run's MI Dataset and the figures use; any other name is returned as it is."""
    head, sep, tail = trained.rpartition("-")
    is_hash = sep and len(tail) == 8 and all(c in "0123456789abcdef" for c in tail)
    return head if is_hash else trained


def run_dir(results: str | Path, trained: str) -> str:
    """``<runs_root(results)>/<trained>``: the trainer's output for one trained run."""
    return f"{runs_root(results)}/{trained}"


def done_path(run_dir: str | Path) -> str:
    """``<run_dir>/done.json``: the trainer writes it last (the workflow's target of a run)."""
    return f"{run_dir}/{DONE}"


def store_path(run_dir: str | Path) -> str:
    """``<run_dir>/activations.zarr``: a run's activation store."""
    return f"{run_dir}/{STORE}"


def mi_path(results: str | Path, bins: int | str, run: str) -> str:
    """``<results>/mi/bins-<B>/<run>.zarr``: the analyzer's MI Dataset."""
    return f"{results}/mi/bins-{bins}/{run}.zarr"


def interventions_path(results: str | Path, bins: int | str, run: str) -> str:
    """``<results>/interventions/bins-<B>/<run>.zarr``: knockouts, shuffles, noise."""
    return f"{results}/interventions/bins-{bins}/{run}.zarr"


TRANSPLANT_PREFIX = "transplant-"
TRANSPLANT_SEP = "--"


def transplant_name(donor: str, recipient: str) -> str:
    """``transplant-<donor>--<recipient>``: the stem of a transplant result."""
    return f"{TRANSPLANT_PREFIX}{donor}{TRANSPLANT_SEP}{recipient}"


def transplant_path(results: str | Path, bins: int | str, donor: str, recipient: str) -> str:
    """``<results>/interventions/bins-<B>/transplant-<donor>--<recipient>.zarr``."""
    return f"{results}/interventions/bins-{bins}/{transplant_name(donor, recipient)}.zarr"


def is_transplant(path: str | Path) -> bool:
    """A transplant result is recognised by its name: ``transplant-<donor>--<recipient>.zarr``."""
    return Path(path).name.startswith(TRANSPLANT_PREFIX)


def figures_dir(results: str | Path, bins: int | str) -> str:
    """``<results>/figures/bins-<B>``."""
    return f"{results}/figures/bins-{bins}"


def findings_stem(results: str | Path, bins: int | str) -> str:
    """``<results>/findings/bins-<B>``: the findings report is ``<stem>.json`` and ``<stem>.md``."""
    return f"{results}/findings/bins-{bins}"


FINDINGS_KEYS = ("id", "claim", "verdict", "statistic", "interval", "null", "runs")
VERDICTS = ("reproduced", "contradicted", "inconclusive", "not measured")


def sweep_path(results: str | Path, run: str) -> str:
    """``<results>/robustness/runs/<run>.zarr``: one run's robustness sweep."""
    return f"{results}/robustness/runs/{run}.zarr"


def robustness_stem(results: str | Path) -> str:
    """``<results>/robustness/summary``: the sweep's table (.md, .json) and figure."""
    return f"{results}/robustness/summary"


def log_path(results: str | Path, stage: str, name: str) -> str:
    """``<results>/logs/<stage>/<name>.log`` (name may hold ``bins-<B>/``)."""
    return f"{results}/logs/{stage}/{name}.log"


# ---------------------------------------------------------------- output kinds (latent_mi.outputs)
# Recorded in each output's marker; an output is only ever replaced by one of the same kind.
KIND_MI = "mi-dataset"  # the analyzer's MI Dataset
KIND_INTERVENTIONS = "interventions"  # interventions results (knockouts, transplants)


# ---------------------------------------------------------------- shared definitions
def best_epoch(val_acc) -> int:
    """Index of the best validation accuracy: the first maximum over the finite values.

    The one definition of "best epoch" (trainer's best.pt, analyzer, figures, interventions).
    Non-finite entries never win; if none is finite, epoch index 0 (initialization).
    The trainer's running rule :func:`improves` selects the same epoch.
    """
    import numpy as np  # here only: the settings table imports this module without numpy

    v = np.asarray(val_acc, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return 0
    return int(np.argmax(np.where(ok, v, -np.inf)))


def improves(val_acc: float, best_val_acc: float) -> bool:
    """Running form of :func:`best_epoch`: a later epoch wins only if strictly better."""
    return bool(math.isfinite(val_acc) and not (val_acc <= best_val_acc))


T = TypeVar("T")


def n_final_third(n_layers: int) -> int:
    """How many layers "the final third" holds: ceil(L / 3)."""
    return math.ceil(n_layers / 3)


def final_third(layers: Sequence[T]) -> Sequence[T]:
    """The final third of the layers in depth order: the last ceil(L / 3) of them."""
    return layers[len(layers) - n_final_third(len(layers)) :]
