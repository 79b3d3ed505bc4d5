# Findings report per bin count (part of `figures`) and the robustness sweep (`robustness`).
FINDINGS_CODE = code_files("analyzer/report/*.py", "analyzer/core/*.py", "latent_mi/*.py")
SWEEP = config["robustness"]
SWEEP_CODE = code_files("analyzer/*.py", "analyzer/core/*.py", "analyzer/report/*.py", "latent_mi/*.py")
FINDINGS_FILES = [f"{C.findings_stem(RESULTS, b)}.{ext}" for b in BINS for ext in ("md", "json")]


rule findings_bins:
    input:
        mi=expand(C.mi_path(RESULTS, "{{bins}}", "{run}"), run=RUNS),
        interventions=lambda wc: intervention_files(wc.bins, IV_SCORED, PAIRS),
        code=FINDINGS_CODE,
    output:
        md=report(
            f"{C.findings_stem(RESULTS, '{bins}')}.md",
            caption="../report/findings.rst",
            category="findings",
            subcategory="bins-{bins}",
        ),
        json=f"{C.findings_stem(RESULTS, '{bins}')}.json",
    log:
        f"{RESULTS}/logs/findings/bins-{{bins}}.log",
    params:
        stem=lambda wc: C.findings_stem(RESULTS, wc.bins),
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    shell:
        "python -m analyzer.report.findings_report --mi {input.mi} --interventions {input.interventions}"
        " --out {params.stem} > {log} 2>&1"


rule robustness:
    input:
        [
            f"{C.robustness_stem(RESULTS)}.{ext}"
            for ext in ["md", "json", *config["figures"]["formats"]]
        ],


rule robustness_run:
    input:
        manifest=f"{RESULTS}/runs/{{run}}/done.json",
        code=SWEEP_CODE,
    output:
        directory(C.sweep_path(RESULTS, "{run}")),
    params:
        store=lambda wc: f"{run_dir(wc.run)}/activations.zarr",
        args=(
            f"--bins {' '.join(map(str, SWEEP['bins']))}"
            f" --fractions {' '.join(map(str, SWEEP['fractions']))}"
            f" --rules {' '.join(SWEEP['rules'])}"
        ),
    log:
        f"{RESULTS}/logs/robustness/{{run}}.log",
    threads: 1
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    shell:
        "python -m analyzer.sweep {params.store} --out {output} {params.args} > {log} 2>&1"


rule robustness_summary:
    input:
        sweeps=expand(C.sweep_path(RESULTS, "{run}"), run=RUNS),
        code=SWEEP_CODE,
    output:
        report(
            f"{C.robustness_stem(RESULTS)}.md",
            caption="../report/robustness.rst",
            category="robustness",
        ),
        f"{C.robustness_stem(RESULTS)}.json",
        [
            # PNG in the report, other formats beside it (no duplicates in the report)
            report(f"{C.robustness_stem(RESULTS)}.{fmt}", caption="../report/robustness.rst", category="robustness")
            if fmt == "png"
            else f"{C.robustness_stem(RESULTS)}.{fmt}"
            for fmt in config["figures"]["formats"]
        ],
    params:
        formats=" ".join(config["figures"]["formats"]),
        stem=lambda wc, output: os.path.splitext(output[0])[0],
    log:
        f"{RESULTS}/logs/robustness/summary.log",
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        CONDA_ENV
    shell:
        "python -m analyzer.report.robustness {input.sweeps} --out {params.stem}"
        " --formats {params.formats} > {log} 2>&1"
