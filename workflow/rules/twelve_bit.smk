# Seeds 003/002 on the 12-bit task: twelve_bit_mlp repeats, whole-layer analysis, their figures.
# Target `twelve_bit`; `figures` includes it when twelve_bit.enabled (false unless a config
# says true, as config/config.yaml does). Trained runs go to the shared RUNS_ROOT (named by
# their identity settings, like the grid's runs); analysis and figures to <results>/twelve_bit/.
from analyzer.figures.captions import caption, names  # noqa: E402  (no matplotlib)

TWELVE_BIT = config["twelve_bit"]
TWELVE_BIT_ON = TWELVE_BIT["enabled"]
TWELVE_BIT_DIR = f"{RESULTS}/twelve_bit"
TWELVE_BIT_BINS = [int(b) for b in TWELVE_BIT["bins"]]
TWELVE_BIT_FIGS = names("twelve_bit", twelve_bit=True)
TWELVE_BIT_FORMATS = list(dict.fromkeys(["png", *config["figures"]["formats"]]))  # PNG: the report

try:
    TWELVE_BIT_RUNS = twelve_bit_runs(TWELVE_BIT)  # run name -> resolved trainer config
except ConfigError as e:
    raise WorkflowError(f"invalid config: twelve_bit: {e}") from None
TWELVE_BIT_TRAINED = trained_names(TWELVE_BIT_RUNS)  # run name -> trained run folder name
TWELVE_BIT_CONFIGS = {TWELVE_BIT_TRAINED[r]: cfg for r, cfg in TWELVE_BIT_RUNS.items()}


rule twelve_bit_train_run:
    output:
        manifest=C.done_path(C.run_dir(RESULTS, "{twelve_bit_trained}")),
    log:
        C.log_path(RUNS_ROOT, "train", "{twelve_bit_trained}"),
    conda:
        CONDA_ENV
    threads: 1  # a 12-10-7-5-4-3-2 MLP: one thread (more only synchronize)
    resources:
        slurm_partition=CPU_PARTITION,
    params:
        cfg=lambda wc: Unrecorded(
            shlex.quote(json.dumps(TWELVE_BIT_CONFIGS[wc.twelve_bit_trained], sort_keys=True))
        ),
        out=lambda wc, output: os.path.dirname(output.manifest),
    shell:
        "LATENT_MI_EXIT_WITH=$PPID OMP_NUM_THREADS=1 python -m trainer --config-json {params.cfg} --out {params.out} > {log} 2>&1"


rule twelve_bit_analyze_run:
    input:
        manifest=lambda wc: expand(
            rules.twelve_bit_train_run.output.manifest,
            twelve_bit_trained=TWELVE_BIT_TRAINED[wc.twelve_bit_run],
        ),
        code=code_files("analyzer.__main__"),
    output:
        directory(C.mi_path(TWELVE_BIT_DIR, "{bins}", "{twelve_bit_run}")),
    log:
        C.log_path(RESULTS, "twelve_bit/analyze", "bins-{bins}/{twelve_bit_run}"),
    conda:
        CONDA_ENV
    threads: 2
    resources:
        slurm_partition=CPU_PARTITION,
    params:
        store=lambda wc, input: C.store_path(os.path.dirname(input.manifest[0])),
        extra=" ".join(
            [
                "--pair-samples 8 --permutations 0 --cc-layers last",
                "--bin-sizes " + " ".join(map(str, TWELVE_BIT["bin_sizes"])),
                (
                    ("--noise-betas " + " ".join(map(str, TWELVE_BIT["noise_betas"])))
                    if TWELVE_BIT["noise_betas"]
                    else ""
                ),
            ]
        ),
    shell:
        "python -m analyzer {params.store} --bins {wildcards.bins} --out {output} --run {wildcards.twelve_bit_run}"
        " --threads {threads} --no-progress {params.extra} > {log} 2>&1"


rule twelve_bit_figure:
    input:
        mi=expand(
            rules.twelve_bit_analyze_run.output[0],
            bins="{bins}",
            twelve_bit_run=TWELVE_BIT_RUNS,
            allow_missing=True,
        ),
        code=code_files("workflow/scripts/figures.py"),
    output:
        report(
            f"{C.figures_dir(TWELVE_BIT_DIR, '{bins}')}/{{twelve_bit_fig}}.png",
            caption="../report/figure.rst",
            category="twelve_bit bins-{bins}",
            subcategory="{twelve_bit_fig}",
        ),
        [
            f"{C.figures_dir(TWELVE_BIT_DIR, '{bins}')}/{{twelve_bit_fig}}.{fmt}"
            for fmt in TWELVE_BIT_FORMATS
            if fmt != "png"
        ],
    log:
        C.log_path(RESULTS, "twelve_bit/figures", "bins-{bins}/{twelve_bit_fig}"),
    conda:
        CONDA_ENV
    resources:
        slurm_partition=CPU_PARTITION,
    params:
        names=lambda wc: [wc.twelve_bit_fig],
        formats=TWELVE_BIT_FORMATS,
        outdir=lambda wc: C.figures_dir(TWELVE_BIT_DIR, wc.bins),
        caption=lambda wc: caption(wc.twelve_bit_fig, wc.bins, len(TWELVE_BIT_RUNS)),
    script:
        "../scripts/figures.py"


rule twelve_bit:
    input:
        expand(rules.twelve_bit_figure.output, bins=TWELVE_BIT_BINS, twelve_bit_fig=TWELVE_BIT_FIGS),


wildcard_constraints:
    twelve_bit_run=pattern(TWELVE_BIT_RUNS),
    twelve_bit_trained=pattern(TWELVE_BIT_TRAINED.values()),
    twelve_bit_fig=pattern(TWELVE_BIT_FIGS),
