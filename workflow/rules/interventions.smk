# Inference-time interventions per (bins, run), ranked by that bin count's channel MI,
# and transplants per pair of seeds (donor seed s -> recipient seed s+1).
IV = config["interventions"]
# runs whose regularizer is in interventions.regularizers (default: CE only, as in the paper)
IV_RUNS = [r for r, p in RUNS.items() if p["regularizer"] in IV["regularizers"]]
IV_ON = IV["enabled"] and bool(IV_RUNS)
PAIRS = [(d, r) for d, r in seed_pairs() if d in IV_RUNS] if IV_ON and IV["transplants"] else []
from latent_mi.settings import command_json  # noqa: E402  (the rules' settings documents)

IV_SETTINGS = command_json(IV, "interventions")  # without runtime keys (device: resources)
TRANSPLANT_SETTINGS = command_json(IV, "interventions", only=("q", "random_draws", "layers", "seed"))
# The interventions' code is an input of their rules (Snakemake does not track imported
# packages): editing it reruns them.
IV_CODE = code_files(
    "interventions/*.py",
    "trainer/sites.py",
    "trainer/models.py",
    "trainer/*.py",
    "trainer/twelve_bit/*.py",
    "latent_mi/*.py",
)
IV_SCORED = IV_RUNS if IV_ON else []  # runs whose interventions are computed


rule interventions_run:
    input:
        manifest=f"{C.run_dir(RESULTS, '{run}')}/{C.DONE}",
        mi=C.mi_path(RESULTS, "{bins}", "{run}"),
        code=IV_CODE,
    output:
        directory(C.interventions_path(RESULTS, "{bins}", "{run}")),
    params:
        run_dir=lambda wc: run_dir(wc.run),
        settings=IV_SETTINGS,
    log:
        C.log_path(RESULTS, "interventions", "bins-{bins}/{run}"),
    threads: 2
    resources:
        slurm_partition=GPU_PARTITION,  # torch on every layer at full width: GPU nodes
        gpu=1 if IV["device"].startswith("cuda") else 0,  # auto: shares the box
        device=IV["device"],  # how it runs: a resource, never a params rerun trigger
    conda:
        CONDA_ENV
    shell:
        "python -m interventions {params.run_dir} --mi {input.mi} --out {output}"
        " --settings-json {params.settings} --device {resources.device} --threads {threads} > {log} 2>&1"


rule transplant_pair:
    input:
        donor=f"{C.run_dir(RESULTS, '{donor}')}/{C.DONE}",
        recipient=f"{C.run_dir(RESULTS, '{recipient}')}/{C.DONE}",
        mi=C.mi_path(RESULTS, "{bins}", "{donor}"),
        code=IV_CODE,
    output:
        directory(C.transplant_path(RESULTS, "{bins}", "{donor}", "{recipient}")),
    params:
        donor=lambda wc: run_dir(wc.donor),
        recipient=lambda wc: run_dir(wc.recipient),
        settings=TRANSPLANT_SETTINGS,
    log:
        C.log_path(RESULTS, "interventions", f"bins-{{bins}}/{C.transplant_name('{donor}', '{recipient}')}"),
    threads: 2
    resources:
        slurm_partition=GPU_PARTITION,  # torch on every layer at full width: GPU nodes
        gpu=1 if IV["device"].startswith("cuda") else 0,  # auto: shares the box
        device=IV["device"],  # how it runs: a resource, never a params rerun trigger
    conda:
        CONDA_ENV
    shell:
        "python -m interventions {params.recipient} --donor {params.donor} --mi {input.mi}"
        " --out {output} --settings-json {params.settings} --device {resources.device}"
        " --threads {threads} > {log} 2>&1"
