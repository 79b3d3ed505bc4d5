"""Move trained runs of the old layout into the shared folder of trained runs.

Before trained runs were keyed by their settings, each config kept its own copies in
``results/<config>/runs/<run>/``; now the workflow looks for ``results/runs/<run>-<hash>/``
(:func:`latent_mi.contract.run_dir`), where ``<hash>`` digests the run's identity settings
(:func:`latent_mi.settings.identity_settings`). This command reads each old run's config from
its activation store and moves the run folder to the name the workflow looks for::

    python -m latent_mi.move_runs results/default            # prints each move, then does it
    python -m latent_mi.move_runs results/default --dry-run  # prints only

A run whose new folder already exists (another config trained it) stays where it is (printed);
nothing is deleted. A run trained with a config that differs from what the current code
resolves (a setting added since, with its default) gets a name the workflow does not ask for:
``snakemake -n train`` then lists it as to be trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from latent_mi import contract as C


def stored_config(run_dir: Path) -> dict:
    """The resolved trainer config recorded in a run's activation store (attrs ``config``)."""
    meta = run_dir / C.STORE / "zarr.json"
    if not meta.is_file():
        raise ValueError(f"{run_dir} has no activation store ({C.STORE}/zarr.json)")
    attrs = json.loads(meta.read_text()).get("attributes", {})
    if C.ATTR_CONFIG not in attrs:
        raise ValueError(f"{run_dir / C.STORE} records no config (attrs {C.ATTR_CONFIG!r})")
    return json.loads(attrs[C.ATTR_CONFIG])


def planned_moves(results: Path) -> list[tuple[Path, Path]]:
    """(old run folder, new run folder) for every finished run in ``<results>/runs/``."""
    from latent_mi.settings import identity_settings

    moves = []
    for old in sorted((results / C.RUNS).glob(f"*/{C.DONE}")):
        run_dir = old.parent
        trained = C.trained_run_name(run_dir.name, identity_settings(stored_config(run_dir)))
        moves.append((run_dir, Path(C.run_dir(results, trained))))
    return moves


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m latent_mi.move_runs", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("results", type=Path, help="a config's results folder of the old layout")
    p.add_argument("--dry-run", action="store_true", help="print the moves, move nothing")
    args = p.parse_args(argv)
    try:
        moves = planned_moves(args.results)
    except (ValueError, json.JSONDecodeError) as e:
        print(f"move_runs: error: {e}", file=sys.stderr)
        return 1
    if not moves:
        print(f"no finished runs in {args.results / C.RUNS}")
    for old, new in moves:
        if new.exists():
            print(f"kept {old} ({new} exists)")
            continue
        print(f"{old} -> {new}")
        if not args.dry_run:
            new.parent.mkdir(parents=True, exist_ok=True)
            old.rename(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
