"""Inference-time interventions on a trained checkpoint, ranked by the analyzer's channel MI.

The paper's §4.2 (Channel-Level Specialization and MI Concentration) and appendices A-D. One module per job:

* :mod:`.selection` (torch-free): top / random / bottom channel sets at MI mass q, the plan
  of (q, selection, draw) slots, seeded draws, NaN-safe rankings;
* :mod:`.surgery`: per-architecture site output, suffix forward, transplant weights,
  scaled identity paths (VGG, ResNet);
* :mod:`.edits`: zero, energy-preserving zero, shuffle, noise, applied per batch;
* :mod:`.stream`: batches through a DataLoader, one site at a time, counts accumulated;
* :mod:`.experiments`: global, class-targeted, cover vs redundant, skip gain, transplants;
* :mod:`.loading`: checkpoint, validation set, the MI ranking (checked against the run);
* :mod:`.compute`: one invocation's result Dataset; :mod:`.cli`: ``python -m interventions``.
"""

import importlib

# name -> module; imported on first use, so ``python -m interventions --help`` loads no torch
_WHERE = {
    **dict.fromkeys(("BatchContext", "Noise", "Shuffle", "Zero"), "edits"),
    **dict.fromkeys(
        (
            "ClassKnockouts",
            "CoverVsRedundant",
            "GlobalInterventions",
            "run_site_experiments",
            "skip_gain_sweep",
            "transplants",
        ),
        "experiments",
    ),
    **dict.fromkeys(
        ("Checkpoint", "InputError", "choose_layers", "load_checkpoint", "read_ranking"),
        "loading",
    ),
    **dict.fromkeys(
        ("SELECTIONS", "Ranking", "mass_prefix", "plan", "redundant_set", "select_channels"),
        "selection",
    ),
    **dict.fromkeys(("Job", "Streamer", "pick_device"), "stream"),
    **dict.fromkeys(("SiteOutput", "surgery_for", "transplant"), "surgery"),
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'interventions' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"interventions.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "SELECTIONS",
    "BatchContext",
    "Checkpoint",
    "ClassKnockouts",
    "CoverVsRedundant",
    "GlobalInterventions",
    "InputError",
    "Job",
    "Noise",
    "Ranking",
    "Shuffle",
    "SiteOutput",
    "Streamer",
    "Zero",
    "choose_layers",
    "load_checkpoint",
    "mass_prefix",
    "pick_device",
    "plan",
    "read_ranking",
    "redundant_set",
    "run_site_experiments",
    "select_channels",
    "skip_gain_sweep",
    "surgery_for",
    "transplant",
    "transplants",
]
