# One analysis per (bins, run). The analyzer's code is declared as input, so editing
# it reruns analysis (Snakemake does not track imported packages by itself).
# (the figures package only draws: it is an input of the figures rule instead.)
from latent_mi.settings import command_json  # noqa: E402  (the rule's settings document)

ANALYZER_CODE = code_files("analyzer/*.py", "analyzer/core/*.py", "latent_mi/*.py")


rule analyze:
    input:
        expand(C.mi_path(RESULTS, "{bins}", "{run}"), bins=BINS, run=RUNS),


rule analyze_run:
    input:
        manifest=f"{C.run_dir(RESULTS, '{run}')}/{C.DONE}",
        code=ANALYZER_CODE,
    output:
        directory(C.mi_path(RESULTS, "{bins}", "{run}")),
    params:
        store=lambda wc: f"{run_dir(wc.run)}/{C.STORE}",
        settings=command_json(config["mi"], "mi"),  # analysis settings; no runtime keys
    log:
        C.log_path(RESULTS, "analyze", "bins-{bins}/{run}"),
    threads: 2
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    shell:
        "python -m analyzer {params.store} --bins {wildcards.bins} --out {output} --run {wildcards.run}"
        " --threads {threads} --no-progress --settings-json {params.settings} > {log} 2>&1"
