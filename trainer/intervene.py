"""``python -m trainer.intervene``: see :mod:`trainer.interventions.cli`."""

from trainer.interventions.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
