"""Where a rerun of the trainer on an existing run directory resumes from (and the policy).

Policy for config changes on resume (README "What happens when..."):

* keys in :data:`MAY_CHANGE` (display, hardware, data location) may differ from the run's
  saved config: the run resumes. Changing device or workers can change low-order bits of
  later epochs (different kernels / augmentation workers), never the experiment;
* any other difference stops with a :class:`ResumeError` naming the key(s) and both values.
  Nothing is deleted: choose another ``--out`` or delete the run directory yourself.

Resume point: the newest readable checkpoint (``last.pt``, then ``epoch-NNN.pt``,
``best.pt``, ``init.pt``) whose earlier dumps are all intact in the store (chunks present
and decodable, epoch coordinate the task's dump schedule: 0, 1, 2, ... for the CNNs). Its own epoch is re-dumped if its data did
not land or is damaged; later epochs are recomputed (bit-identically). Falling back from
``last.pt`` is logged with the reason. With no usable checkpoint and more than epoch 0 on
disk the trainer stops (nothing deleted); with only epoch 0 at most it starts afresh.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr

from latent_mi import contract as C
from latent_mi.settings import may_change
from latent_mi.store_check import find_damage, metadata_problem
from trainer import store
from trainer.run_files import own_checkpoints

log = logging.getLogger("trainer")

# trainer settings that are not identity (display, hardware, data location): latent_mi/settings
MAY_CHANGE = may_change()


class ResumeError(RuntimeError):
    """A run directory cannot be resumed with this config; one line, nothing deleted."""


@dataclass
class ResumePoint:
    """A loaded checkpoint to resume from and how much of the store is intact."""

    state: dict  # the checkpoint (model, optimizer, scheduler, rng, progress, config, ...)
    path: Path
    epoch: int  # the checkpoint's epoch
    intact: int  # leading store entries present, decodable and numbered as the dump schedule


def flatten(cfg: dict, prefix: str = "") -> dict:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``."""
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_changes(saved: dict, cfg: dict) -> list[str]:
    """Keys (dotted) whose values differ and are not allowed to change, as 'key: old -> new'."""
    old, new = flatten(saved), flatten(cfg)
    changed = []
    for key in sorted(set(old) | set(new)):
        if key in MAY_CHANGE or old.get(key, "<unset>") == new.get(key, "<unset>"):
            continue
        changed.append(f"{key}: {old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r}")
    return changed


def check_config(saved_json: str, cfg: dict, run_dir: Path) -> None:
    """Raise ResumeError if ``cfg`` differs from the run's saved config in a fixed key."""
    changes = config_changes(json.loads(saved_json), cfg)
    if changes:
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise ResumeError(
            f"{run_dir} was trained with another config, config key {changes[0]}{more}: "
            "resuming would mix two runs; use another --out, or delete the run directory to "
            "train it again (nothing was deleted)"
        )


def read_progress(run_dir: Path) -> dict | None:
    """``progress.json`` if readable (a damaged one is reported: the checkpoints hold it too)."""
    path = run_dir / C.PROGRESS
    if not path.exists():
        return None
    try:
        progress = json.loads(path.read_text())
        if not isinstance(progress, dict) or "epochs_complete" not in progress:
            raise ValueError("not a progress record (a JSON object with epochs_complete)")
    except (OSError, ValueError) as e:
        log.warning("ignoring damaged %s (%s); resuming from the checkpoints", path, e)
        return None
    return progress


def load_checkpoint(path: Path, device) -> tuple[dict | None, str]:
    """(state, "") or (None, why it cannot be used)."""
    if not path.is_file():
        return None, "missing"
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # truncated, empty, garbage: many error types
        return None, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    if not isinstance(state, dict) or not {"epoch", "model", "rng", "progress"} <= set(state):
        return None, "not a trainer checkpoint"
    bad = nonfinite_tensor(state)
    if bad is not None:
        # a diverged epoch is never checkpointed (the loop stops before saving): damage
        return None, f"damaged (non-finite values in {bad}; not a divergence)"
    return state, ""


def nonfinite_tensor(state: dict) -> str | None:
    """The first model weight or optimizer buffer of a checkpoint that holds NaN/Inf, or None."""
    tensors = [(f"weight {k}", v) for k, v in state["model"].items()]
    for index, buffers in (state.get("optimizer") or {}).get("state", {}).items():
        tensors += [(f"optimizer {name} of parameter {index}", v) for name, v in buffers.items()]
    for name, value in tensors:
        if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all():
            return name
    return None


def candidates(ckpt_dir: Path) -> list[Path]:
    """Checkpoints newest first: last.pt, epoch-NNN.pt (descending), best.pt, init.pt."""
    epochs = sorted(ckpt_dir.glob("epoch-*.pt"), reverse=True) if ckpt_dir.is_dir() else []
    return [ckpt_dir / C.LAST_CKPT, *epochs, ckpt_dir / C.BEST_CKPT, ckpt_dir / C.INIT_CKPT]


