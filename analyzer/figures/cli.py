"""``python -m analyzer.figures MI.zarr [...] --out DIR``: draw figures of any set of runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analyzer.figures.captions import FIGURES, names, readme_section, readme_with_section


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analyzer.figures",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Draw the figures of any set of MI Datasets (e.g. by-hand runs) into DIR. Runs are "
            "grouped by (arch, activation, regularizer), seeds are the spread. Intervention "
            "figures are drawn when --interventions are given. Each figure's caption is "
            "printed; --list shows the registry."
        ),
    )
    p.add_argument("mi", nargs="*", help="MI Datasets (.zarr), or folders holding them")
    p.add_argument("--out", help="output folder (created)")
    p.add_argument(
        "--interventions",
        nargs="+",
        default=[],
        help="intervention results (.zarr, transplant-*.zarr) or folders holding them",
    )
    p.add_argument("--names", nargs="+", choices=list(FIGURES), help="figures (default: all)")
    p.add_argument("--formats", nargs="+", default=["png"], choices=["png", "pdf", "svg"])
    p.add_argument("--list", action="store_true", help="print the figure registry and exit")
    p.add_argument(
        "--readme", action="store_true", help="print the README's 'Reading the figures' text"
    )
    p.add_argument("--write-readme", metavar="README", help="regenerate that text in README")
    return p


def expand(paths: list[str]) -> list[Path]:
    """Zarr stores as given; a folder that is not a store stands for the stores in it."""
    out = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        if p.is_dir() and not (p / "zarr.json").exists() and not (p / ".zgroup").exists():
            found = sorted(p.glob("*.zarr"))
            if not found:
                raise FileNotFoundError(f"{p} holds no .zarr store")
            out += found
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.write_readme:
        path = Path(args.write_readme)
        path.write_text(readme_with_section(path.read_text()))
        return 0
    if args.list or args.readme:
        if args.readme:
            print(readme_section(), end="")
        else:
            for f in FIGURES.values():
                print(f"{f.name} ({f.source}): {f.title}")
        return 0
    if not args.mi or not args.out:
        print("analyzer.figures: error: give MI Datasets and --out DIR", file=sys.stderr)
        return 2
    from analyzer.figures import draw, load_runs, run_keys
    from analyzer.figures.captions import caption
    from analyzer.figures.interventions import is_transplant

    try:
        mi_paths, iv_paths = expand(args.mi), expand(args.interventions)
        ds = load_runs(mi_paths)
    except (FileNotFoundError, ValueError) as e:
        print(f"analyzer.figures: error: {e}", file=sys.stderr)
        return 1
    has_hsic = "hsic" in {str(v) for v in ds.regularizer.values.ravel()}
    is_twelve_bit = {str(v) for v in ds.dataset.values.ravel()} == {"twelve_bit"}
    wanted = args.names or names(
        hsic=has_hsic, transplants=any(map(is_transplant, iv_paths)), twelve_bit=is_twelve_bit
    )
    out = Path(args.out)
    bins = "/".join(sorted({str(int(b)) for b in ds.bins.values.ravel()}))
    for name in wanted:
        if FIGURES[name].source == "interventions" and not iv_paths:
            continue
        try:
            drawn = draw(name, ds, iv_paths, out / name, args.formats)
        except OSError as e:  # read-only folder, full disk, a file where a folder should be
            where = e.filename or out
            print(
                f"analyzer.figures: error: cannot write {name} to {where}: {e.strerror or e}",
                file=sys.stderr,
            )
            return 1
        runs = run_keys(ds)  # N = the runs drawn: intervention results, or transplant pairs
        if FIGURES[name].source == "interventions":
            runs = sum(is_transplant(p) == (name == "transplants") for p in iv_paths)
        print(f"{', '.join(map(str, drawn.paths))}\n  {caption(name, bins, runs)}")
    return 0
