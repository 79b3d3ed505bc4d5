# Latent MI pipeline: train -> analyze -> interventions -> figures.
# Usage: snakemake --cores 8 figures   (see README.md; targets: figures, train, analyze, robustness, twelve_bit)
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, only when no --configfile is given: a user's config file is the
# whole config (schema defaults fill the rest), never merged over the digits settings.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/interventions.smk"
include: "workflow/rules/findings.smk"
include: "workflow/rules/twelve_bit.smk"
include: "workflow/rules/figures.smk"


# Targets that only collect files run where Snakemake runs (never submitted to SLURM).
localrules:
    train,
    analyze,
    figures,
    robustness,
    twelve_bit,
