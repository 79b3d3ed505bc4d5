"""Figures of the inference-time interventions (``python -m interventions`` results).

Each function takes the paths of intervention Datasets (per-run results and
``transplant-*`` pair results may be mixed), an output path without suffix (None: only
return the figure) and formats. Results are grouped by (arch, activation, regularizer),
never across activations or regularizers: a group's spread is over seeds (and draws).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from analyzer.figures.drawing import Drawn, band, bins_of, finish, new_figure
from analyzer.figures.grouping import group_datasets, group_label
from latent_mi.contract import is_transplant
from latent_mi.manifest import open_output

FORMATS = ("png", "pdf")
SEL_STYLE = {"top": ("tab:red", "-"), "random": ("tab:gray", "--"), "bottom": ("tab:blue", ":")}
DROP_RANGE = (-100.0, 100.0)  # an accuracy drop in points: baseline - accuracy, both in [0, 100]
Q_LABEL = "MI mass q of the top-MI set (random, bottom: sets of the same size)"


def open_interventions(paths) -> tuple[list[xr.Dataset], list[xr.Dataset]]:
    """(per-run results, transplant results), opened lazily."""
    runs = [open_output(p, "interventions") for p in paths if not is_transplant(p)]
    pairs = [open_output(p, "transplants") for p in paths if is_transplant(p)]
    return runs, pairs


def variant_label(variant: str) -> str:
    """Readable name of an intervention variant (noise-s: Gaussian noise of s channel sd)."""
    if variant.startswith("noise-"):
        return f"{variant}: + Gaussian noise, {variant[6:]} channel sd"
    return {
        "zero": "zero: channels set to 0",
        "energy": "energy: zeroed, others rescaled to keep the norm",
        "shuffle": "shuffle: channels permuted across samples",
    }.get(variant, variant)


def _none(title, out, formats, message) -> Drawn:
    fig, axes = new_figure(1, 1, 5.0, 2.0)
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, message, ha="center", va="center")
    return finish(fig, title, out, formats)


def fig5_knockouts(paths, out=None, formats=FORMATS) -> Drawn:
    """Accuracy drop against MI mass q at the last layer: top vs random vs bottom, per
    variant (zero, energy-preserving, shuffle, noise); mean +- sd over seeds and draws."""
    runs, _ = open_interventions(paths)
    by_group = group_datasets(runs)
    variants = [str(v) for v in runs[0].variant.values]
    fig, axes = new_figure(len(by_group), len(variants), 3.8, 3.2)
    for row, (key, group) in enumerate(by_group.items()):
        for col, variant in enumerate(variants):
            ax = axes[row, col]
            for sel, (color, ls) in SEL_STYLE.items():
                drops = [
                    float(r.baseline_accuracy)
                    - r.accuracy.isel(layer=-1).sel(variant=variant, selection=sel).values
                    for r in group
                ]  # (q, draw) each
                values = np.concatenate([d.T for d in drops])  # (seeds * draws, q)
                values = values[np.isfinite(values).any(axis=1)]
                band(
                    ax,
                    group[0].q.values,
                    values * 100,
                    limits=DROP_RANGE,
                    color=color,
                    ls=ls,
                    label=f"{sel}-MI",
                )
            ax.set_xlabel(Q_LABEL, fontsize=7)
            ax.set_ylabel("accuracy drop [points]")
            ax.set_title(
                f"{group_label(key, group)}\n{group[0].layer.values[-1]}: {variant_label(variant)}",
                fontsize=7,
            )
            ax.legend(fontsize=7)
    return finish(
        fig,
        f"Fig 5: knockouts, shuffles, perturbations of MI-ranked channels, last layer "
        f"({bins_of(*runs)}; mean +- sd over seeds and draws)",
        out,
        formats,
    )


def fig6_class_knockouts(paths, out=None, formats=FORMATS) -> Drawn:
    """Class-targeted knockouts at the last layer: drop of class k's accuracy per class,
    channels ranked by I(T_lc; 1[Y=k]); bars mean, error bars sd over seeds and draws."""
    runs, _ = open_interventions(paths)
    by_group = group_datasets(runs)
    qs = runs[0].class_q.values
    n_labels = runs[0].sizes["label"]
    fig, axes = new_figure(len(by_group), len(qs), max(4.5, 0.45 * n_labels), 3.2)
    width = 0.27
    for row, (key, group) in enumerate(by_group.items()):
        for col, q in enumerate(qs):
            ax = axes[row, col]
            for i, sel in enumerate(SEL_STYLE):
                drops = np.stack(
                    [
                        (
                            r.class_baseline
                            - r.class_accuracy.isel(layer=-1).sel(class_q=q, selection=sel)
                        ).values.T
                        for r in group
                    ]
                )  # (seed, draw, label)
                drops = drops.reshape(-1, n_labels) * 100
                drops = drops[np.isfinite(drops).any(axis=1)]
                mean, sd = np.nanmean(drops, axis=0), np.nanstd(drops, axis=0)
                lo, hi = np.clip(mean - sd, *DROP_RANGE), np.clip(mean + sd, *DROP_RANGE)
                ax.bar(
                    np.arange(n_labels) + (i - 1) * width,
                    mean,
                    width,
                    yerr=np.stack([mean - lo, hi - mean]) if drops.shape[0] > 1 else None,
                    capsize=1.5,
                    error_kw={"lw": 0.6},
                    color=SEL_STYLE[sel][0],
                    label=f"{sel}-MI",
                )
            ax.set_xticks(np.arange(n_labels), [str(k) for k in group[0].label.values])
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xlabel("class k")
            ax.set_ylabel("class-k accuracy drop [points]")
            ax.set_title(f"{group_label(key, group)}: q = {q:g}", fontsize=7)
            ax.legend(fontsize=7)
    return finish(
        fig,
        f"Fig 6: class-targeted knockouts, last layer ({bins_of(*runs)}; "
        "mean, error bar sd over seeds and draws)",
        out,
        formats,
    )


def transplant_figure(paths, out=None, formats=FORMATS) -> Drawn:
    """Recipient accuracy drop after transplanting the donor's channels (last layer)."""
    _, pairs = open_interventions(paths)
    if not pairs:
        return _none("Transplants", out, formats, "no transplant results")
    by_group = group_datasets(pairs)
    fig, axes = new_figure(1, len(by_group), 4.5, 3.5)
    for col, (key, group) in enumerate(by_group.items()):
        ax = axes[0, col]
        for sel, (color, ls) in SEL_STYLE.items():
            values = np.concatenate(
                [
                    (
                        float(p.recipient_baseline)
                        - p.transplant_accuracy.isel(layer=-1).sel(selection=sel)
                    ).values.T
                    for p in group
                ]
            )
            values = values[np.isfinite(values).any(axis=1)]
            band(
                ax,
                group[0].q.values,
                values * 100,
                limits=DROP_RANGE,
                color=color,
                ls=ls,
                label=f"{sel}-MI",
            )
        ax.set_xlabel("donor MI mass q transplanted (random, bottom: same size)", fontsize=7)
        ax.set_ylabel("recipient accuracy drop [points]")
        ax.set_title(f"donor {group_label(key, group)} -> next seed", fontsize=7)
        ax.legend(fontsize=7)
    return finish(
        fig,
        f"Transplants of MI-ranked channels into another seed, last layer ({bins_of(*pairs)})",
        out,
        formats,
    )


