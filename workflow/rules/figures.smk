# Figures per bin count, from every run's MI Dataset (and intervention results).
FORMATS = config["figures"]["formats"]
HAS_HSIC = any(p["regularizer"] == "hsic" for p in RUNS.values())
MI_FIGS = [
    "fig1_depth_mi",
    "fig2_layer_mi",
    "fig3_concentration",
    "fig7_accuracy_vs_delta_input_mi",
    "fig8_input_mi_trajectories",
    "info_plane",
] + (["fig9_hsic"] if HAS_HSIC else [])


def figure_files(bins):
    return [f"{C.figures_dir(RESULTS, bins)}/{name}.{fmt}" for name in MI_FIGS + INTERVENTION_FIGS for fmt in FORMATS]


rule figures:
    default_target: True
    input:
        [figure_files(b) for b in BINS],
        [findings_files(b) for b in BINS],


rule figures_bins:
    input:
        mi=expand(C.mi_path(RESULTS, "{{bins}}", "{run}"), run=RUNS),
        interventions=lambda wc: intervention_files(wc.bins),
        code=sorted(str(p) for p in Path(workflow.basedir, "analyzer", "figures").glob("*.py")),
    output:
        [
            report(
                f"{C.figures_dir(RESULTS, '{bins}')}/{name}.{fmt}",
                caption="../report/figures.rst",
                category="bins-{bins}",
                subcategory=name,
            )
            for name in MI_FIGS + INTERVENTION_FIGS
            for fmt in FORMATS
        ],
    params:
        names=MI_FIGS + INTERVENTION_FIGS,
        formats=FORMATS,
        outdir=lambda wc: C.figures_dir(RESULTS, wc.bins),
    log:
        f"{RESULTS}/logs/figures/bins-{{bins}}.log",
    script:
        "../scripts/figures.py"
