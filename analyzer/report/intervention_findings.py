"""Findings from intervention results (knockouts, class knockouts, transplants).

Reads the Zarr results of ``python -m interventions``: ``accuracy(layer, q, selection,
variant, draw)`` with ``baseline_accuracy``; ``class_accuracy(layer, q, selection, label,
draw)``; transplants ``transplant_accuracy(layer, q, selection, draw)`` with
``recipient_baseline``. Top and bottom selections are deterministic (draw 0); random ones are
averaged over their draws. Each per-run statistic averages over the result's layers and q levels.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from analyzer.report.findings import Finding, _finding


def _selection(da: xr.DataArray, kind: str) -> np.ndarray:
    """Accuracy of one selection, averaged over draws (NaN draws skipped)."""
    sel = da.sel(selection=kind)
    with np.errstate(invalid="ignore"):
        return np.nanmean(sel.values, axis=sel.dims.index("draw"))


def extra_drop(da: xr.DataArray, top: str, other: str) -> float:
    """Mean over the remaining cells of acc(other) - acc(top): how much more ``top`` hurts."""
    diff = _selection(da, other) - _selection(da, top)
    return float(np.nanmean(diff)) if np.isfinite(diff).any() else np.nan


def knockout_findings(results: list[xr.Dataset]) -> list[Finding]:
    """Top-MI knockouts vs random and bottom (zeroing), energy-preserving, and per class."""
    glob = [r for r in results if "accuracy" in r]
    cls = [r for r in results if "class_accuracy" in r]

    def zero(r, variant):
        return r.accuracy.sel(variant=variant) if variant in r.variant.values else None

    specs = (
        (
            "knockout_top_vs_random",
            "Knocking out top-MI channels hurts more than random ones",
            "zero",
            "random",
        ),
        (
            "knockout_top_vs_bottom",
            "Knocking out top-MI channels hurts more than bottom-MI ones",
            "zero",
            "bottom",
        ),
        (
            "knockout_energy_preserving",
            "Top-MI knockouts hurt more than random also with an energy-preserving rescale",
            "energy",
            "random",
        ),
    )
    out = []
    for fid, claim, variant, other in specs:
        values = [
            extra_drop(zero(r, variant), "top", other) for r in glob if zero(r, variant) is not None
        ]
        out.append(
            _finding(
                fid,
                claim,
                values,
                0.0,
                "accuracy",
                f"accuracy after a size-matched {other} knockout minus after the top-MI knockout "
                f"({variant} variant), mean over knocked-out layers and MI-mass levels q",
            )
        )
    out.append(
        _finding(
            "knockout_per_class",
            "Class-targeted top-MI knockouts hurt that class more than random ones",
            [extra_drop(r.class_accuracy, "top", "random") for r in cls],
            0.0,
            "accuracy",
            "class-k accuracy after a random knockout minus after the top I(T_c;1[Y=k]) knockout, "
            "mean over classes, layers and q",
        )
    )
    return out


def transplant_finding(results: list[xr.Dataset]) -> Finding:
    """Transplanted top-MI channels do not transfer: the recipient loses accuracy."""
    values = []
    for r in results:
        top = _selection(r.transplant_accuracy, "top")
        values.append(float(r.recipient_baseline) - float(np.nanmean(top)))
    return _finding(
        "transplants_do_not_transfer",
        "Top-MI channels transplanted into another seed's model do not transfer",
        values,
        0.0,
        "accuracy",
        "recipient accuracy before minus after receiving the donor's top-MI channels, mean over "
        "layers and q (positive: the channels do not carry over)",
    )