def cover_and_skip_gain(paths, out=None, formats=FORMATS) -> Drawn:
    """Left: knockout of the minimal MI cover vs a redundant MI-matched set (``cover_*``,
    ``redundant_*``). Right: ResNet accuracy against the identity-path gain
    (``skip_gain_accuracy``). One line per group, mean +- sd over seeds."""
    runs, _ = open_interventions(paths)
    by_group = group_datasets(runs)
    fig, axes = new_figure(1, 2, 5.0, 3.8)
    ax = axes[0, 0]
    for key, members in by_group.items():
        group = [r for r in members if "cover_accuracy" in r]
        if not group:
            continue
        for var, ls in (("cover_accuracy", "-"), ("redundant_accuracy", "--")):
            drops = np.stack(
                [float(r.baseline_accuracy) - r[var].isel(cover_layer=-1).values for r in group]
            )
            band(
                ax,
                group[0].cover_q.values,
                drops * 100,
                limits=DROP_RANGE,
                ls=ls,
                label=f"{group_label(key, group)}: {var.split('_')[0]}",
            )
    ax.set_xlabel("MI mass q removed")
    ax.set_ylabel("accuracy drop [points]")
    ax.set_title("minimal MI cover vs redundant MI-matched set", fontsize=8)
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    for key, members in by_group.items():
        group = [r for r in members if "skip_gain_accuracy" in r]
        if group:
            band(
                ax,
                group[0].gain.values,
                np.stack([r.skip_gain_accuracy.values for r in group]) * 100,
                limits=(0.0, 100.0),
                label=group_label(key, group),
            )
    ax.set_xlabel("identity-path gain g (1 = trained network)")
    ax.set_ylabel("validation accuracy [%]")
    ax.set_title("ResNet skip-gain sweep", fontsize=8)
    ax.legend(fontsize=6)
    return finish(
        fig,
        f"Redundancy (minimal cover) and skip connections ({bins_of(*runs)}, mean +- sd over seeds)",
        out,
        formats,
    )


INTERVENTION_FIGURES = {
    "cover_and_skip_gain": cover_and_skip_gain,
    "fig5_knockouts": fig5_knockouts,
    "fig6_class_knockouts": fig6_class_knockouts,
    "transplants": transplant_figure,
}
