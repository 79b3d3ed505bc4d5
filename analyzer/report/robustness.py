"""Which findings hold across the robustness sweep: a table (Markdown + JSON) and a figure.

    python -m analyzer.report.robustness results/robustness/runs/*.zarr --out results/robustness/summary

For each (bins, sample fraction, binning rule) the label-MI findings (``findings.mi_findings``)
are measured on every run's sweep Dataset (``analyzer.sweep``) with the same verdict rule as
the findings report. Intervention and HSIC findings do not depend on the estimator settings
and are not part of the sweep. Writes OUT.md, OUT.json and OUT.png / OUT.pdf. With ``--mi``
(the runs' MI Datasets), OUT.md and OUT.json also say under which MI estimators (histogram,
kNN, Gaussian, probe: ``mi.estimators``) each label-MI finding holds
(``analyzer.report.estimator_findings``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from analyzer.report import estimator_findings
from analyzer.report.findings import RunSummary, mi_findings, summary_of
from latent_mi.manifest import open_output
from latent_mi.outputs import safe_output
from latent_mi.settings import SETTINGS, default, plain_text

COLORS = {"reproduced": "#4daf4a", "inconclusive": "#ffbf00", "contradicted": "#e41a1c",
          "not measured": "#bbbbbb"}  # fmt: skip


def summaries(runs: list[xr.Dataset], bins: int, fraction: float, rule: str) -> list[RunSummary]:
    """RunSummary of each run's sweep Dataset at one (bins, fraction, rule) cell."""
    return [summary_of(ds.sel(bins=bins, fraction=fraction, rule=rule)) for ds in runs]


def table(runs: list[xr.Dataset]) -> list[dict]:
    """One row per (bins, fraction, rule): each finding's verdict and statistic."""
    first = runs[0]
    rows = []
    grid = itertools.product(first.bins.values, first.fraction.values, first.rule.values)
    for b, f, r in grid:
        found = mi_findings(summaries(runs, int(b), float(f), str(r)))
        rows.append(
            {
                "bins": int(b),
                "fraction": float(f),
                "rule": str(r),
                "findings": {x.id: {"verdict": x.verdict, "statistic": x.statistic} for x in found},
            }
        )
    return rows


def holds(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Per finding: how many sweep settings give each verdict."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        for fid, v in row["findings"].items():
            out.setdefault(fid, {}).setdefault(v["verdict"], 0)
            out[fid][v["verdict"]] += 1
    return out


def markdown(rows: list[dict], n_runs: int) -> str:
    ids = list(rows[0]["findings"])
    count = holds(rows)
    lines = [
        "# Robustness sweep (paper appendix F)",
        "",
        f"{len(rows)} estimator settings x {n_runs} run(s), no retraining. Verdict rule as in "
        "the findings report (bias-corrected label MI, 95% t-interval across runs).",
        "",
        "## Which findings hold across the sweep",
        "",
        "| finding | "
        + " | ".join(("reproduced", "contradicted", "inconclusive", "not measured"))
        + " |",
        "| --- | --- | --- | --- | --- |",
    ]
    for fid in ids:
        c = count[fid]
        cells = [
            str(c.get(v, 0)) for v in ("reproduced", "contradicted", "inconclusive", "not measured")
        ]
        lines.append(f"| `{fid}` | " + " | ".join(cells) + " |")
    lines += ["", "## Every setting", "", "| bins | fraction | rule | " + " | ".join(ids) + " |"]
    lines.append("| --- " * (3 + len(ids)) + "|")
    for row in rows:
        cells = []
        for fid in ids:
            v = row["findings"][fid]
            stat = "n/a" if v["statistic"] is None else f"{v['statistic']:+.3g}"
            cells.append(f"{v['verdict']} ({stat})")
        lines.append(
            f"| {row['bins']} | {row['fraction']:g} | {row['rule']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


FORMATS = default("figures.formats")  # latent_mi/settings/declarations.py


def figure(rows: list[dict], path_stem: Path, formats=FORMATS) -> list[Path]:
    """Heatmap: one row per finding, one column per setting, colour = verdict."""
    import matplotlib.colors
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    ids = list(rows[0]["findings"])
    rgb = np.array(
        [[matplotlib.colors.to_rgb(COLORS[r["findings"][i]["verdict"]]) for r in rows] for i in ids]
    )
    fig = Figure(figsize=(max(6, 0.28 * len(rows) + 3), 0.5 * len(ids) + 2.2))
    ax = fig.add_subplot()
    ax.imshow(rgb, aspect="auto")
    ax.set_yticks(range(len(ids)), ids)
    ax.set_xticks(
        range(len(rows)), [f"B{r['bins']} {r['fraction']:g} {r['rule']}" for r in rows], rotation=90
    )
    ax.set_xlabel("estimator setting (bins, sample fraction, binning rule)")
    ax.set_title("Robustness sweep (paper appendix F): verdict of each label-MI finding", pad=34)
    ax.legend(
        handles=[Patch(color=c, label=v) for v, c in COLORS.items()],
        loc="upper center", bbox_to_anchor=(0.5, 1.25), ncol=4, frameon=False,
    )  # fmt: skip
    fig.tight_layout()
    paths = []
    for fmt in formats:
        paths.append(path_stem.with_name(f"{path_stem.name}.{fmt}"))
        with safe_output(paths[-1], "robustness-summary") as tmp:
            fig.savefig(tmp, dpi=120, format=fmt)
    return paths


def _write(path: Path, text: str) -> None:
    """Replace ``path`` only if it is our own robustness summary (``latent_mi.outputs``)."""
    with safe_output(path, "robustness-summary") as tmp:
        tmp.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m analyzer.report.robustness",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweeps", nargs="+", help="per-run sweep Datasets (python -m analyzer.sweep)")
    p.add_argument("--out", required=True, help="output stem: OUT.md, OUT.json, OUT.<fmt>")
    p.add_argument(
        "--formats",
        nargs="+",
        default=list(FORMATS),
        choices=SETTINGS["figures.formats"].value["enum"],
        help="figure formats (the workflow: figures.formats)",
    )
    p.add_argument(
        "--mi", nargs="*", default=[], help="the runs' MI Datasets: adds findings per estimator"
    )
    args = p.parse_args(argv)
    try:
        runs = [open_output(path, "sweep").load() for path in args.sweeps]
        mi = [open_output(path, "MI Dataset") for path in args.mi]
    except (OSError, ValueError) as e:
        print(f"robustness: error: {e}", file=sys.stderr)
        return 1
    rows = table(runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"settings": rows, "holds": holds(rows)}
    extra = estimator_findings.markdown(mi)
    if extra:
        doc["by_estimator"] = estimator_findings.as_json(estimator_findings.by_estimator(mi))
    _write(out.with_name(out.name + ".json"), json.dumps(doc, indent=1))
    text = markdown(rows, len(runs))
    _write(out.with_name(out.name + ".md"), text + ("\n" + "\n".join(extra) if extra else ""))
    figure(rows, out, args.formats)
    print(f"wrote {out}.md/.json/.{'/.'.join(args.formats)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
