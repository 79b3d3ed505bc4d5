"""``python -m analyzer STORE --bins B --out OUT``: the MI Dataset of one run."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

from latent_mi import contract as C
from latent_mi.settings import Parser, add_arguments, parse, resolved


def build_parser() -> Parser:
    """The analyzer's options: the ``mi`` settings of latent_mi/settings/declarations.py."""
    p = Parser(
        prog="python -m analyzer",
        tool="analyzer",
        description=(
            "Compute every MI tensor of one run (channel-label, class, input, layer-level, "
            "layer-layer, channel-channel MI; Gini, Top-k share, normalized entropy; dynamics) "
            "from a trainer activation store, and write them as one labelled xarray Dataset "
            "(Zarr) at OUT. Reopen it with xr.open_zarr(OUT)."
        ),
    )
    p.add_argument("store", help="activation store (RUN_DIR/activations.zarr)")
    p.add_argument("--out", required=True, help="output Zarr path, e.g. byhand/mi/bins-20/RUN.zarr")
    add_arguments(p, "mi")
    return p


MAX_JOINT_CELLS = 2**26  # joint bins of the *_pca estimates: bins ** pca_components at most


def check_args(args) -> str | None:
    """One line naming an option whose value is in its declared range but unusable with the
    others, or None (the declared ranges are checked while parsing)."""
    most = max(k for k in range(1, 27) if args.bins**k <= MAX_JOINT_CELLS)
    if args.pca_components > most:
        return (
            f"--pca-components {args.pca_components} at --bins {args.bins}: the joint bin of the "
            f"*_pca estimates has bins^components cells; use at most {most} components "
            f"(2^26 cells)"
        )
    return None


# mi setting -> LayerInfoOptions field (the whole-layer quantities, analyzer/layer_info.py)
LAYER_INFO = {
    "layer_binning": "rule",
    "layer_bin_size": "bin_size",
    "force_whole_layer": "force",
    "bin_sizes": "bin_sizes",
    "noise_betas": "betas",
    "noise_samples": "noise_samples",
}


def options_of(args, options_class, layer_info_class):
    """The analysis options of a parse: every ``mi`` setting named like an Options field goes
    there, the whole-layer ones (:data:`LAYER_INFO`) to LayerInfoOptions; lists as tuples."""
    doc = {k: tuple(v) if isinstance(v, list) else v for k, v in resolved(args, "mi").items()}
    if doc["cc_layers"] in (("last",), ("all",)):
        doc["cc_layers"] = doc["cc_layers"][0]
    else:
        doc["cc_layers"] = list(doc["cc_layers"])
    layer_info = layer_info_class(**{field: doc[name] for name, field in LAYER_INFO.items()})
    names = {f.name for f in dataclasses.fields(options_class)} - {"layer_info"}
    return options_class(**{k: v for k, v in doc.items() if k in names}, layer_info=layer_info)


@contextlib.contextmanager
def local_scheduler(args, client):
    """The dask config of this analysis: a cluster's (``client``), or local threads or
    processes, as many as the CPU slots this process leases (latent_mi/cpu_slots.py: all
    analyzer, trainer and interventions processes together never run more threads than the
    usable cores, whatever --threads asks), held until the analysis ends."""
    if client is not None:
        yield {}
        return
    from latent_mi import cpu_slots

    with cpu_slots.lease(args.processes or args.threads, numba_too=True) as held:
        scheduler = "processes" if args.processes else "threads"
        yield {"scheduler": scheduler, "num_workers": held.threads}


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(build_parser(), argv, "mi")
    except SystemExit as e:  # --help (0) or a bad option (2), already reported in one line
        return int(e.code or 0)
    problem = check_args(args)
    if problem:
        print(f"analyzer: error: {problem}", file=sys.stderr)
        return 2
    import dask

    from analyzer.activations import StoreError, corrupt_chunk_message
    from analyzer.layer_info import LayerInfoOptions
    from analyzer.mi_tensors import Options, analyze
    from analyzer.prepare import OptionError
    from latent_mi.outputs import OutputError, write_failure

    store = Path(args.store)
    if store.is_dir() and (store / C.STORE).exists():
        print(
            f"analyzer: error: {store} is a run folder; give its store: {store / C.STORE}",
            file=sys.stderr,
        )
        return 2
    opts = options_of(args, Options, LayerInfoOptions)
    client = None
    if args.scheduler:
        from distributed import Client

        from analyzer import cluster_memory

        client = Client(args.scheduler)
        workers = cluster_memory.worker_memory(client)
        problem = cluster_memory.preflight(workers, store)
        if problem:
            client.close()
            print(f"analyzer: error: {problem}", file=sys.stderr)
            return 1
    t0 = time.perf_counter()
    try:
        with local_scheduler(args, client) as config, dask.config.set(config):
            out = analyze(
                args.store,
                args.out,
                opts,
                progress=args.progress,
                allow_running=args.allow_running,
            )
    except OptionError as e:  # a value in its declared range that this store cannot use
        print(f"analyzer: error: {e}", file=sys.stderr)
        return 2
    except (StoreError, OutputError, ValueError) as e:
        print(f"analyzer: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a corrupt chunk or a failed write surfaces here, from inside dask
        message = write_failure(e, args.out)
        if message is None and client is not None:
            message = cluster_memory.killed_message(e, workers, args.store)
        message = message or corrupt_chunk_message(args.store)
        if message is None:
            message = f"reading {args.store} failed: {type(e).__name__}: {e}"
        print(f"analyzer: error: {message}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
    print(f"wrote {out} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0
