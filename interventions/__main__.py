"""``python -m interventions``: see :mod:`interventions.cli`."""

from interventions.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
