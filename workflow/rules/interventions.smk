# Inference-time interventions per (bins, run), ranked by that bin count's channel MI,
# and transplants per pair of seeds (donor seed s -> recipient seed s+1).
IV = config["interventions"]
IV_ON = IV["enabled"]
PAIRS = seed_pairs() if IV_ON and IV["transplants"] else []
INTERVENTION_FIGS = (
    ["fig5_knockouts", "fig6_class_knockouts", "cover_and_skip_gain"] if IV_ON else []
) + (
    ["transplants"] if PAIRS else []
)
IV_ARGS = (
    f"--q {' '.join(map(str, IV['q']))} --class-q {' '.join(map(str, IV['class_q']))} "
    f"--draws {IV['random_draws']} --layers {IV['layers']} "
    + (f"--noise {' '.join(map(str, IV['noise']))}" if IV["noise"] else "--noise")
)


def intervention_files(bins):
    if not IV_ON:
        return []
    files = [f"{RESULTS}/interventions/bins-{bins}/{run}.zarr" for run in RUNS]
    files += [f"{RESULTS}/interventions/bins-{bins}/transplant-{d}--{r}.zarr" for d, r in PAIRS]
    return files


rule interventions_run:
    input:
        manifest=f"{RESULTS}/runs/{{run}}/done.json",
        mi=f"{RESULTS}/mi/bins-{{bins}}/{{run}}.zarr",
    output:
        directory(f"{RESULTS}/interventions/bins-{{bins}}/{{run}}.zarr"),
    params:
        run_dir=lambda wc: run_dir(wc.run),
        args=IV_ARGS,
    log:
        f"{RESULTS}/logs/interventions/bins-{{bins}}/{{run}}.log",
    threads: 2
    shell:
        "python -m trainer.intervene {params.run_dir} --mi {input.mi} --out {output} {params.args}"
        " --threads {threads} > {log} 2>&1"


rule transplant_pair:
    input:
        donor=f"{RESULTS}/runs/{{donor}}/done.json",
        recipient=f"{RESULTS}/runs/{{recipient}}/done.json",
        mi=f"{RESULTS}/mi/bins-{{bins}}/{{donor}}.zarr",
    output:
        directory(f"{RESULTS}/interventions/bins-{{bins}}/transplant-{{donor}}--{{recipient}}.zarr"),
    params:
        donor=lambda wc: run_dir(wc.donor),
        recipient=lambda wc: run_dir(wc.recipient),
        args=f"--q {' '.join(map(str, IV['q']))} --draws {IV['random_draws']} --layers {IV['layers']}",
    log:
        f"{RESULTS}/logs/interventions/bins-{{bins}}/transplant-{{donor}}--{{recipient}}.log",
    threads: 2
    shell:
        "python -m trainer.intervene {params.recipient} --donor {params.donor} --mi {input.mi}"
        " --out {output} {params.args} --threads {threads} > {log} 2>&1"
