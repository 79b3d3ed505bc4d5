"""``python -m trainer``: train one run and write its run directory."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from latent_mi.settings import SETTINGS, HelpFormatter, value_problem
from trainer.config import ConfigError, resolve_config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainer",
        formatter_class=HelpFormatter,
        description=(
            "Train one CNN run and dump the GAP activations of every validation sample at every "
            "measurement site, for epoch 0 (initialization) and every epoch after, into "
            "OUT/activations.zarr, with checkpoints in OUT/checkpoints. A killed run started "
            "again with the same config resumes from its last complete epoch."
        ),
        epilog=(
            "Overrides are dotted keys parsed as YAML, e.g.: arch=vgg16 activation=tanh "
            "train.epochs=30 width=0.25 dataset.name=imagenette dataset.root=/data regularizer=hsic "
            "hsic.lambda=0.01 dump.dtype=float16. Every key, its default and range: the README's "
            "configuration table (latent_mi/settings/declarations.py)."
        ),
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--config", help="YAML config file (the workflow's config file works too)")
    p.add_argument("--config-json", help="config as a JSON string (used by the workflow)")
    p.add_argument("--out", required=True, help="run directory to write (or resume)")
    p.add_argument(
        "--workers",
        help="DataLoader workers for this process (an integer >= 0 or auto), overriding "
        "train.num_workers without changing the run's identity",
    )
    p.add_argument(
        "--cores",
        type=int,
        help="cores asked for this process (the workflow passes Snakemake's threads): it "
        "uses as many as it can lease of its CPU affinity, at least 1 (latent_mi/cpu_slots.py); "
        "auto workers are derived from them (default: the CPU affinity)",
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="run the live analyzer beside training (TensorBoard in OUT/tensorboard, OUT/live.csv;"
        " the workflow: train.live)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return p


def _config_json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--config-json is not valid JSON: {e}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        data = _config_json(args.config_json) if args.config_json else None
        cfg = resolve_config(args.config, args.overrides, data)
    except ConfigError as e:
        print(f"trainer: error: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(cfg, indent=2))
        return 0
    workers = args.workers
    if workers is not None and workers != "auto":
        workers = int(workers) if workers.isdigit() else workers
        problem = value_problem(SETTINGS["train.num_workers"], workers, "--workers")
        if problem:
            print(f"trainer: error: {problem}", file=sys.stderr)
            return 2
    from latent_mi import cpu_slots
    from latent_mi.outputs import write_failure
    from trainer.train import DivergedError, Runtime, run  # heavy imports only when training

    try:  # the cores it leases, not --cores, are the cores it uses (latent_mi/cpu_slots.py)
        with cpu_slots.lease(
            args.cores, say=logging.getLogger("trainer").info, exact=True, verbose=True
        ) as held:
            runtime = Runtime(workers=workers, cores=held.threads, live=args.live)
            done = run(cfg, args.out, runtime)
    except cpu_slots.SlotError as e:
        print(f"trainer: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, RuntimeError, DivergedError) as e:
        print(f"trainer: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        message = write_failure(e, args.out)
        if message is None:
            raise
        print(f"trainer: error: {message}", file=sys.stderr)
        return 1
    print(json.dumps(done))
    return 0
