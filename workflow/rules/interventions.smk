# Inference-time interventions per (bins, run), ranked by that bin count's channel MI,
# and transplants per pair of seeds (donor seed s -> recipient seed s+1).
IV = config["interventions"]
# runs whose regularizer is in interventions.regularizers (default: CE only, as in the paper)
IV_RUNS = [r for r, p in RUNS.items() if p["regularizer"] in IV["regularizers"]]
IV_ON = IV["enabled"] and bool(IV_RUNS)
PAIRS = [(d, r) for d, r in seed_pairs() if d in IV_RUNS] if IV_ON and IV["transplants"] else []
IV_ARGS = (
    f"--q {' '.join(map(str, IV['q']))} --class-q {' '.join(map(str, IV['class_q']))} "
    f"--draws {IV['random_draws']} --layers {IV['layers']} "
    + (f"--noise {' '.join(map(str, IV['noise']))}" if IV["noise"] else "--noise")
    + f" --device {IV['device']}"
)
IV_SCORED = IV_RUNS if IV_ON else []  # runs whose interventions are computed
# Their code (every project module `python -m interventions` imports) is an input: editing it
# reruns them.
IV_CODE = code_files("interventions.__main__")


rule interventions_run:
    input:
        manifest=lambda wc: trained_done(wc.run),
        mi=rules.analyze_run.output[0],
        code=IV_CODE,
    output:
        directory(C.interventions_path(RESULTS, "{bins}", "{run}")),
    log:
        C.log_path(RESULTS, "interventions", "bins-{bins}/{run}"),
    conda:
        CONDA_ENV
    threads: 2
    resources:
        slurm_partition=GPU_PARTITION,  # torch on every layer at full width: GPU nodes
        gpu=1 if IV["device"].startswith("cuda") else 0,  # auto: shares the box
    params:
        run_dir=lambda wc, input: os.path.dirname(input.manifest),
        args=IV_ARGS,
    shell:
        "python -m interventions {params.run_dir} --mi {input.mi} --out {output} {params.args}"
        " --threads {threads} > {log} 2>&1"


rule transplant_pair:
    input:
        donor=lambda wc: trained_done(wc.donor),
        recipient=lambda wc: trained_done(wc.recipient),
        mi=lambda wc: expand(rules.analyze_run.output[0], bins=wc.bins, run=wc.donor),
        code=IV_CODE,
    output:
        directory(C.transplant_path(RESULTS, "{bins}", "{donor}", "{recipient}")),
    log:
        C.log_path(
            RESULTS,
            "interventions",
            f"bins-{{bins}}/{C.transplant_name('{donor}', '{recipient}')}",
        ),
    conda:
        CONDA_ENV
    threads: 2
    resources:
        slurm_partition=GPU_PARTITION,  # torch on every layer at full width: GPU nodes
        gpu=1 if IV["device"].startswith("cuda") else 0,  # auto: shares the box
    params:
        donor=lambda wc, input: os.path.dirname(input.donor),
        recipient=lambda wc, input: os.path.dirname(input.recipient),
        args=f"--q {' '.join(map(str, IV['q']))} --draws {IV['random_draws']} --layers {IV['layers']} --device {IV['device']}",
    shell:
        "python -m interventions {params.recipient} --donor {params.donor} --mi {input.mi}"
        " --out {output} {params.args} --threads {threads} > {log} 2>&1"
