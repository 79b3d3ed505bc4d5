# One analysis per (bins, run), of the run's trained run. The analyzer's code (every project
# module `python -m analyzer` imports) is an input, so editing it reruns analysis.
from latent_mi.settings import command_json  # noqa: E402  (the rule's settings document)


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
        settings=command_json(config["mi"], "mi"),  # analysis settings; no runtime keys
    shell:
        "python -m analyzer {params.store} --bins {wildcards.bins} --out {output} --run {wildcards.run}"
        " --threads {threads} --no-progress --settings-json {params.settings} > {log} 2>&1"


rule analyze:
    input:
        expand(rules.analyze_run.output, bins=BINS, run=RUNS),
