"""The paper's figures from MI Datasets and intervention results (matplotlib, no torch).

Importing this package changes no global matplotlib state (no backend, no rcParams):
figures are drawn on ``matplotlib.figure.Figure`` objects, so Jupyter's inline backend
keeps working. Modules: ``loading`` (combine runs, depth order), ``grouping`` ((arch,
activation, regularizer) groups, seeds as the spread), ``mi`` and ``interventions`` (the
figures), ``captions`` (the registry of figures), ``cli`` (``python -m analyzer.figures``).
"""

from __future__ import annotations

from .captions import FIGURES, FigureInfo, caption
from .drawing import Drawn
from .grouping import GROUP, at_best, group_datasets, groups, label, run_keys, seeds
from .interventions import (
    INTERVENTION_FIGURES,
    cover_and_skip_gain,
    fig5_knockouts,
    fig6_class_knockouts,
    transplant_figure,
)
from .loading import load_runs, merge_layer_orders
from .mi import (
    MI_FIGURES,
    fig1_depth_mi,
    fig2_layer_mi,
    fig3_concentration,
    fig7_accuracy_vs_delta,
    fig8_trajectories,
    fig9_hsic,
    info_plane,
)

DRAW = {**MI_FIGURES, **INTERVENTION_FIGURES}


def draw(name: str, mi=None, interventions=(), out=None, formats=("png",)) -> Drawn:
    """Draw one registered figure: MI figures from the combined MI Dataset ``mi``,
    intervention figures from the intervention result paths."""
    if FIGURES[name].source == "mi":
        return MI_FIGURES[name](mi, out, formats)
    return INTERVENTION_FIGURES[name](list(interventions), out, formats)


__all__ = [
    "DRAW",
    "FIGURES",
    "GROUP",
    "INTERVENTION_FIGURES",
    "MI_FIGURES",
    "Drawn",
    "FigureInfo",
    "at_best",
    "caption",
    "cover_and_skip_gain",
    "draw",
    "fig1_depth_mi",
    "fig2_layer_mi",
    "fig3_concentration",
    "fig5_knockouts",
    "fig6_class_knockouts",
    "fig7_accuracy_vs_delta",
    "fig8_trajectories",
    "fig9_hsic",
    "group_datasets",
    "groups",
    "info_plane",
    "label",
    "load_runs",
    "merge_layer_orders",
    "run_keys",
    "seeds",
    "transplant_figure",
]
