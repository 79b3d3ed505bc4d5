"""Snakemake script: draw every figure of one bin count."""
# ruff: noqa: F821  (`snakemake` is injected by Snakemake)

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))

from analyzer import figures  # noqa: E402

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    ds = figures.load_runs(snakemake.input.mi)
    outdir = Path(snakemake.params.outdir)
    formats = snakemake.params.formats
    for name in snakemake.params.names:
        if name in figures.MI_FIGURES:
            figures.MI_FIGURES[name](ds, outdir / name, formats)
        else:
            figures.INTERVENTION_FIGURES[name](
                snakemake.input.interventions, outdir / name, formats
            )
        print(f"drew {name}", file=log)
