"""Inference-time interventions on a trained checkpoint, ranked by the analyzer's channel MI.

seeds/001 §4.2 and appendices A-D. One module per job:

* :mod:`.selection` (torch-free): top / random / bottom channel sets at MI mass q, the plan
  of (q, selection, draw) slots, seeded draws, NaN-safe rankings;
* :mod:`.surgery`: per-architecture site output, suffix forward, transplant weights,
  scaled identity paths (VGG, ResNet);
* :mod:`.edits`: zero, energy-preserving zero, shuffle, noise, applied per batch;
* :mod:`.stream`: batches through a DataLoader, one site at a time, counts accumulated;
* :mod:`.experiments`: global, class-targeted, cover vs redundant, skip gain, transplants;
* :mod:`.loading`: checkpoint, validation set, the MI ranking (checked against the run);
* :mod:`.cli`: ``python -m interventions``.
"""

from interventions.edits import BatchContext, Noise, Shuffle, Zero
from interventions.experiments import (
    ClassKnockouts,
    CoverVsRedundant,
    GlobalInterventions,
    run_site_experiments,
    skip_gain_sweep,
    transplants,
)
from interventions.loading import (
    Checkpoint,
    InputError,
    choose_layers,
    load_checkpoint,
    read_ranking,
)
from interventions.selection import (
    SELECTIONS,
    Ranking,
    mass_prefix,
    plan,
    redundant_set,
    select_channels,
)
from interventions.stream import Job, Streamer, pick_device
from interventions.surgery import SiteOutput, surgery_for, transplant

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
