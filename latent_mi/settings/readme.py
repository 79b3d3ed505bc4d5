"""The README's configuration tables, generated from the settings table between markers:
every workflow setting (key, kind, meaning and range, default, ``config/config.yaml``'s value)
and the keys a resumed run may change."""

from __future__ import annotations

from pathlib import Path

import yaml

from latent_mi.settings.declarations import SETTINGS
from latent_mi.settings.schema import range_text
from latent_mi.settings.table import COMPUTED, REQUIRED, Setting

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "config.yaml"
MARKERS = {
    "settings": ("<!-- settings-table:start (generated) -->", "<!-- settings-table:end -->"),
    "may-change": ("<!-- may-change-table:start (generated) -->", "<!-- may-change-table:end -->"),
}


def _shown(value) -> str:
    """A value as a YAML flow literal in backticks: `[png, pdf]`, `0.0005`, `''`."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return f"`{text}`"


def _default(s: Setting) -> str:
    if s.default is REQUIRED:
        return "required"
    if s.default is COMPUTED:
        return "(see meaning)"
    return _shown(s.default)


def _lookup(config: dict, key: str):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return _shown(node)


def _meaning(s: Setting) -> str:
    """The help text, then the allowed values (a list: of each item)."""
    text, rng = s.help, range_text(s)
    if not s.workflow:
        text = f"trainer config only (the workflow sets it): {text}"
    if s.many:
        text = f"a list: {text}"
    if not rng.startswith(("of type", "an integer")) and rng not in s.help:
        text = f"{text}; {'each ' if s.many else ''}{rng}"
    return text.replace("|", "\\|")


def readme_table(example: Path = EXAMPLE) -> str:
    """The configuration table (markdown) of every workflow and trainer setting, in declaration
    order, with ``example``'s values (``config/config.yaml``)."""
    config = yaml.safe_load(example.read_text()) or {}
    rows = [
        "| key | kind | meaning | default | `config/config.yaml` |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS.values():
        if not (s.workflow or s.trainer):
            continue
        shown = _lookup(config, s.key) or ""
        rows.append(f"| `{s.key}` | {s.kind} | {_meaning(s)} | {_default(s)} | {shown} |")
    return "\n".join(rows)


def may_change_table() -> str:
    """The trainer settings a resumed run may change (markdown)."""
    rows = ["| key a rerun may change | why |", "| --- | --- |"]
    rows += [
        f"| `{k}` | {s.kind}: {s.help} |"
        for k, s in SETTINGS.items()
        if s.trainer and s.kind != "identity"
    ]
    return "\n".join(rows)


TABLES = {"settings": readme_table, "may-change": may_change_table}


def replace_tables(text: str, name: str = "README.md") -> str:
    """``text`` with every generated table replaced; a missing marker raises ValueError."""
    for key, (start, end) in MARKERS.items():
        if start not in text or end not in text:
            raise ValueError(f"{name} has no {start} ... {end} markers")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{TABLES[key]()}\n{end}{tail}"
    return text
