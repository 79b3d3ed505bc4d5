# Findings report per bin count (part of `figures`) and the robustness sweep (`robustness`).
FINDINGS_CODE = [
    f"{workflow.basedir}/analyzer/{name}.py"
    for name in ("findings", "findings_interventions", "findings_report", "stats")
]
SWEEP = config["robustness"]
SWEEP_CODE = [
    f"{workflow.basedir}/analyzer/{name}.py"
    for name in ("sweep", "binning", "nulls", "robustness", "findings")
]


def findings_files(bins):
    return [f"{RESULTS}/findings/bins-{bins}.{ext}" for ext in ("md", "json")]


rule findings_bins:
    input:
        mi=expand(f"{RESULTS}/mi/bins-{{{{bins}}}}/{{run}}.zarr", run=RUNS),
        interventions=lambda wc: intervention_files(wc.bins),
        code=FINDINGS_CODE,
    output:
        md=report(
            f"{RESULTS}/findings/bins-{{bins}}.md",
            caption="../report/findings.rst",
            category="findings",
            subcategory="bins-{bins}",
        ),
        json=f"{RESULTS}/findings/bins-{{bins}}.json",
    log:
        f"{RESULTS}/logs/findings/bins-{{bins}}.log",
    shell:
        "python -m analyzer.findings_report --mi {input.mi} --interventions {input.interventions}"
        " --out {RESULTS}/findings/bins-{wildcards.bins} > {log} 2>&1"


rule robustness:
    input:
        [
            f"{RESULTS}/robustness/summary.{ext}"
            for ext in ["md", "json", *config["figures"]["formats"]]
        ],


rule robustness_run:
    input:
        manifest=f"{RESULTS}/runs/{{run}}/done.json",
        code=SWEEP_CODE,
    output:
        directory(f"{RESULTS}/robustness/runs/{{run}}.zarr"),
    params:
        store=lambda wc: f"{run_dir(wc.run)}/activations.zarr",
        args=(
            f"--bins {' '.join(map(str, SWEEP['bins']))}"
            f" --fractions {' '.join(map(str, SWEEP['fractions']))}"
            f" --rules {' '.join(SWEEP['rules'])} --permutations {SWEEP['permutations']}"
        ),
    log:
        f"{RESULTS}/logs/robustness/{{run}}.log",
    threads: 1
    shell:
        "python -m analyzer.sweep {params.store} --out {output} {params.args} > {log} 2>&1"


rule robustness_summary:
    input:
        sweeps=expand(f"{RESULTS}/robustness/runs/{{run}}.zarr", run=RUNS),
        code=SWEEP_CODE,
    output:
        report(
            f"{RESULTS}/robustness/summary.md",
            caption="../report/robustness.rst",
            category="robustness",
        ),
        f"{RESULTS}/robustness/summary.json",
        [
            report(
                f"{RESULTS}/robustness/summary.{fmt}",
                caption="../report/robustness.rst",
                category="robustness",
            )
            for fmt in config["figures"]["formats"]
        ],
    params:
        formats=" ".join(config["figures"]["formats"]),
    log:
        f"{RESULTS}/logs/robustness/summary.log",
    shell:
        "python -m analyzer.robustness {input.sweeps} --out {RESULTS}/robustness/summary"
        " --formats {params.formats} > {log} 2>&1"
