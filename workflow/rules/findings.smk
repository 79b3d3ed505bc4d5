# Findings report per bin count (part of `figures`) and the robustness sweep (`robustness`).
# Each rule's code inputs are the project modules its command imports (code_files).
SWEEP = config["robustness"]
# the MI Datasets (first bin count) whose estimators the robustness summary reports: only
# when mi.estimators lists more than the histogram (else the summary has no such section)
ESTIMATOR_MI = (
    expand(rules.analyze_run.output[0], bins=BINS[0], run=RUNS)
    if set(config["mi"]["estimators"]) - {"histogram"}
    else []
)


rule findings_bins:
    input:
        mi=expand(rules.analyze_run.output[0], bins="{bins}", run=RUNS, allow_missing=True),
        interventions=lambda wc: intervention_files(wc.bins, IV_SCORED, PAIRS),
        code=code_files("analyzer.report.findings_report"),
    output:
        md=report(
            f"{C.findings_stem(RESULTS, '{bins}')}.md",
            caption="../report/findings.rst",
            category="findings",
            subcategory="bins-{bins}",
        ),
        json=f"{C.findings_stem(RESULTS, '{bins}')}.json",
    log:
        C.log_path(RESULTS, "findings", "bins-{bins}"),
    conda:
        CONDA_ENV
    resources:
        slurm_partition=CPU_PARTITION,
    params:
        stem=lambda wc: C.findings_stem(RESULTS, wc.bins),
    shell:
        "python -m analyzer.report.findings_report --mi {input.mi} --interventions {input.interventions}"
        " --out {params.stem} > {log} 2>&1"


rule robustness_run:
    input:
        manifest=lambda wc: trained_done(wc.run),
        code=code_files("analyzer.sweep"),
    output:
        directory(C.sweep_path(RESULTS, "{run}")),
    log:
        C.log_path(RESULTS, "robustness", "{run}"),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        slurm_partition=CPU_PARTITION,
    params:
        store=lambda wc, input: C.store_path(os.path.dirname(input.manifest)),
        args=(
            f"--bins {' '.join(map(str, SWEEP['bins']))}"
            f" --fractions {' '.join(map(str, SWEEP['fractions']))}"
            f" --rules {' '.join(SWEEP['rules'])}"
        ),
    shell:
        "python -m analyzer.sweep {params.store} --out {output} {params.args} > {log} 2>&1"


rule robustness_summary:
    input:
        sweeps=expand(rules.robustness_run.output, run=RUNS),
        mi=ESTIMATOR_MI,
        code=code_files("analyzer.report.robustness"),
    output:
        report(
            f"{C.robustness_stem(RESULTS)}.md",
            caption="../report/robustness.rst",
            category="robustness",
        ),
        f"{C.robustness_stem(RESULTS)}.json",
        [
            # PNG in the report, other formats beside it (no duplicates in the report)
            (
                report(
                    f"{C.robustness_stem(RESULTS)}.{fmt}",
                    caption="../report/robustness.rst",
                    category="robustness",
                )
                if fmt == "png"
                else f"{C.robustness_stem(RESULTS)}.{fmt}"
            )
            for fmt in config["figures"]["formats"]
        ],
    log:
        C.log_path(RESULTS, "robustness", "summary"),
    conda:
        CONDA_ENV
    resources:
        slurm_partition=CPU_PARTITION,
    params:
        formats=" ".join(config["figures"]["formats"]),
        stem=lambda wc, output: os.path.splitext(output[0])[0],
    shell:
        "python -m analyzer.report.robustness {input.sweeps} --mi {input.mi} --out {params.stem}"
        " --formats {params.formats} > {log} 2>&1"


rule robustness:
    input:
        rules.robustness_summary.output,
