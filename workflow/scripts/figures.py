"""Snakemake script: draw the figures of one bin count (names from params)."""
# ruff: noqa: F821  (`snakemake` is injected by Snakemake)

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # the workflow's choice; importing analyzer.figures sets no backend

from analyzer import figures  # noqa: E402

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    ds = figures.load_runs(snakemake.input.mi)
    outdir = Path(snakemake.params.outdir)
    for name in snakemake.params.names:
        figures.draw(
            name,
            ds,
            getattr(snakemake.input, "interventions", []),
            outdir / name,
            snakemake.params.formats,
        )
        print(f"drew {name}", file=log)
