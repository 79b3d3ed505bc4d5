"""What the findings rest on: per (arch, activation) group, the data and the training outcome.

A verdict pooled over VGG and ResNet, ReLU and tanh runs treats them as repeats of one
experiment; :func:`group_findings` gives the MI findings per group as well, and
:func:`outcome_rows` states each group's dataset, width, epochs and best validation accuracy
against chance (1 / number of classes), flagging a group whose nets did not learn.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import xarray as xr

from analyzer.report.findings import Finding, mi_findings, summary_of

LEARNED_FACTOR = 1.5  # a group "did not learn" when its best val. accuracy < 1.5 x chance


def _key(ds: xr.Dataset) -> tuple[str, str]:
    return str(ds.arch.values), str(ds.activation.values)


def by_group(mi: list[xr.Dataset]) -> dict[tuple[str, str], list[xr.Dataset]]:
    """MI Datasets keyed by (arch, activation), in first-seen order."""
    out: dict[tuple[str, str], list[xr.Dataset]] = defaultdict(list)
    for ds in mi:
        out[_key(ds)].append(ds)
    return dict(out)


def chance(ds: xr.Dataset) -> float | None:
    """1 / number of classes (the ``label`` dim), None when unknown."""
    n = ds.sizes.get("label", 0)
    return 1.0 / n if n else None


def _field(ds: xr.Dataset, name: str) -> str:
    if name in ds.coords:
        return str(ds[name].values)
    return str(ds.attrs.get(name, "n/a"))


def outcome_rows(mi: list[xr.Dataset]) -> list[dict]:
    """One row per (arch, activation): dataset, width, runs, epochs, best val. accuracy, chance."""
    rows = []
    for (arch, act), runs in by_group(mi).items():
        best = [float(np.nanmax(ds.val_acc.values)) for ds in runs]
        c = chance(runs[0])
        rows.append(
            dict(
                arch=arch,
                activation=act,
                dataset=", ".join(sorted({_field(ds, "dataset") for ds in runs})),
                width=", ".join(sorted({_field(ds, "width") for ds in runs})),
                runs=len(runs),
                epochs=max(int(ds.sizes["epoch"]) - 1 for ds in runs),
                best_val_acc=float(np.mean(best)),
                chance=c,
                learned=c is None or max(best) >= min(1.0, LEARNED_FACTOR * c),
            )
        )
    return rows


def group_findings(mi: list[xr.Dataset]) -> dict[tuple[str, str], list[Finding]]:
    """The MI findings measured within each (arch, activation) group alone."""
    return {k: mi_findings([summary_of(ds) for ds in v]) for k, v in by_group(mi).items()}


def markdown(mi: list[xr.Dataset]) -> list[str]:
    """Markdown lines: the training outcome table, warnings, and per-group verdicts."""
    rows = outcome_rows(mi)
    lines = [
        "## Data and training outcome",
        "",
        "| arch | activation | dataset | width | runs | epochs | best val. acc. | chance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ch = "n/a" if r["chance"] is None else f"{r['chance']:.3f}"
        lines.append(
            f"| {r['arch']} | {r['activation']} | {r['dataset']} | {r['width']} | {r['runs']} | "
            f"{r['epochs']} | {r['best_val_acc']:.3f} | {ch} |"
        )
    lines.append("")
    for r in rows:
        if not r["learned"]:
            lines.append(
                f"**Warning:** {r['arch']}/{r['activation']} did not learn (best validation "
                f"accuracy {r['best_val_acc']:.3f}, chance {r['chance']:.3f}); its findings "
                "say nothing about trained networks."
            )
    lines += ["", "## Per (arch, activation) group", ""]
    lines += ["| group | finding | verdict | statistic | 95% interval | n |", "| --- " * 6 + "|"]
    for (arch, act), found in group_findings(mi).items():
        for f in found:
            iv = "n/a" if f.interval is None else f"[{f.interval[0]:+.3g}, {f.interval[1]:+.3g}]"
            stat = "n/a" if f.statistic is None else f"{f.statistic:+.3g}"
            lines.append(
                f"| {arch}/{act} | `{f.id}` | **{f.verdict}** | {stat} | {iv} | {f.runs} |"
            )
    return lines + [""]
