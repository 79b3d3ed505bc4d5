# Config validation, the run grid, trained-run names, and helpers shared by the rules.
import itertools
import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)  # the project's packages, also without `pip install -e .`
from trainer.arch_names import unknown_arch  # noqa: E402  (reads torchvision's source, no torch)
from trainer.config import ConfigError, deep_merge, resolve_config  # noqa: E402  (no torch)
from latent_mi import contract as C  # noqa: E402  (cross-stage names and path templates)
from latent_mi.code_inputs import code_inputs  # noqa: E402  (the import graph, stdlib only)
from latent_mi.settings import identity_settings  # noqa: E402  (what defines a trained run)


def _typed(value):
    """Snakemake's --config parses nested values with YAML's BaseLoader (all strings):
    give string leaves their YAML type again ('10' -> 10, 'true' -> True)."""
    import yaml

    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, str):
        parsed = yaml.safe_load(value) if value.strip() else value
        return parsed if isinstance(parsed, (int, float, bool)) else value
    return value


def _schema_error(schema_file):
    """The most relevant schema error as 'path: message', e.g. 'grid.seed[0]: ...'."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(workflow.basedir, "workflow", "schemas", schema_file).read_text())
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(config)
    )
    if error is None:
        return None
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{path.lstrip('.') or '(top level)'}: {error.message}"


def _config_name():
    """The name of the config: the stem of the last --configfile ('default' for
    config/config.yaml or none); its outputs go to results/<name> unless `results` is set."""
    files = workflow.config_settings.configfiles
    stem = Path(files[-1]).stem if files else "config"
    return "default" if stem == "config" else stem


def code_files(entry):
    """The project files the command `entry` runs (a module run by `python -m`, or a script
    path): its file and every project module it imports, transitively, from the import graph
    (latent_mi/code_inputs.py). Declared as a rule's inputs, so editing one reruns the rule
    (Snakemake does not follow imports). Paths are relative to the working directory: a
    project copied or moved with its code keeps the same input paths, so nothing reruns."""
    return [os.path.relpath(p) for p in code_inputs(workflow.basedir, entry)]


def trained_names(run_configs):
    """Run name -> its trained run's folder name, <run>-<hash of its identity settings>: runtime
    settings (train.progress, train.live, workers, device, data location) are left out, so
    changing one retrains nothing (resume accepts a change of them too)."""
    return {
        run: C.trained_run_name(run, identity_settings(cfg)) for run, cfg in run_configs.items()
    }


class Unrecorded:
    """A params value Snakemake does not record (it records builtin-typed values only), so
    changing it reruns nothing: how a run runs (display, live analysis, workers), whose
    change must not retrain. It reads as its text in a shell command."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text

    def __repr__(self):  # constant, should a Snakemake version ever record a repr
        return "Unrecorded"


def pattern(names):
    """A wildcard constraint matching exactly `names` ('NONE' when there are none)."""
    return "|".join(map(re.escape, names)) or "NONE"


CONFIG_NAME = _config_name()
config.update(_typed(config))
config.setdefault("results", f"results/{CONFIG_NAME}")
try:
    validate(config, "../schemas/config.schema.yaml")
except WorkflowError as e:
    first = str(e).strip().splitlines()
    detail = next(
        (line for line in first if line.strip() and "Error validating" not in line), first[0]
    )
    raise WorkflowError(
        f"invalid config: {_schema_error('config.schema.yaml') or detail.strip()}"
    ) from None

RESULTS = config["results"]
CONDA_ENV = "../envs/latent-mi.yaml"  # relative to workflow/rules/ (snakemake --sdm conda)
CPU_PARTITION = config["slurm"]["cpu_partition"]  # resources only the SLURM executor reads
GPU_PARTITION = config["slurm"]["gpu_partition"]
BINS = [int(b) for b in config["mi"]["bins"]]
GRID_KEYS = ("arch", "activation", "regularizer", "seed")


