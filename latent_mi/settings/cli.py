"""Command-line options from the settings table: :func:`add_arguments`, :func:`parse`.

A command's options of one config section (``mi`` -> ``python -m analyzer``,
``interventions`` -> ``python -m interventions``) take their flag, type, default, range and
help from the declarations. ``--settings-json`` passes the section's resolved settings
document (what the workflow does); options given on the command line win over it. Every
value, from either, is checked against the declared range: a bad one is one line naming
the option and the allowed values, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from latent_mi.settings.declarations import SETTINGS
from latent_mi.settings.schema import range_text, value_problem
from latent_mi.settings.table import Setting

_TYPES = {"integer": int, "number": float, "string": str}
SETTINGS_JSON = "--settings-json"


class HelpFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' once, never for required options or None defaults; a
    description with line breaks (a docstring, see :func:`plain_text`) is kept as written."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "%(default)" in text or action.required or default in (None, argparse.SUPPRESS):
            return text
        if not action.option_strings or isinstance(action, argparse._StoreTrueAction):
            return text
        return f"{text} (default: {str(default).replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``TOOL: error: ...``), exit status 2,
    and that reports unknown options before missing required ones."""

    def __init__(self, *args, tool: str, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.tool = tool

    def error(self, message: str):
        self.fail(f"{message} (see {self.prog} --help)")

    def fail(self, message: str):
        """One line ``TOOL: error: message``, exit status 2."""
        print(f"{self.tool}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def plain_text(doc: str) -> str:
    """A module docstring as --help text: reStructuredText roles and literals unmarked
    (``x`` -> x, :func:`f` -> f); line breaks kept (use RawDescriptionHelpFormatter)."""
    import re
    import textwrap

    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return textwrap.dedent(text).strip()


def section_settings(section: str) -> list[Setting]:
    """The settings of ``section`` that are command-line options, in table order."""
    return [s for s in SETTINGS.values() if s.section == section and s.flag]


def _scalar_type(s: Setting):
    if "enum" in s.value:
        return type(s.value["enum"][0])
    kinds = s.value.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return next(_TYPES[k] for k in kinds if k in _TYPES)


def add_arguments(parser: argparse.ArgumentParser, section: str) -> None:
    """Add every option of ``section`` (flag, type, default, range, help) and --settings-json."""
    for s in section_settings(section):
        dest = s.name
        text = s.help.replace("%", "%%")  # argparse formats help with %
        if s.value.get("type") == "boolean":
            parser.add_argument(
                s.flag,
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=s.command_default,
                help=text,
            )
            continue
        metavar = s.flag.lstrip("-").upper().replace("-", "_")
        kwargs: dict[str, Any] = {"dest": dest, "type": _scalar_type(s), "metavar": metavar}
        if s.many and not s.axis:
            kwargs["nargs"] = "+" if s.min_items else "*"
        if "enum" in s.value:
            kwargs["metavar"] = "{" + ",".join(map(str, s.value["enum"])) + "}"
        else:
            text = f"{text}; {range_text(s)}" if s.range_text or _has_range(s) else text
        parser.add_argument(s.flag, default=s.command_default, help=text, **kwargs)
    parser.add_argument(
        SETTINGS_JSON,
        metavar="JSON",
        help=f"the {section} settings as one JSON object of setting names (as in the workflow "
        f"config's {section} section; the workflow passes it), e.g. '{_example(section)}'; "
        "options given on the command line win",
    )


def _has_range(s: Setting) -> bool:
    return any(k in s.value for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))


def _example(section: str) -> str:
    s = section_settings(section)[0]
    return json.dumps({s.name: s.command_default})


def settings_document(text: str, section: str) -> dict:
    """The settings document of ``--settings-json``: a JSON object of this section's names."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{SETTINGS_JSON} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{SETTINGS_JSON} must be a JSON object, got {type(doc).__name__}")
    names = {s.name for s in section_settings(section)}
    unknown = sorted(set(doc) - names)
    if unknown:
        raise ValueError(
            f"{SETTINGS_JSON}: unknown setting {section}.{unknown[0]} "
            f"(known: {', '.join(sorted(names))})"
        )
    return doc


def parse(parser: Parser, argv: list[str] | None, section: str) -> argparse.Namespace:
    """Parse ``argv``: unknown options first, then missing required ones, then the settings
    document under the command-line options, then every value against its declared range."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        parser.parse_args(argv)  # prints the help (required options as required) and exits
    required = [a for a in parser._actions if a.required]
    for action in required:
        action.required = False
    try:
        pre, _ = parser.parse_known_args(argv)
        doc = {}
        if getattr(pre, "settings_json", None):
            try:
                doc = settings_document(pre.settings_json, section)
            except ValueError as e:
                parser.fail(str(e))
            parser.set_defaults(**doc)
        args, extra = parser.parse_known_args(argv)
    finally:
        for action in required:
            action.required = True
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    missing = [a for a in required if getattr(args, a.dest, None) is None]
    if missing:
        names = ", ".join("/".join(a.option_strings) or a.dest for a in missing)
        parser.error(f"the following arguments are required: {names}")
    given = _given_on_command_line(parser, argv)
    for s in section_settings(section):
        name = s.flag if (s.name in given or s.name not in doc) else f"{section}.{s.name}"
        problem = value_problem(s, getattr(args, s.name), name)
        if problem:
            parser.fail(problem)
    return args


def _given_on_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Dests of the options that appear in ``argv`` (``--flag`` or ``--flag=...``)."""
    flags = {o: a.dest for a in parser._actions for o in a.option_strings}
    return {flags[t.split("=", 1)[0]] for t in argv if t.split("=", 1)[0] in flags}


def resolved(args: argparse.Namespace, section: str) -> dict:
    """The section's settings document of a parse: name -> value."""
    return {s.name: getattr(args, s.name) for s in section_settings(section)}
