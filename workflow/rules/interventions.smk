# Inference-time interventions per (bins, run), ranked by that bin count's channel MI,
# and transplants per pair of seeds (donor seed s -> recipient seed s+1).
from latent_mi.settings import command_json  # noqa: E402  (the rules' settings documents)

IV = config["interventions"]
# runs whose regularizer is in interventions.regularizers (default: CE only, as in the paper)
IV_RUNS = [r for r, p in RUNS.items() if p["regularizer"] in IV["regularizers"]]
IV_ON = IV["enabled"] and bool(IV_RUNS)
PAIRS = [(d, r) for d, r in seed_pairs() if d in IV_RUNS] if IV_ON and IV["transplants"] else []
IV_SETTINGS = command_json(IV, "interventions")  # without runtime keys (device: resources)
TRANSPLANT_SETTINGS = command_json(
    IV, "interventions", only=("q", "random_draws", "layers", "seed")
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
        device=IV["device"],  # how it runs: a resource, never a params rerun trigger
    params:
        run_dir=lambda wc, input: os.path.dirname(input.manifest),
        settings=IV_SETTINGS,
    shell:
        "python -m interventions {params.run_dir} --mi {input.mi} --out {output}"
        " --settings-json {params.settings} --device {resources.device} --threads {threads} > {log} 2>&1"


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
        device=IV["device"],  # how it runs: a resource, never a params rerun trigger
    params:
        donor=lambda wc, input: os.path.dirname(input.donor),
        recipient=lambda wc, input: os.path.dirname(input.recipient),
        settings=TRANSPLANT_SETTINGS,
    shell:
        "python -m interventions {params.recipient} --donor {params.donor} --mi {input.mi}"
        " --out {output} --settings-json {params.settings} --device {resources.device}"
        " --threads {threads} > {log} 2>&1"
