# One training job per trained run, in the shared RUNS_ROOT (results/runs/<run>-<hash>/, named
# by its identity settings: common.smk). Its declared output is only the completion manifest
# done.json: Snakemake deletes declared outputs before a job runs, and the resumable state
# (store, checkpoints, progress.json) must survive a killed job. The trainer's code is not an
# input: editing it never retrains a finished run (README, "What reruns when").


# Issue 26.1: a job never gets more threads than the cores this machine lets us use (CPU
# affinity), whatever --cores says; the trainer caps its torch threads the same way. (Capping
# Snakemake's total cores here is not possible at parse time: the executor is not known yet,
# and a cluster profile's nodes have their own cores.)
USABLE_CORES = len(os.sched_getaffinity(0))


rule train_run:
    output:
        manifest=C.done_path(C.run_dir(RESULTS, "{trained}")),
    log:
        C.log_path(RUNS_ROOT, "train", "{trained}"),
    conda:
        CONDA_ENV
    threads: min(8, USABLE_CORES)  # never more than the usable cores (26.1)
    resources:
        gpu=1,  # the one GPU key (never also `gres`): one trainer per GPU
        slurm_partition=GPU_PARTITION,
    params:
        # the whole run config, runtime keys included; only its identity is recorded (the
        # folder name), so a change of train.progress, train.live or workers retrains nothing
        cfg=lambda wc: Unrecorded(
            shlex.quote(json.dumps(TRAINED_CONFIGS[wc.trained], sort_keys=True))
        ),
        out=lambda wc, output: os.path.dirname(output.manifest),
        live=Unrecorded("--live" if config.get("train", {}).get("live") else ""),
    shell:
        "LATENT_MI_EXIT_WITH=$PPID OMP_NUM_THREADS={threads} python -m trainer --config-json {params.cfg} --cores {threads} {params.live} --out {params.out} > {log} 2>&1"


rule train:
    input:
        [trained_done(run) for run in RUNS],
