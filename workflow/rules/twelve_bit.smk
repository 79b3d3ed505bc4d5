# Seeds 003/002 on the 12-bit task: twelve_bit_mlp repeats, whole-layer analysis, their figures.
# Target `twelve_bit`; `figures` includes it when twelve_bit.enabled. Outputs under <results>/twelve_bit/.
from analyzer.figures.captions import caption, names  # noqa: E402  (no matplotlib)

TWELVE_BIT = config["twelve_bit"]
TWELVE_BIT_ON = TWELVE_BIT["enabled"]
TWELVE_BIT_DIR = f"{RESULTS}/twelve_bit"
TWELVE_BIT_BINS = [int(b) for b in TWELVE_BIT["bins"]]
TWELVE_BIT_FIGS = names("twelve_bit", twelve_bit=True)
TWELVE_BIT_FORMATS = list(dict.fromkeys(["png", *config["figures"]["formats"]]))  # PNG: the report
TWELVE_BIT_FIGURES_CODE = code_files("analyzer/figures/*.py", "latent_mi/*.py", "workflow/scripts/figures.py")

try:
    TWELVE_BIT_RUNS = twelve_bit_runs(TWELVE_BIT)
except ConfigError as e:
    raise WorkflowError(f"invalid config: twelve_bit: {e}") from None

TWELVE_BIT_FIGURE_FILES = [
    f"{TWELVE_BIT_DIR}/figures/bins-{b}/{n}.{fmt}" for b in TWELVE_BIT_BINS for n in TWELVE_BIT_FIGS for fmt in TWELVE_BIT_FORMATS
]


rule twelve_bit:
    input:
        TWELVE_BIT_FIGURE_FILES,


rule twelve_bit_train_run:
    output:
        manifest=f"{TWELVE_BIT_DIR}/runs/{{twelve_bit_run}}/{C.DONE}",
    params:
        cfg=lambda wc: shlex.quote(json.dumps(TWELVE_BIT_RUNS[wc.twelve_bit_run], sort_keys=True)),
        out=lambda wc: f"{TWELVE_BIT_DIR}/runs/{wc.twelve_bit_run}",
    log:
        f"{RESULTS}/logs/twelve_bit/train/{{twelve_bit_run}}.log",
    threads: 1  # a 12-10-7-5-4-3-2 MLP: one thread (more only synchronize)
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    shell:
        "LATENT_MI_EXIT_WITH=$PPID OMP_NUM_THREADS=1 python -m trainer --config-json {params.cfg} --out {params.out} > {log} 2>&1"


rule twelve_bit_analyze_run:
    input:
        manifest=f"{TWELVE_BIT_DIR}/runs/{{twelve_bit_run}}/{C.DONE}",
        code=ANALYZER_CODE,
    output:
        directory(f"{TWELVE_BIT_DIR}/mi/bins-{{bins}}/{{twelve_bit_run}}.zarr"),
    params:
        store=lambda wc: f"{TWELVE_BIT_DIR}/runs/{wc.twelve_bit_run}/{C.STORE}",
        extra=" ".join(
            [
                "--pair-samples 8 --permutations 0 --cc-layers last",
                "--bin-sizes " + " ".join(map(str, TWELVE_BIT["bin_sizes"])),
                ("--noise-betas " + " ".join(map(str, TWELVE_BIT["noise_betas"]))) if TWELVE_BIT["noise_betas"] else "",
            ]
        ),
    log:
        f"{RESULTS}/logs/twelve_bit/analyze/bins-{{bins}}/{{twelve_bit_run}}.log",
    threads: 2
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    shell:
        "python -m analyzer {params.store} --bins {wildcards.bins} --out {output} --run {wildcards.twelve_bit_run}"
        " --threads {threads} --no-progress {params.extra} > {log} 2>&1"


rule twelve_bit_figure:
    input:
        mi=expand(f"{TWELVE_BIT_DIR}/mi/bins-{{{{bins}}}}/{{twelve_bit_run}}.zarr", twelve_bit_run=TWELVE_BIT_RUNS),
        code=TWELVE_BIT_FIGURES_CODE,
    output:
        report(
            f"{TWELVE_BIT_DIR}/figures/bins-{{bins}}/{{twelve_bit_fig}}.png",
            caption="../report/figure.rst",
            category="twelve_bit bins-{bins}",
            subcategory="{twelve_bit_fig}",
        ),
        [f"{TWELVE_BIT_DIR}/figures/bins-{{bins}}/{{twelve_bit_fig}}.{fmt}" for fmt in TWELVE_BIT_FORMATS if fmt != "png"],
    params:
        names=lambda wc: [wc.twelve_bit_fig],
        formats=TWELVE_BIT_FORMATS,
        outdir=lambda wc: f"{TWELVE_BIT_DIR}/figures/bins-{wc.bins}",
        caption=lambda wc: caption(wc.twelve_bit_fig, wc.bins, len(TWELVE_BIT_RUNS)),
    log:
        f"{RESULTS}/logs/twelve_bit/figures/bins-{{bins}}/{{twelve_bit_fig}}.log",
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    script:
        "../scripts/figures.py"


wildcard_constraints:
    twelve_bit_run="|".join(TWELVE_BIT_RUNS) or "NONE",
    twelve_bit_fig="|".join(TWELVE_BIT_FIGS),
