"""The paper's figures from MI Datasets and intervention results (matplotlib, no torch).

Importing this package changes no global matplotlib state (no backend, no rcParams):
figures are drawn on ``matplotlib.figure.Figure`` objects, so Jupyter's inline backend
keeps working. Modules: ``loading`` (combine runs, depth order), ``grouping`` ((arch,
activation, regularizer) groups, seeds as the spread), ``mi`` and ``interventions`` (the
figures), ``captions`` (the registry of figures), ``cli`` (``python -m analyzer.figures``).
Names load lazily, so the workflow reads the registry without importing matplotlib.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "captions": ("FIGURES", "FigureInfo", "caption", "names"),
    "depth": ("site_kinds",),
    "drawing": ("Drawn",),
    "grouping": ("GROUP", "at_best", "group_datasets", "groups", "label", "run_keys", "seeds"),
    "interventions": (
        "INTERVENTION_FIGURES",
        "cover_and_skip_gain",
        "fig5_knockouts",
        "fig6_class_knockouts",
        "transplant_figure",
    ),
    "loading": ("load_runs", "merge_layer_orders"),
    "mi": (
        "MI_FIGURES",
        "fig1_depth_mi",
        "fig2_layer_mi",
        "fig3_concentration",
        "fig7_accuracy_vs_delta",
        "fig8_trajectories",
        "fig9_hsic",
        "info_plane",
    ),
    "twelve_bit": ("TWELVE_BIT_FIGURES",),
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}
__all__ = ["DRAW", "draw", *_MODULE]


def __getattr__(name: str):
    if name in _MODULE:
        return getattr(importlib.import_module(f".{_MODULE[name]}", __name__), name)
    if name == "DRAW":
        return {
            **__getattr__("MI_FIGURES"),
            **__getattr__("INTERVENTION_FIGURES"),
            **__getattr__("TWELVE_BIT_FIGURES"),
        }
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def draw(name: str, mi=None, interventions=(), out=None, formats=("png",)):
    """Draw one registered figure: MI figures from the combined MI Dataset ``mi``,
    intervention figures from the intervention result paths. Returns a ``Drawn``."""
    from analyzer.figures.captions import FIGURES

    if FIGURES[name].source == "mi":
        return __getattr__("MI_FIGURES")[name](mi, out, formats)
    if (
        FIGURES[name].source == "twelve_bit"
    ):  # twelve_bit_mlp runs' MI Datasets (analyzer/figures/twelve_bit.py)
        return __getattr__("TWELVE_BIT_FIGURES")[name](mi, out, formats)
    return __getattr__("INTERVENTION_FIGURES")[name](list(interventions), out, formats)
