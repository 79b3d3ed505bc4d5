"""The paper's figures from MI Datasets combined along ``run`` (matplotlib, no torch).

Every figure shows the mean over seeds with a band of +-1 standard deviation, one line
(or panel) per (arch, activation, regularizer) group; "trained" is each run's
best-validation-accuracy epoch, "random" its epoch 0 (initialization).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["figure.constrained_layout.use"] = True
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from latent_mi import contract as C  # noqa: E402

GROUP = ("arch", "activation", "regularizer")


def _object_strings(ds: xr.Dataset) -> xr.Dataset:
    """Zarr v3 strings load as numpy StringDType, which cannot be NaN-padded: use object."""
    conv = {
        name: xr.Variable(var.dims, np.asarray(var.values, dtype=object), var.attrs)
        for name, var in ds.variables.items()
        if var.dtype.kind == "T"
    }
    return ds.assign_coords({k: v for k, v in conv.items() if k in ds.coords}).assign(
        {k: v for k, v in conv.items() if k not in ds.coords}
    )


def load_runs(paths: list[str | Path]) -> xr.Dataset:
    """Open MI Datasets and concatenate them along ``run``.

    Runs of different architectures have different layers: the union is taken (NaN where
    a run has no such layer); :func:`groups` restores each group's depth order.
    """
    parts = [_object_strings(xr.open_zarr(p)) for p in paths]
    return xr.concat(
        parts,
        dim="run",
        coords="different",
        compat="equals",
        join="outer",
        combine_attrs="drop_conflicts",
    )


def groups(ds: xr.Dataset, regularizer: str | None = "none") -> dict[tuple, xr.Dataset]:
    """Runs grouped by (arch, activation, regularizer), with unused layers dropped."""
    out = {}
    per_run = {
        k: np.broadcast_to(ds[k].values, (ds.sizes["run"],)) for k in GROUP
    }  # scalar if shared
    keys = [tuple(str(per_run[k][i]) for k in GROUP) for i in range(ds.sizes["run"])]
    for key in dict.fromkeys(keys):
        if regularizer is not None and key[2] != regularizer:
            continue
        idx = [i for i, k in enumerate(keys) if k == key]
        sub = ds.isel(run=idx)
        depth = sub.depth.isel(run=0) if "run" in sub.depth.dims else sub.depth
        layers = [name for name in sub.layer.values if np.isfinite(depth.sel(layer=name).values)]
        layers.sort(key=lambda name: float(depth.sel(layer=name)))
        out[key] = sub.sel(layer=layers, layer_b=layers)
    return out


def at_best(da: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """Select each run's best-validation-accuracy epoch (:func:`latent_mi.contract.best_epoch`)."""
    best = xr.apply_ufunc(
        C.best_epoch, ds.val_acc.compute(), input_core_dims=[["epoch"]], vectorize=True
    )
    return da.isel(epoch=best)


def label(key: tuple) -> str:
    arch, act, reg = key
    return f"{arch} {act}" + ("" if reg == "none" else f" +{reg}")


