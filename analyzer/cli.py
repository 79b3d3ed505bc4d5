"""``python -m analyzer STORE --bins B --out OUT``: the MI Dataset of one run."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from latent_mi import contract as C


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analyzer",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Compute every MI tensor of one run (channel-label, class, input, layer-level, "
            "layer-layer, channel-channel MI; Gini, Top-k share, normalized entropy; dynamics) "
            "from a trainer activation store, and write them as one labelled xarray Dataset "
            "(Zarr) at OUT. Reopen it with xr.open_zarr(OUT)."
        ),
    )
    p.add_argument("store", help="activation store (RUN_DIR/activations.zarr)")
    p.add_argument("--bins", type=int, default=20, help="equal-width bins per variable")
    p.add_argument("--out", required=True, help="output Zarr path, e.g. byhand/mi/bins-20/RUN.zarr")
    p.add_argument(
        "--run", help="run name stored as the scalar coord 'run'; None: the run directory's name"
    )
    p.add_argument("--topk", type=float, nargs="+", default=[1, 5, 10, 20], help="Top-k%% levels")
    p.add_argument(
        "--pair-samples", type=int, default=64, help="channel pairs per layer pair for layer_mi"
    )
    p.add_argument(
        "--pca-components", type=int, default=2, help="components for the *_pca layer estimates"
    )
    p.add_argument(
        "--cc-layers",
        nargs="+",
        default=["last"],
        help="layers for all-pairs channel MI: 'last', 'all', or layer names",
    )
    p.add_argument(
        "--cc-epochs",
        nargs="+",
        default=["init", "best", "last"],
        choices=["init", "best", "last"],
        help="epochs for all-pairs channel MI",
    )
    p.add_argument(
        "--miller-madow", action="store_true", help="apply the Miller-Madow bias correction"
    )
    p.add_argument("--threads", type=int, default=None, help="dask threads; None: all cores")
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="use dask's processes scheduler with this many worker processes instead of threads",
    )
    p.add_argument(
        "--scheduler",
        help="dask.distributed scheduler address (workers must see STORE and OUT's folder)",
    )
    p.add_argument(
        "--allow-running",
        action="store_true",
        help="analyze the complete epochs of a store still being written (rerun later: only "
        "new epochs are computed and appended)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the channel-pair samples")
    p.add_argument(
        "--permutations",
        type=int,
        default=20,
        help="seeded label permutations of the null p-values and band (null means are exact; 0: no null)",
    )
    w = p.add_argument_group("whole-layer quantities (seeds 003/002; analyzer/layer_info.py)")
    w.add_argument(
        "--layer-binning",
        choices=["auto", "size", "range"],
        default="auto",
        help="layer_input_mi/layer_label_mi rule: fixed bin size floor(t/b), or B bins over the "
        "layer's observed range; auto: size for tanh stores, range otherwise (default auto)",
    )
    w.add_argument(
        "--layer-bin-size", type=float, help="b of the size rule (default 2/B: B bins on [-1, 1])"
    )
    w.add_argument(
        "--force-whole-layer",
        action="store_true",
        help="bin layers wider than 16 units as one joint pattern too (it saturates: H -> ln N)",
    )
    w.add_argument(
        "--bin-sizes",
        type=float,
        nargs="+",
        help="bin sizes of binned_input_mi (default 1e-4 3e-4 1e-3 3e-3 1e-2 3e-2 1e-1)",
    )
    w.add_argument(
        "--noise-betas",
        type=float,
        nargs="*",
        default=[],
        help="noise sd beta of noisy_input_mi and its bounds (default: none, not computed)",
    )
    w.add_argument(
        "--noise-samples", type=int, default=1, help="noise draws per sample (default 1)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def check_args(args) -> str | None:
    """One line naming the first out-of-range option, or None."""
    if not 2 <= args.bins <= 255:
        return f"--bins must be in [2, 255], got {args.bins}"
    bad = [k for k in args.topk if not 0 < k <= 100]
    if bad:
        return f"--topk levels are percentages in (0, 100], got {bad[0]:g}"
    if args.pair_samples < 1:
        return f"--pair-samples must be at least 1, got {args.pair_samples}"
    if args.pca_components < 1:
        return f"--pca-components must be at least 1, got {args.pca_components}"
    if args.threads is not None and args.threads < 1:
        return f"--threads must be at least 1, got {args.threads}"
    if args.processes is not None and args.processes < 1:
        return f"--processes must be at least 1, got {args.processes}"
    bad = [b for b in (args.noise_betas or []) + (args.bin_sizes or []) if not b > 0]
    if bad or (args.layer_bin_size is not None and not args.layer_bin_size > 0):
        return f"--noise-betas, --bin-sizes and --layer-bin-size must be > 0, got {(bad or [args.layer_bin_size])[0]:g}"
    if args.noise_samples < 1:
        return f"--noise-samples must be at least 1, got {args.noise_samples}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import dask

    from analyzer.activations import StoreError, corrupt_chunk_message
    from analyzer.layer_info import DEFAULT_BIN_SIZES, LayerInfoOptions
    from analyzer.mi_tensors import Options, analyze
    from latent_mi.outputs import OutputError, write_failure

    problem = check_args(args)
    if problem:
        print(f"analyzer: error: {problem}", file=sys.stderr)
        return 2
    store = Path(args.store)
    if store.is_dir() and (store / C.STORE).exists():
        print(
            f"analyzer: error: {store} is a run folder; give its store: {store / C.STORE}",
            file=sys.stderr,
        )
        return 2
    cc_layers = args.cc_layers[0] if args.cc_layers in (["last"], ["all"]) else args.cc_layers
    opts = Options(
        bins=args.bins,
        topk=tuple(args.topk),
        pair_samples=args.pair_samples,
        pca_components=args.pca_components,
        miller_madow=args.miller_madow,
        cc_layers=cc_layers,
        cc_epochs=tuple(args.cc_epochs),
        seed=args.seed,
        permutations=args.permutations,
        layer_info=LayerInfoOptions(
            rule=args.layer_binning,
            bin_size=args.layer_bin_size,
            force=args.force_whole_layer,
            bin_sizes=tuple(args.bin_sizes or DEFAULT_BIN_SIZES),
            betas=tuple(args.noise_betas),
            noise_samples=args.noise_samples,
        ),
        run=args.run,
    )
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
    if client is not None:
        config = {}
    elif args.processes:
        config = {"scheduler": "processes", "num_workers": args.processes}
    else:
        config = {"scheduler": "threads", "num_workers": args.threads}
    t0 = time.perf_counter()
    try:
        with dask.config.set(config):
            out = analyze(
                args.store,
                args.out,
                opts,
                progress=not args.no_progress,
                allow_running=args.allow_running,
            )
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
