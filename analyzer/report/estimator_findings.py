"""Under which MI estimators each label-MI finding holds (issue 22).

The label-MI findings (``findings.mi_findings``: label MI rises with depth, trained above
random) are measured once per estimator whose layer-level label MI the MI Datasets carry
(``analyzer/estimators.py``; ``mi.estimators``), with the same statistic and verdict rule
as the findings report. The histogram's statistic is bias-corrected by its exact
label-permutation null; the other estimators have no such null in the Dataset and are
used as they are (their bias on known tasks: the README ground-truth table). A finding
that holds under one estimator only is a property of that estimator until shown otherwise.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from analyzer.report.findings import Finding, mi_findings, summary_of

# (estimator as reported, the layer-level label-MI variable of the MI Dataset)
VIEWS = (
    ("histogram", "label_mi"),
    ("kNN", "label_mi_knn"),
    ("kNN on PCs", "label_mi_knn_pca"),
    ("Gaussian", "label_mi_gaussian"),
    ("Gaussian on PCs", "label_mi_gaussian_pca"),
    ("probe", "label_mi_probe"),
)
LABEL_FINDINGS = ("label_mi_rises_with_depth", "trained_above_random")
ORDER = ("reproduced", "contradicted", "inconclusive", "not measured")


def present(mi: list[xr.Dataset]) -> list[tuple[str, str]]:
    """The VIEWS whose variable every MI Dataset carries."""
    return [(name, var) for name, var in VIEWS if mi and all(var in ds for ds in mi)]


def _summary(ds: xr.Dataset, var: str):
    s = summary_of(ds)
    if var != "label_mi":  # no permutation null for this estimator: used as it is
        s.label_mi = ds[var].values.astype(np.float64)
        s.label_mi_null = np.zeros_like(s.label_mi)
        s.has_null = True
    return s


def by_estimator(mi: list[xr.Dataset]) -> dict[str, dict[str, Finding]]:
    """finding id -> estimator -> Finding, for the label-MI findings and present estimators."""
    out: dict[str, dict[str, Finding]] = {fid: {} for fid in LABEL_FINDINGS}
    for name, var in present(mi):
        for f in mi_findings([_summary(ds, var) for ds in mi]):
            if f.id in out:
                out[f.id][name] = f
    return out


def sentence(claim: str, per_estimator: dict[str, Finding]) -> str:
    """'<claim>: reproduced under histogram and kNN; inconclusive under Gaussian'."""
    parts = []
    for word in ORDER:
        names = [n for n, f in per_estimator.items() if f.verdict == word]
        if names:
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            parts.append(f"{word} under {listed}")
    return f"{claim}: " + "; ".join(parts)


def _clean(x):
    """JSON-safe: NaN -> None, numpy scalars -> float, lists element-wise."""
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if x is None or isinstance(x, (str, int)):
        return x
    return None if np.isnan(x) else float(x)


def as_json(found: dict[str, dict[str, Finding]]) -> dict:
    """{finding id: {estimator: {verdict, statistic, interval, runs}}} (strict JSON)."""
    keys = ("verdict", "statistic", "interval", "runs")
    return {
        fid: {name: {k: _clean(getattr(f, k)) for k in keys} for name, f in per.items()}
        for fid, per in found.items()
    }


def markdown(mi: list[xr.Dataset]) -> list[str]:
    """Markdown lines of the per-estimator section; [] when the Datasets carry only the
    histogram (the default run's report is unchanged)."""
    if len(present(mi)) < 2:
        return []
    found = by_estimator(mi)
    lines = ["## Findings per estimator", ""]
    lines += [f"- {sentence(next(iter(per.values())).claim, per)}." for per in found.values()]
    lines += [
        "",
        "Histogram: bias-corrected by its label-permutation null; other estimators as they "
        "are (their bias on tasks with known MI: README, 'Estimators beyond the histogram').",
        "",
        "| finding | estimator | verdict | statistic | 95% interval | runs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fid, per in found.items():
        for name, f in per.items():
            iv = "n/a" if f.interval is None else f"[{f.interval[0]:+.3g}, {f.interval[1]:+.3g}]"
            stat = "n/a" if f.statistic is None else f"{f.statistic:+.3g}"
            lines.append(f"| `{fid}` | {name} | **{f.verdict}** | {stat} | {iv} | {f.runs} |")
    return lines + [""]
