# One analysis per (bins, run), of the run's trained run. The analyzer's code (every project
# module `python -m analyzer` imports) is an input, so editing it reruns analysis.


rule analyze_run:
    input:
        manifest=lambda wc: trained_done(wc.run),
        code=code_files("analyzer.__main__"),
    output:
        directory(C.mi_path(RESULTS, "{bins}", "{run}")),
    log:
        C.log_path(RESULTS, "analyze", "bins-{bins}/{run}"),
    conda:
        CONDA_ENV
    threads: 2
    resources:
        slurm_partition=CPU_PARTITION,
    params:
        store=lambda wc, input: C.store_path(os.path.dirname(input.manifest)),
        extra=" ".join(
            [
                f"--pair-samples {config['mi']['pair_samples']}",
                f"--permutations {config['mi']['permutations']}",
                "--cc-layers " + " ".join(config["mi"]["cc_layers"]),
                "--miller-madow" if config["mi"]["miller_madow"] else "",
            ]
        ),
    shell:
        "python -m analyzer {params.store} --bins {wildcards.bins} --out {output} --run {wildcards.run}"
        " --threads {threads} --no-progress {params.extra} > {log} 2>&1"


rule analyze:
    input:
        expand(rules.analyze_run.output, bins=BINS, run=RUNS),