def intact_epochs(store_path: Path, dump_epochs: list[int] | None = None) -> int:
    """Leading store entries whose chunks are present and decode and whose epoch coordinate
    is the dump schedule's (``dump_epochs``; None: 0, 1, 2, ...).

    Damaged array metadata is first restored from the store's consolidated copy (a finished
    store has one); metadata that cannot be restored makes the whole store unusable (0).
    """
    if not store_path.is_dir():
        return 0
    for meta in store.restore_metadata(store_path):
        log.warning(
            "%s was missing or damaged: restored from the store's consolidated metadata", meta
        )
    rebuilt = store.rebuild_epoch_coord(store_path, dump_epochs)
    if rebuilt:
        last = rebuilt - 1 if dump_epochs is None else dump_epochs[rebuilt - 1]
        log.warning("%s/epoch was lost: rebuilt it as epochs 0-%d", store_path, last)
    problem = metadata_problem(store_path)
    if problem:
        log.warning("activation store %s: %s; recomputing its epochs", store_path, problem)
        return 0
    try:
        values = zarr.open_group(store_path, mode="r", use_consolidated=False)["epoch"][:]
    except Exception:
        return 0  # no store, or not readable
    expected = np.arange(len(values)) if dump_epochs is None else np.asarray(dump_epochs)
    values = values[: len(expected)]
    ok = values == expected[: len(values)]
    n = int(len(values) if ok.all() else np.argmin(ok))
    damage = find_damage(
        store_path, None, indices=range(n), decode=True
    )  # every epoch-indexed array
    if damage is not None:
        log.warning("%s: re-dumping from there", damage.short(store_path))
        return damage.index
    return n


def has_run(run_dir: Path) -> bool:
    """Whether the directory holds anything of a run (store, checkpoints or progress)."""
    return (
        (run_dir / C.STORE).exists()
        or (run_dir / C.PROGRESS).exists()
        or bool(own_checkpoints(run_dir))
    )


def find_resume_point(
    run_dir: Path, cfg: dict, device, dump_epochs: list[int] | None = None
) -> ResumePoint | None:
    """The checkpoint to resume from, or None to start afresh (see the module docstring).
    ``dump_epochs``: the epochs the store holds, in order (None: 0, 1, 2, ...)."""
    if not has_run(run_dir):
        return None
    progress = read_progress(run_dir)
    if progress is not None and "config" in progress:
        check_config(progress["config"], cfg, run_dir)
    intact = intact_epochs(run_dir / C.STORE, dump_epochs)
    problems = []
    for path in candidates(run_dir / C.CHECKPOINTS):
        state, why = load_checkpoint(path, device)
        if state is None:
            problems.append(f"{path.name} {why}")
            continue
        check_config(state["config"], cfg, run_dir)
        epoch = int(state["epoch"])
        if int(state["progress"]["epochs_complete"]) - 1 > intact:  # its dump's store index
            problems.append(f"{path.name} (epoch {epoch}) is past the intact store")
            continue
        if problems:
            log.warning(
                "%s: %s; resuming from %s (epoch %d): later epochs are recomputed",
                run_dir,
                "; ".join(problems),
                path.name,
                epoch,
            )
        return ResumePoint(state, path, epoch, intact)
    stored = max(intact, progress["epochs_complete"] if progress else 0)
    if stored <= 1:
        log.warning("%s: no usable checkpoint (%s); starting afresh", run_dir, "; ".join(problems))
        return None
    raise ResumeError(
        f"cannot resume {run_dir}: no usable checkpoint ({'; '.join(problems)}); nothing was "
        "deleted: restore a checkpoint, or delete the run directory to train it again"
    )


def check_best(ckpt_dir: Path, state: dict, device, rewrite) -> None:
    """Make sure ``best.pt`` is readable and is the run's best epoch on resume.

    ``state`` is the checkpoint resumed from; when it is the best epoch itself a damaged
    ``best.pt`` is rewritten (``rewrite()``), else a damaged one stops with one line.
    """
    best_epoch = int(state["progress"]["best_epoch"])
    best, why = load_checkpoint(ckpt_dir / C.BEST_CKPT, device)
    if best is not None and int(best["epoch"]) == best_epoch:
        return
    why = why or f"at epoch {int(best['epoch'])}, not the best epoch {best_epoch},"
    if int(state["epoch"]) == best_epoch:
        log.warning("%s %s; rewriting it from epoch %d", ckpt_dir / C.BEST_CKPT, why, best_epoch)
        rewrite()
        return
    saved = ckpt_dir / f"epoch-{best_epoch:03d}.pt"
    kept, _ = load_checkpoint(saved, device)
    if kept is not None:
        log.warning("%s %s; restoring it from %s", ckpt_dir / C.BEST_CKPT, why, saved.name)
        tmp = ckpt_dir / (C.BEST_CKPT + ".tmp")
        tmp.write_bytes(saved.read_bytes())
        os.replace(tmp, ckpt_dir / C.BEST_CKPT)
        return
    raise ResumeError(
        f"{ckpt_dir / C.BEST_CKPT} is {why} and no checkpoint of epoch {best_epoch} is left to "
        "rebuild it: restore it from a backup, or train the run again in another --out "
        "(nothing was deleted)"
    )