def _band(ax, x, values, **kw):
    """Mean line and +-1 std band over the first axis (seeds)."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    mean, sd = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    (line,) = ax.plot(x, mean, marker="o", ms=3, **kw)
    if values.shape[0] > 1:
        ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
    return line


def _save(fig, out: Path, formats) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=130)
        written.append(path)
    plt.close(fig)
    return written


def fig1_depth_mi(ds, out, formats=("png", "pdf")):
    """Label MI and input MI against depth, trained (best epoch) against random (epoch 0)."""
    gs = groups(ds)
    fig, axes = plt.subplots(2, len(gs), figsize=(4.2 * len(gs), 6.5), squeeze=False)
    for col, (key, g) in enumerate(gs.items()):
        depth = np.arange(g.sizes["layer"])
        for row, var in enumerate(("label_mi", "input_mi")):
            ax = axes[row, col]
            _band(ax, depth, at_best(g[var], g).values, label="trained (best epoch)")
            _band(ax, depth, g[var].isel(epoch=0).values, label="random (epoch 0)", ls="--")
            ax.set_xlabel("depth (measurement site)")
            ax.set_ylabel(
                ("I(T;Y)" if row == 0 else "I(X;T) = H(Bin T)") + " [nat], mean over channels"
            )
            ax.set_title(label(key))
            ax.legend(fontsize=7)
    fig.suptitle("Fig 1: layer-label and input MI against depth (mean +- sd over seeds)")
    return _save(fig, Path(out), formats)


def fig2_layer_mi(ds, out, formats=("png", "pdf")):
    """Layer-layer MI heatmaps, trained against random (mean over seeds)."""
    gs = groups(ds)
    fig, axes = plt.subplots(len(gs), 2, figsize=(9, 4 * len(gs)), squeeze=False)
    for row, (key, g) in enumerate(gs.items()):
        trained = at_best(g.layer_mi, g).mean("run").values
        random = g.layer_mi.isel(epoch=0).mean("run").values
        vmax = np.nanmax([trained, random])
        for col, (mat, name) in enumerate(((trained, "trained"), (random, "random"))):
            ax = axes[row, col]
            im = ax.imshow(mat, vmin=0, vmax=vmax, cmap="viridis")
            ax.set_title(f"{label(key)}: {name}")
            ax.set_xlabel("layer (depth)")
            ax.set_ylabel("layer (depth)")
            fig.colorbar(im, ax=ax, label="mean channel-pair MI [nat]")
    fig.suptitle("Fig 2: layer-layer MI")
    return _save(fig, Path(out), formats)


def fig3_concentration(ds, out, formats=("png", "pdf"), k=10.0):
    """Gini, Top-k% share and normalized entropy of channel-label MI against depth."""
    gs = groups(ds)
    fig, axes = plt.subplots(3, len(gs), figsize=(4.2 * len(gs), 9), squeeze=False)
    for col, (key, g) in enumerate(gs.items()):
        depth = np.arange(g.sizes["layer"])
        series = (
            ("gini", g.gini, "Gini"),
            ("topk", g.topk_share.sel(k=k, method="nearest"), f"Top-{k:g}% share"),
            ("norm_entropy", g.norm_entropy, "normalized entropy"),
        )
        for row, (_, da, name) in enumerate(series):
            ax = axes[row, col]
            _band(ax, depth, at_best(da, g).values, label="trained")
            _band(ax, depth, da.isel(epoch=0).values, label="random", ls="--")
            ax.set_ylabel(f"{name} (dimensionless)")
            ax.set_xlabel("depth (measurement site)")
            ax.set_title(label(key))
            ax.legend(fontsize=7)
    fig.suptitle("Fig 3/4: concentration of channel-label MI within layers")
    return _save(fig, Path(out), formats)


def fig7_accuracy_vs_delta(ds, out, formats=("png", "pdf")):
    """Best validation accuracy against dI(X;T) (best - init, final third of layers)."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    markers = {"vgg16": "o", "resnet18": "s", "resnet50": "^"}
    colors = {"relu": "tab:blue", "tanh": "tab:orange"}
    seen = set()
    for i in range(ds.sizes["run"]):
        run = ds.isel(run=i)
        arch, act = str(run.arch.values), str(run.activation.values)
        name = f"{arch} {act}"
        ax.scatter(
            float(run.delta_input_mi),
            float(run.val_acc.max()) * 100,
            marker=markers.get(arch, "x"),
            color=colors.get(act, "gray"),
            label=None if name in seen else name,
        )
        seen.add(name)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("dI(X;T) [nat]: best epoch - initialization, final third of layers")
    ax.set_ylabel("best validation accuracy [%]")
    ax.legend(fontsize=8)
    ax.set_title("Fig 7: accuracy against input-MI change")
    return _save(fig, Path(out), formats)


