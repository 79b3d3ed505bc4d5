# One training job per run. Its declared output is only the completion manifest
# done.json: Snakemake deletes declared outputs before a job runs, and the resumable
# state (store, checkpoints, progress.json) must survive a killed job.


# Issue 26.1: `--cores N` beyond the cores this machine lets us use (CPU affinity) would run
# N threads' worth of jobs at once on fewer cores; a local run gets at most the usable cores.
USABLE_CORES = len(os.sched_getaffinity(0))
if workflow.local_exec and (workflow.global_resources["_cores"].value or 0) > USABLE_CORES:
    from snakemake.resources import Resource

    workflow.global_resources["_cores"] = Resource("_cores", USABLE_CORES)


rule train:
    input:
        expand(f"{C.run_dir(RESULTS, '{run}')}/{C.DONE}", run=RUNS),


rule train_run:
    output:
        manifest=f"{C.run_dir(RESULTS, '{run}')}/{C.DONE}",
    params:
        cfg=lambda wc: shlex.quote(json.dumps(RUN_CONFIGS[wc.run], sort_keys=True)),
        out=lambda wc: run_dir(wc.run),
        live="--live" if config.get("train", {}).get("live") else "",
    log:
        f"{RESULTS}/logs/train/{{run}}.log",
    resources:
        gpu=1,  # the one GPU key (never also `gres`): one trainer per GPU
        slurm_partition=GPU_PARTITION,
    threads: min(8, USABLE_CORES)  # never more than the usable cores (26.1)
    conda:
        CONDA_ENV
    shell:
        "LATENT_MI_EXIT_WITH=$PPID OMP_NUM_THREADS={threads} python -m trainer --config-json {params.cfg} --cores {threads} {params.live} --out {params.out} > {log} 2>&1"
