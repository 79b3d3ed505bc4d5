# One analysis per (bins, run). The analyzer's code is declared as input, so editing
# it reruns analysis (Snakemake does not track imported packages by itself).
# (figures.py only draws: it is an input of the figures rule instead.)
ANALYZER_CODE = sorted(
    str(p) for p in Path(workflow.basedir, "analyzer").glob("*.py") if p.name != "figures.py"
)


rule analyze:
    input:
        expand(f"{RESULTS}/mi/bins-{{bins}}/{{run}}.zarr", bins=BINS, run=RUNS),


rule analyze_run:
    input:
        manifest=f"{RESULTS}/runs/{{run}}/done.json",
        code=ANALYZER_CODE,
    output:
        directory(f"{RESULTS}/mi/bins-{{bins}}/{{run}}.zarr"),
    params:
        store=lambda wc: f"{run_dir(wc.run)}/activations.zarr",
        extra=" ".join(
            [
                f"--pair-samples {config['mi']['pair_samples']}",
                f"--permutations {config['mi']['permutations']}",
                "--cc-layers " + " ".join(config["mi"]["cc_layers"]),
                "--miller-madow" if config["mi"]["miller_madow"] else "",
            ]
        ),
    log:
        f"{RESULTS}/logs/analyze/bins-{{bins}}/{{run}}.log",
    threads: 2
    shell:
        "python -m analyzer {params.store} --bins {wildcards.bins} --out {output} --run {wildcards.run}"
        " --threads {threads} --no-progress {params.extra} > {log} 2>&1"
