"""``python -m analyzer.report.findings_report``: the findings report (JSON + Markdown) of one bin count.

    python -m analyzer.report.findings_report --mi results/mi/bins-20/*.zarr \\
        --interventions results/interventions/bins-20/*.zarr --out results/findings/bins-20

writes ``OUT.json`` = ``{"findings": [{"id", "claim", "verdict", "statistic", "interval",
"null", "runs"}, ...]}`` and ``OUT.md`` (the same, with how each statistic is computed).
Intervention results are recognised by their variables (``transplant_accuracy`` marks a
transplant). Both files are written to temporary siblings and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import xarray as xr

from analyzer.report import estimator_findings, groups
from analyzer.report.findings import KEYS as KEYS_ORDER  # noqa: F401  (re-exported: the JSON keys)
from analyzer.report.findings import Finding, hsic_finding, mi_findings, plain, summary_of
from analyzer.report.intervention_findings import knockout_findings, transplant_finding
from latent_mi import contract as C
from latent_mi.manifest import open_output
from latent_mi.outputs import OutputError, safe_output
from latent_mi.settings import plain_text


def is_transplant(ds: xr.Dataset, path=None) -> bool:
    """By name (``latent_mi.contract.is_transplant``) when the path is known, else by content."""
    return C.is_transplant(path) if path is not None else "transplant_accuracy" in ds


def measure(mi: list[xr.Dataset], interventions: list[xr.Dataset], paths=None) -> list[Finding]:
    """Every finding from MI Datasets (one per run) and intervention results (``paths``: theirs)."""
    runs = [summary_of(ds) for ds in mi]
    paths = paths or [None] * len(interventions)
    kinds = [is_transplant(r, p) for r, p in zip(interventions, paths, strict=True)]
    transplants = [r for r, t in zip(interventions, kinds, strict=True) if t]
    others = [r for r, t in zip(interventions, kinds, strict=True) if not t]
    return [
        *mi_findings(runs),
        *knockout_findings(plain(others)),
        transplant_finding(plain(transplants)),
        hsic_finding(runs),
    ]


def _num(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.3g}" if isinstance(x, float) else str(x)


def _clean(x):
    """JSON-safe: NaN -> None (strict JSON has no NaN), numpy scalars -> float."""
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if x is None:
        return None
    x = float(x) if not isinstance(x, (int, str)) else x
    return None if isinstance(x, float) and math.isnan(x) else x


def as_json(findings: list[Finding], mi=None) -> dict:
    """{"findings": [...]}, plus "by_estimator" when the MI Datasets carry estimators
    beyond the histogram (``estimator_findings.as_json``)."""
    doc = {"findings": [{k: _clean(v) for k, v in f.as_json().items()} for f in findings]}
    if mi and len(estimator_findings.present(mi)) > 1:
        doc["by_estimator"] = estimator_findings.as_json(estimator_findings.by_estimator(mi))
    return doc


def markdown(findings: list[Finding], bins: int | None, n_runs: int, mi=None) -> str:
    title = f"# Findings report (bins = {bins})" if bins else "# Findings report"
    lines = [
        title,
        "",
        f"Measured on {n_runs} run(s); the MI findings and the interventions use the "
        "cross-entropy runs when there are any, the HSIC finding pairs CE with CE+HSIC runs. "
        "Verdict rule (from the interval, never the sign of the mean): `reproduced` when the "
        "95% Student-t interval across runs (pairs) of the statistic lies above 0, "
        "`contradicted` when it lies below 0, `inconclusive` when it contains 0 or there is a "
        "single value, `not measured` when no run carries the data. Label-MI statistics are bias-corrected "
        "(raw minus the label-permutation null); `null` is what the null alone gives.",
        "",
        "Pooled over every group below (`runs`: the runs the statistic rests on; paired "
        "findings rest on one value per pair, i.e. runs / 2 values).",
        "",
        "| finding | verdict | statistic | 95% interval | null | runs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in findings:
        iv = "n/a" if f.interval is None else f"[{_num(f.interval[0])}, {_num(f.interval[1])}]"
        unit = f" {f.unit}" if f.statistic is not None and f.unit else ""
        lines.append(
            f"| {f.claim} (`{f.id}`) | **{f.verdict}** | {_num(f.statistic)}{unit} | {iv} | "
            f"{_num(f.null)} | {f.runs} |"
        )
    if mi:
        lines += ["", *estimator_findings.markdown(mi), *groups.markdown(mi)]
    lines += ["", "## How each statistic is computed", ""]
    lines += [f"- `{f.id}`: {f.how}." for f in findings]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    """Replace ``path`` only if it is our own findings report (``latent_mi.outputs``)."""
    with safe_output(path, "findings-report") as tmp:
        tmp.write_text(text)


def write_report(findings: list[Finding], out: str | Path, bins=None, n_runs=0, mi=None) -> Path:
    """Write OUT.json and OUT.md (out is the stem, e.g. results/findings/bins-20)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(out.with_name(out.name + ".json"), json.dumps(as_json(findings, mi), indent=1) + "\n")
    _write(out.with_name(out.name + ".md"), markdown(findings, bins, n_runs, mi))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m analyzer.report.findings_report",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--mi", nargs="+", required=True, help="MI Datasets (one per run)")
    p.add_argument("--interventions", nargs="*", default=[], help="intervention results (Zarr)")
    p.add_argument("--out", required=True, help="output stem: writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    try:
        mi = [open_output(path) for path in args.mi]
        iv = [open_output(path, "interventions") for path in args.interventions]
    except (OSError, ValueError, KeyError) as e:
        print(f"findings: error: cannot open an input: {e}", file=sys.stderr)
        return 1
    bins = int(mi[0].bins) if "bins" in mi[0].coords else None
    try:
        out = write_report(measure(mi, iv, args.interventions), args.out, bins, len(mi), mi)
    except (OutputError, OSError) as e:
        print(f"findings: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}.json and {out}.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
