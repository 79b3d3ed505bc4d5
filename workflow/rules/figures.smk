# Figures: one job per (bins, figure), the figures and their report captions from the one
# registry (analyzer/figures/captions.py). PNG goes into the report; other formats beside it.
from analyzer.figures.captions import FIGURES, caption, names  # noqa: E402  (no matplotlib)

FORMATS = list(dict.fromkeys(["png", *config["figures"]["formats"]]))  # PNG always (report)
FIGURE_NAMES = [
    n
    for n in names(hsic=any(p["regularizer"] == "hsic" for p in RUNS.values()), transplants=bool(PAIRS))
    if IV_ON or FIGURES[n].source == "mi"
]
FIGURES_CODE = code_files("analyzer/figures/*.py", "latent_mi/*.py", "workflow/scripts/figures.py")
FIGURE_FILES = [
    f"{C.figures_dir(RESULTS, b)}/{name}.{fmt}" for b in BINS for name in FIGURE_NAMES for fmt in FORMATS
]


rule figures:
    default_target: True
    input:
        FIGURE_FILES,
        FINDINGS_FILES,
        TWELVE_BIT_FIGURE_FILES if TWELVE_BIT_ON else [],


rule figure:
    input:
        mi=expand(C.mi_path(RESULTS, "{{bins}}", "{run}"), run=RUNS),
        interventions=lambda wc: intervention_files(wc.bins, IV_SCORED, PAIRS) if FIGURES[wc.name].source == "interventions" else [],
        code=FIGURES_CODE,
    output:
        report(
            f"{C.figures_dir(RESULTS, '{bins}')}/{{name}}.png",
            caption="../report/figure.rst",
            category="bins-{bins}",
            subcategory="{name}",
        ),
        [f"{C.figures_dir(RESULTS, '{bins}')}/{{name}}.{fmt}" for fmt in FORMATS if fmt != "png"],
    params:
        names=lambda wc: [wc.name],
        formats=FORMATS,
        outdir=lambda wc: C.figures_dir(RESULTS, wc.bins),
        # N = the runs the figure draws (Figs 1-3 and 8 leave out regularized runs)
        caption=lambda wc: caption(wc.name, wc.bins, [tuple(RUNS[r][k] for k in ("arch", "activation", "regularizer")) for r in (IV_SCORED if FIGURES[wc.name].source == "interventions" else RUNS)]),
    log:
        f"{RESULTS}/logs/figures/bins-{{bins}}/{{name}}.log",
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    script:
        "../scripts/figures.py"


wildcard_constraints:
    name="|".join(FIGURE_NAMES),
