# Latent MI pipeline: train -> analyze -> interventions -> figures.
# Usage: snakemake --cores 8 figures   (see README.md; targets: figures, train, analyze, robustness)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/interventions.smk"
include: "workflow/rules/findings.smk"
include: "workflow/rules/figures.smk"
