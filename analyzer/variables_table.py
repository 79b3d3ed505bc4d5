"""The README's table of the MI Dataset's variables, written from the registry
(:data:`analyzer.variables.VARIABLES`) between the README's marker comments.

    python -m analyzer.variables_table --write README.md   # regenerate
    python -m analyzer.variables_table --check README.md   # exit 1 if it differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analyzer.variables import VARIABLES


def markdown_table() -> str:
    """The README table of the MI Dataset's variables, one row per registry entry."""
    rows = ["| variable | units | definition |", "| --- | --- | --- |"]
    for v in VARIABLES.values():
        name = f"{v.name}({', '.join(v.dims)})" if v.dims else v.name
        rows.append(f"| `{name}` | {v.units} | {v.description} |")
    return "\n".join(rows)


BEGIN, END = "<!-- mi-variables:begin -->", "<!-- mi-variables:end -->"


def readme_table(text: str) -> str:
    """The table between the markers of a README text (ValueError when the markers are absent)."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"README has no {BEGIN} ... {END} block")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m analyzer.variables_table", description="The MI Dataset's variable table."
    )
    p.add_argument("--check", metavar="README", help="exit 1 if README's table differs")
    p.add_argument("--write", metavar="README", help="rewrite README's table in place")
    args = p.parse_args(argv)
    table = markdown_table()
    if args.check:
        if readme_table(Path(args.check).read_text()) != table:
            print(
                f"{args.check}: MI variable table differs from analyzer/variables.py; run "
                f"python -m analyzer.variables_table --write {args.check}",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.write:
        path = Path(args.write)
        text = path.read_text()
        readme_table(text)
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
        return 0
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
