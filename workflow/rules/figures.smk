# Figures: one job per (bins, figure), the figures and their report captions from the one
# registry (analyzer/figures/captions.py). PNG goes into the report; other formats beside it.
from analyzer.figures.captions import FIGURES, caption, names  # noqa: E402  (no matplotlib)

FORMATS = list(dict.fromkeys(["png", *config["figures"]["formats"]]))  # PNG always (report)
FIGURE_NAMES = [
    n
    for n in names(
        hsic=any(p["regularizer"] == "hsic" for p in RUNS.values()), transplants=bool(PAIRS)
    )
    if IV_ON or FIGURES[n].source == "mi"
]


rule figure:
    input:
        mi=expand(rules.analyze_run.output[0], bins="{bins}", run=RUNS, allow_missing=True),
        interventions=lambda wc: (
            intervention_files(wc.bins, IV_SCORED, PAIRS)
            if FIGURES[wc.name].source == "interventions"
            else []
        ),
        code=code_files("workflow/scripts/figures.py"),
    output:
        report(
            f"{C.figures_dir(RESULTS, '{bins}')}/{{name}}.png",
            caption="../report/figure.rst",
            category="bins-{bins}",
            subcategory="{name}",
        ),
        [f"{C.figures_dir(RESULTS, '{bins}')}/{{name}}.{fmt}" for fmt in FORMATS if fmt != "png"],
    log:
        C.log_path(RESULTS, "figures", "bins-{bins}/{name}"),
    conda:
        CONDA_ENV
    resources:
        slurm_partition=CPU_PARTITION,
    params:
        names=lambda wc: [wc.name],
        formats=FORMATS,
        outdir=lambda wc: C.figures_dir(RESULTS, wc.bins),
        # N = the runs the figure draws (Figs 1-3 and 8 leave out regularized runs)
        caption=lambda wc: caption(
            wc.name,
            wc.bins,
            [
                tuple(RUNS[r][k] for k in ("arch", "activation", "regularizer"))
                for r in (IV_SCORED if FIGURES[wc.name].source == "interventions" else RUNS)
            ],
        ),
    script:
        "../scripts/figures.py"


rule figures:
    default_target: True
    input:
        expand(rules.figure.output, bins=BINS, name=FIGURE_NAMES),
        expand(rules.findings_bins.output, bins=BINS),
        rules.twelve_bit.input if TWELVE_BIT_ON else [],


wildcard_constraints:
    name=pattern(FIGURE_NAMES),
