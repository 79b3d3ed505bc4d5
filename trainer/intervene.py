"""``python -m trainer.intervene``: interventions on one run (and transplants into another)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch
import xarray as xr

from latent_mi import contract as C
from latent_mi import outputs

from . import interventions as iv


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainer.intervene",
        description=(
            "MI-ranked inference-time interventions on a run's best checkpoint: global knockouts "
            "(zero / energy-preserving), shuffles, Gaussian perturbations, class-targeted knockouts; "
            "with --donor, transplants of the donor's top-MI channels into this run instead."
        ),
    )
    p.add_argument("run_dir", help="run directory (the recipient for transplants)")
    p.add_argument("--mi", required=True, help="the analyzer's MI Dataset of the ranked run (Zarr)")
    p.add_argument("--out", required=True, help="output Zarr path")
    p.add_argument("--donor", help="donor run directory: do transplants donor -> run_dir")
    p.add_argument(
        "--q", type=float, nargs="+", default=[0.1, 0.25, 0.5, 0.75], help="MI-mass levels"
    )
    p.add_argument(
        "--class-q",
        type=float,
        nargs="+",
        default=[0.25, 0.5],
        help="class-targeted MI-mass levels",
    )
    p.add_argument("--draws", type=int, default=3, help="random control draws")
    p.add_argument(
        "--noise",
        type=float,
        nargs="*",
        default=[0.5, 1.0],
        help="perturbation levels (x channel sd)",
    )
    p.add_argument("--layers", default="all", choices=["all", "last", "last-third"])
    p.add_argument(
        "--skip-gains",
        type=float,
        nargs="+",
        default=[0.0, 0.5, 1.0, 1.5],
        help="ResNets: identity-path gains g for the skip-gain sweep",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random controls")
    p.add_argument("--threads", type=int, default=None)
    return p


def _is_result(path: Path) -> bool:
    """An interventions result written before outputs carried a marker (by its root attrs)."""
    attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    return {"ranking", "mass_rule", "mi_source"} <= set(attrs)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.perf_counter()
    try:
        # refuse a foreign OUT before any work; safe_output below checks again under the lock
        outputs.check_replaceable(out, C.KIND_INTERVENTIONS, _is_result)
        channel_mi, class_mi, mi_ds = iv.mi_at_best(args.mi)
        model, cfg, sites = iv.load_checkpoint(args.run_dir)
        images, labels = iv.validation_tensors(cfg)
        chosen = iv.choose_layers(sites, args.layers)
        if args.donor:
            donor, donor_cfg, _ = iv.load_checkpoint(args.donor)
            if donor_cfg["arch"] != cfg["arch"] or donor_cfg["width"] != cfg["width"]:
                raise ValueError(
                    f"donor {args.donor} and recipient {args.run_dir} differ in architecture"
                )
            ds = iv.transplants(
                donor,
                model,
                images,
                labels,
                channel_mi,
                [s.name for s in chosen],
                args.q,
                args.draws,
                args.seed,
            )
            ds.attrs.update(donor=str(args.donor), recipient=str(args.run_dir))
        else:
            caches = {s.name: iv.cache_site(model, s, images) for s in chosen}
            glob = iv.global_interventions(
                model, chosen, caches, labels, channel_mi, args.q, args.draws, args.noise, args.seed
            )
            klass = iv.class_knockouts(
                model,
                chosen,
                caches,
                labels,
                class_mi,
                args.class_q,
                args.draws,
                args.seed,
                int(mi_ds.sizes["label"]),
            )
            parts = [glob, klass.rename(q="class_q")]
            best = int(mi_ds.attrs[C.ATTR_BEST_EPOCH])
            for site in chosen:  # appendix D where all-pairs channel MI was computed
                if site.name in mi_ds.cc_layer.values and best in mi_ds.cc_epoch.values:
                    pair_mi = mi_ds.channel_channel_mi.sel(cc_epoch=best, cc_layer=site.name).values
                    n = site.channels
                    cover = iv.cover_vs_redundant(
                        model,
                        site,
                        caches[site.name],
                        labels,
                        channel_mi[site.name],
                        pair_mi[:n, :n],
                        args.q,
                    )
                    parts.append(
                        cover.rename(q="cover_q").expand_dims(cover_layer=iv._names([site.name]))
                    )
            if cfg["arch"].startswith("resnet"):
                parts.append(iv.skip_gain_sweep(model, images, labels, args.skip_gains))
            ds = xr.merge(parts)
        for key in C.MI_COORDS:
            if key in mi_ds.coords:
                ds = ds.assign_coords({key: mi_ds[key].values})
        ds.attrs.update(
            ranking="channel-label MI I(T_lc;Y) (class: I(T_lc;1[Y=k])) at the best-accuracy epoch",
            mass_rule="top set = fewest highest-MI channels whose share of the layer's MI reaches q; "
            "random and bottom sets have the same size",
            checkpoint="best",
            mi_source=str(Path(args.mi).resolve()),
            config=json.dumps(cfg),
        )
        with outputs.safe_output(out, C.KIND_INTERVENTIONS, _is_result) as tmp:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", UserWarning
                )  # consolidated metadata is not in the v3 spec
                ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=3)
    except (ValueError, FileNotFoundError, KeyError, outputs.OutputError) as e:
        print(f"intervene: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
