# Seeds 003/002 on the 12-bit task: szt_mlp repeats, whole-layer analysis, their figures.
# Target `szt`; `figures` includes it when szt.enabled. Outputs under <results>/szt/.
from analyzer.figures.captions import caption, names  # noqa: E402  (no matplotlib)

SZT = config["szt"]
SZT_ON = SZT["enabled"]
SZT_DIR = f"{RESULTS}/szt"
SZT_BINS = [int(b) for b in SZT["bins"]]
SZT_FIGS = names("szt", szt=True)
SZT_FORMATS = list(dict.fromkeys(["png", *config["figures"]["formats"]]))  # PNG: the report
SZT_FIGURES_CODE = code_files("analyzer/figures/*.py", "latent_mi/*.py", "workflow/scripts/figures.py")

try:
    SZT_RUNS = szt_runs(SZT)
except ConfigError as e:
    raise WorkflowError(f"invalid config: szt: {e}") from None

SZT_FIGURE_FILES = [
    f"{SZT_DIR}/figures/bins-{b}/{n}.{fmt}" for b in SZT_BINS for n in SZT_FIGS for fmt in SZT_FORMATS
]


rule szt:
    input:
        SZT_FIGURE_FILES,


rule szt_train_run:
    output:
        manifest=f"{SZT_DIR}/runs/{{szt_run}}/{C.DONE}",
    params:
        cfg=lambda wc: shlex.quote(json.dumps(SZT_RUNS[wc.szt_run], sort_keys=True)),
        out=lambda wc: f"{SZT_DIR}/runs/{wc.szt_run}",
    log:
        f"{RESULTS}/logs/szt/train/{{szt_run}}.log",
    threads: 1  # a 12-10-7-5-4-3-2 MLP: one thread (more only synchronize)
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS=1 python -m trainer --config-json {params.cfg} --out {params.out} > {log} 2>&1"


rule szt_analyze_run:
    input:
        manifest=f"{SZT_DIR}/runs/{{szt_run}}/{C.DONE}",
        code=ANALYZER_CODE,
    output:
        directory(f"{SZT_DIR}/mi/bins-{{bins}}/{{szt_run}}.zarr"),
    params:
        store=lambda wc: f"{SZT_DIR}/runs/{wc.szt_run}/{C.STORE}",
        extra=" ".join(
            [
                "--pair-samples 8 --permutations 0 --cc-layers last",
                "--bin-sizes " + " ".join(map(str, SZT["bin_sizes"])),
                ("--noise-betas " + " ".join(map(str, SZT["noise_betas"]))) if SZT["noise_betas"] else "",
            ]
        ),
    log:
        f"{RESULTS}/logs/szt/analyze/bins-{{bins}}/{{szt_run}}.log",
    threads: 2
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    shell:
        "python -m analyzer {params.store} --bins {wildcards.bins} --out {output} --run {wildcards.szt_run}"
        " --threads {threads} --no-progress {params.extra} > {log} 2>&1"


rule szt_figure:
    input:
        mi=expand(f"{SZT_DIR}/mi/bins-{{{{bins}}}}/{{szt_run}}.zarr", szt_run=SZT_RUNS),
        code=SZT_FIGURES_CODE,
    output:
        report(
            f"{SZT_DIR}/figures/bins-{{bins}}/{{szt_fig}}.png",
            caption="../report/figure.rst",
            category="szt bins-{bins}",
            subcategory="{szt_fig}",
        ),
        [f"{SZT_DIR}/figures/bins-{{bins}}/{{szt_fig}}.{fmt}" for fmt in SZT_FORMATS if fmt != "png"],
    params:
        names=lambda wc: [wc.szt_fig],
        formats=SZT_FORMATS,
        outdir=lambda wc: f"{SZT_DIR}/figures/bins-{wc.bins}",
        caption=lambda wc: caption(wc.szt_fig, wc.bins, len(SZT_RUNS)),
    log:
        f"{RESULTS}/logs/szt/figures/bins-{{bins}}/{{szt_fig}}.log",
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    script:
        "../scripts/figures.py"


wildcard_constraints:
    szt_run="|".join(SZT_RUNS) or "NONE",
    szt_fig="|".join(SZT_FIGS),