def _grid_runs():
    runs = {}
    grid = config["grid"]
    for arch, act, reg, seed in itertools.product(*(grid[k] for k in GRID_KEYS)):
        point = {"arch": arch, "activation": act, "regularizer": reg, "seed": int(seed)}
        if any(all(point.get(k) == v for k, v in ex.items()) for ex in grid.get("exclude", [])):
            continue
        # torchvision:<name> -> torchvision-<name> (no ':' in file names)
        runs[f"{arch.replace(':', '-')}-{act}-{reg}-s{seed}"] = point
    return runs


RUNS = _grid_runs()
if not RUNS:
    raise WorkflowError("invalid config: grid selects no run (check grid and grid.exclude)")
for _arch in dict.fromkeys(config["grid"]["arch"]):
    if _why := unknown_arch(_arch):
        raise WorkflowError(f"invalid config: grid.arch: {_why}")

RUN_CONFIGS = {}  # run name -> the resolved trainer config it trains with
for _name, _point in RUNS.items():
    try:
        _overrides = config.get("arch_overrides", {}).get(_point["arch"], {})
        RUN_CONFIGS[_name] = resolve_config(data=deep_merge(deep_merge(config, _overrides), _point))
        RUN_CONFIGS[_name]["train"].pop("live", None)  # train.live: the --live flag instead
    except ConfigError as e:
        raise WorkflowError(f"invalid config for run {_name}: {e}") from None

# Trained runs live in RUNS_ROOT (results/runs for results/<config>), shared by every config:
# one that differs from another only in analysis, intervention, figure or runtime settings
# finds the same trained runs and retrains nothing.
RUNS_ROOT = C.runs_root(RESULTS)
if os.path.normpath(RUNS_ROOT) == os.path.normpath(RESULTS):
    raise WorkflowError(
        f"invalid config: results folder {RESULTS} is the folder of trained runs:"
        " rename the config file or set `results`"
    )
TRAINED = trained_names(RUN_CONFIGS)  # run name -> trained run folder name
TRAINED_CONFIGS = {TRAINED[run]: cfg for run, cfg in RUN_CONFIGS.items()}


def trained_done(run):
    """The done.json of grid run `run`'s trained run (an output of rule train_run)."""
    return expand(rules.train_run.output.manifest, trained=TRAINED[run])[0]


def seed_pairs():
    """(donor, recipient) run pairs for transplants: same arch/activation/regularizer, next seed."""
    pairs = []
    for name, point in RUNS.items():
        for other, q in RUNS.items():
            same = all(point[k] == q[k] for k in ("arch", "activation", "regularizer"))
            if same and q["seed"] == point["seed"] + 1:
                pairs.append((name, other))
    return pairs


wildcard_constraints:
    run=pattern(RUNS),
    donor=pattern(RUNS),
    recipient=pattern(RUNS),
    trained=pattern(TRAINED.values()),
    bins=r"\d+",


def twelve_bit_runs(twelve_bit):
    """Run name -> resolved trainer config of every point of the `twelve_bit` grid (Shwartz-Ziv & Tishby, Goldfeld et al.)."""
    runs = {}
    for act, beta, seed in itertools.product(
        twelve_bit["activation"], twelve_bit["train_beta"], twelve_bit["seed"]
    ):
        point = {
            "arch": "twelve_bit_mlp",
            "activation": act,
            "seed": int(seed),
            "dataset": {"name": "twelve_bit", "train_fraction": twelve_bit["train_fraction"]},
            "train": {**twelve_bit["train"], "epochs": twelve_bit["epochs"], "progress": False},
            "dump": {"epochs": "log", "log_count": twelve_bit["dump_count"]},
            "noise": {"beta": float(beta)},
        }
        runs[f"twelve_bit_mlp-{act}-beta{float(beta):g}-s{seed}"] = resolve_config(data=point)
    return runs


def intervention_files(bins, runs, pairs):
    """The interventions outputs of `runs` and the transplant outputs of `pairs` at `bins`."""
    files = expand(rules.interventions_run.output, bins=bins, run=runs)
    return files + [
        expand(rules.transplant_pair.output, bins=bins, donor=d, recipient=r)[0] for d, r in pairs
    ]
