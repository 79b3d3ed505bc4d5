"""``python -m interventions``: interventions on one run (and transplants into another).

Options, defaults and ranges: the ``interventions`` settings (latent_mi/settings). Parsing
imports no torch, so ``--help`` and option errors are immediate.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from latent_mi import contract as C
from latent_mi.settings import Parser, add_arguments, parse


def build_parser() -> Parser:
    p = Parser(
        prog="python -m interventions",
        tool="intervene",
        description=(
            "MI-ranked inference-time interventions on a run's best checkpoint: global knockouts "
            "(zero / energy-preserving), shuffles, Gaussian perturbations, class-targeted knockouts, "
            "cover vs redundant sets, skip gains; with --donor, transplants of the donor's ranked "
            "channels into this run instead. Streams the validation set in batches, one site at a time."
        ),
    )
    p.add_argument("run_dir", help="run directory (the recipient for transplants)")
    p.add_argument("--mi", required=True, help="the analyzer's MI Dataset of the ranked run (Zarr)")
    p.add_argument("--out", required=True, help="output Zarr path")
    p.add_argument("--donor", help="donor run directory: do transplants donor -> run_dir")
    add_arguments(p, "interventions")
    return p


def main(argv=None) -> int:
    try:
        args = parse(build_parser(), argv, "interventions")
    except SystemExit as e:  # --help (0) or a bad option (2), already reported in one line
        return int(e.code or 0)
    import torch

    from interventions.compute import compute, is_old_output
    from interventions.stream import pick_device
    from latent_mi import cpu_slots, outputs

    out = Path(args.out)
    t0 = time.perf_counter()
    try:  # torch threads: the CPU slots it leases, whatever --threads asks (latent_mi/cpu_slots.py)
        with cpu_slots.lease(args.threads, exact=True) as slots:
            torch.set_num_threads(slots.threads)
            device = pick_device(args.device)
            # refuses what is not ours at ``out`` before any work; locks ``out`` while writing
            with outputs.safe_output(out, C.KIND_INTERVENTIONS, recognise=is_old_output) as tmp:
                ds = compute(args, device)
                with warnings.catch_warnings():  # consolidated metadata is not in the v3 spec
                    warnings.simplefilter("ignore", UserWarning)
                    ds.to_zarr(tmp, mode="w-", consolidated=True, zarr_format=3)
    except (ValueError, FileNotFoundError, KeyError, outputs.OutputError) as e:
        print(f"intervene: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        line = outputs.write_failure(e, out)
        if line is None:
            raise
        print(f"intervene: error: {line}", file=sys.stderr)
        return 1
    print(f"wrote {out} in {time.perf_counter() - t0:.1f}s on {device}", file=sys.stderr)
    return 0