def fig8_trajectories(ds, out, formats=("png", "pdf")):
    """I(X;T) over epochs for the final third of layers, with post-plateau slope fits."""
    gs = groups(ds)
    fig, axes = plt.subplots(1, len(gs), figsize=(4.5 * len(gs), 4), squeeze=False)
    for col, (key, g) in enumerate(gs.items()):
        ax = axes[0, col]
        run = g.isel(run=0)
        epochs = run.epoch.values
        for layer in C.final_third(run.layer.values):
            y = run.input_mi.sel(layer=layer).values
            (line,) = ax.plot(epochs, y, lw=1, label=str(layer))
            p0 = int(run.plateau_epoch.sel(layer=layer))
            slope = float(run.post_plateau_slope.sel(layer=layer))
            if p0 >= 0 and np.isfinite(slope):
                sel = epochs >= p0
                intercept = np.mean(y[sel]) - slope * np.mean(epochs[sel])
                ax.plot(
                    epochs[sel], intercept + slope * epochs[sel], ls=":", color=line.get_color()
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel("I(X;T) [nat]")
        ax.set_title(f"{label(key)} seed {int(run.seed)}")
        ax.legend(fontsize=6)
    fig.suptitle("Fig 8: I(X;T) trajectories, dotted: post-plateau slope (nat/epoch)")
    return _save(fig, Path(out), formats)


def info_plane(ds, out, formats=("png", "pdf")):
    """Information plane (seeds/003): I(X;T) against I(T;Y) per layer, coloured by epoch."""
    gs = groups(ds, regularizer=None)
    fig, axes = plt.subplots(1, len(gs), figsize=(4.5 * len(gs), 4), squeeze=False)
    for col, (key, g) in enumerate(gs.items()):
        ax = axes[0, col]
        run = g.isel(run=0)
        epochs = run.epoch.values
        for layer in run.layer.values:
            x, y = run.input_mi.sel(layer=layer).values, run.label_mi.sel(layer=layer).values
            ax.plot(x, y, color="0.8", lw=0.6, zorder=1)
            sc = ax.scatter(x, y, c=epochs, cmap="viridis", s=8, zorder=2)
        fig.colorbar(sc, ax=ax, label="epoch")
        ax.set_xlabel("I(X;T) [nat]")
        ax.set_ylabel("I(T;Y) [nat]")
        ax.set_title(f"{label(key)} seed {int(run.seed)}")
    fig.suptitle("Information plane: every layer, coloured by epoch")
    return _save(fig, Path(out), formats)


def fig9_hsic(ds, out, formats=("png", "pdf")):
    """Validation accuracy and loss curves, CE against CE+HSIC, per (arch, activation)."""
    gs = groups(ds, regularizer=None)
    pairs = sorted({key[:2] for key in gs})
    fig, axes = plt.subplots(
        2, max(1, len(pairs)), figsize=(4.5 * max(1, len(pairs)), 7), squeeze=False
    )
    for col, base in enumerate(pairs):
        for reg, ls in (("none", "--"), ("hsic", "-")):
            g = gs.get((*base, reg))
            if g is None:
                continue
            for row, var in enumerate(("val_acc", "val_loss")):
                _band(
                    axes[row, col],
                    g.epoch.values,
                    g[var].values,
                    ls=ls,
                    label="CE" if reg == "none" else "CE+HSIC",
                )
        axes[0, col].set_title(" ".join(base))
        axes[0, col].set_ylabel("validation accuracy")
        axes[1, col].set_ylabel("validation loss [nat]")
        for row in range(2):
            axes[row, col].set_xlabel("epoch")
            axes[row, col].legend(fontsize=7)
    fig.suptitle("Fig 9: HSIC regularization, mean +- sd over seeds")
    return _save(fig, Path(out), formats)


MI_FIGURES = {
    "fig1_depth_mi": fig1_depth_mi,
    "fig2_layer_mi": fig2_layer_mi,
    "fig3_concentration": fig3_concentration,
    "fig7_accuracy_vs_delta_input_mi": fig7_accuracy_vs_delta,
    "fig8_input_mi_trajectories": fig8_trajectories,
    "info_plane": info_plane,
    "fig9_hsic": fig9_hsic,
}


# ---------------------------------------------------------------- interventions
def _open_interventions(paths):
    runs = [xr.open_zarr(p) for p in paths if not C.is_transplant(p)]
    pairs = [xr.open_zarr(p) for p in paths if C.is_transplant(p)]
    return runs, pairs


def _by_arch(datasets) -> dict[str, list]:
    """Intervention Datasets grouped by architecture, archs sorted."""
    groups: dict[str, list] = {}
    for d in datasets:
        groups.setdefault(str(d.arch.values), []).append(d)
    return dict(sorted(groups.items()))


SEL_STYLE = {"top": ("tab:red", "-"), "random": ("tab:gray", "--"), "bottom": ("tab:blue", ":")}


def fig5_knockouts(paths, out, formats=("png", "pdf")):
    """Accuracy drop against MI mass q at the last layer: top vs random vs bottom, plain vs
    energy-preserving (and shuffle / noise), per arch; mean +- sd over seeds and draws."""
    runs, _ = _open_interventions(paths)
    by_arch = _by_arch(runs)
    variants = list(runs[0].variant.values)
    fig, axes = plt.subplots(
        len(by_arch),
        len(variants),
        figsize=(3.6 * len(variants), 3.2 * len(by_arch)),
        squeeze=False,
    )
    for row, (arch, group) in enumerate(by_arch.items()):
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
                _band(ax, group[0].q.values, values * 100, color=color, ls=ls, label=f"{sel}-MI")
            ax.set_xlabel("MI mass q removed")
            ax.set_ylabel("accuracy drop [points]")
            ax.set_title(f"{arch}, {group[0].layer.values[-1]}: {variant}", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle("Fig 5: knockouts / shuffles / perturbations of MI-ranked channels (last layer)")
    return _save(fig, Path(out), formats)


def fig6_class_knockouts(paths, out, formats=("png", "pdf")):
    """Class-targeted knockouts at the last layer: drop of class k's accuracy per class."""
    runs, _ = _open_interventions(paths)
    by_arch = _by_arch(runs)
    qs = runs[0].class_q.values
    fig, axes = plt.subplots(
        len(by_arch), len(qs), figsize=(4.5 * len(qs), 3.2 * len(by_arch)), squeeze=False
    )
    for row, (arch, group) in enumerate(by_arch.items()):
        for col, q in enumerate(qs):
            ax = axes[row, col]
            n_labels = group[0].sizes["label"]
            width = 0.27
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
                mean = np.nanmean(drops, axis=0)
                ax.bar(
                    np.arange(n_labels) + (i - 1) * width,
                    mean,
                    width,
                    color=SEL_STYLE[sel][0],
                    label=f"{sel}-MI",
                )
            ax.set_xlabel("class k")
            ax.set_ylabel("class-k accuracy drop [points]")
            ax.set_title(f"{arch}: q = {q:g}", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle("Fig 6: class-targeted knockouts (last layer), mean over seeds and draws")
    return _save(fig, Path(out), formats)


def transplant_figure(paths, out, formats=("png", "pdf")):
    """Recipient accuracy drop after transplanting the donor's channels (last layer)."""
    _, pairs = _open_interventions(paths)
    by_arch = _by_arch(pairs)
    fig, axes = plt.subplots(1, len(by_arch), figsize=(4.5 * len(by_arch), 3.5), squeeze=False)
    for col, (arch, group) in enumerate(by_arch.items()):
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
            _band(ax, group[0].q.values, values * 100, color=color, ls=ls, label=f"{sel}-MI")
        ax.set_xlabel("donor MI mass q transplanted")
        ax.set_ylabel("recipient accuracy drop [points]")
        ax.set_title(f"{arch}: transplants into another seed", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Transplants of MI-ranked channels (last layer)")
    return _save(fig, Path(out), formats)


def cover_and_skip_gain(paths, out, formats=("png", "pdf")):
    """Minimal MI cover vs redundant MI-matched knockouts (appendix D), and the ResNet
    skip-gain sweep (appendix A); mean +- sd over seeds."""
    runs, _ = _open_interventions(paths)
    by_arch = _by_arch(runs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
    ax = axes[0, 0]
    for arch, runs_of_arch in by_arch.items():
        group = [r for r in runs_of_arch if "cover_accuracy" in r]
        if not group:
            continue
        q = group[0].cover_q.values
        for var, ls in (("cover_accuracy", "-"), ("redundant_accuracy", "--")):
            drops = np.stack(
                [float(r.baseline_accuracy) - r[var].isel(cover_layer=-1).values for r in group]
            )
            _band(ax, q, drops * 100, ls=ls, label=f"{arch}: {var.split('_')[0]}")
    ax.set_xlabel("MI mass q removed")
    ax.set_ylabel("accuracy drop [points]")
    ax.set_title("minimal MI cover vs redundant MI-matched set", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for arch, runs_of_arch in by_arch.items():
        group = [r for r in runs_of_arch if "skip_gain_accuracy" in r]
        if group:
            _band(
                ax,
                group[0].gain.values,
                np.stack([r.skip_gain_accuracy.values for r in group]) * 100,
                label=arch,
            )
    ax.set_xlabel("identity-path gain g")
    ax.set_ylabel("validation accuracy [%]")
    ax.set_title("ResNet skip-gain sweep", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("Redundancy (appendix D) and skip connections (appendix A)")
    return _save(fig, Path(out), formats)


INTERVENTION_FIGURES = {
    "cover_and_skip_gain": cover_and_skip_gain,
    "fig5_knockouts": fig5_knockouts,
    "fig6_class_knockouts": fig6_class_knockouts,
    "transplants": transplant_figure,
}
