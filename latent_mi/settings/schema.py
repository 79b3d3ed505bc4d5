"""JSON schemas and defaults derived from the settings table: the workflow config's schema
(``workflow/schemas/config.schema.yaml``), the trainer's run-config schema and defaults, and
the range of one setting in words (for one-line messages)."""

from __future__ import annotations

import copy
from typing import Any

from latent_mi.settings.declarations import SECTIONS, SETTINGS
from latent_mi.settings.table import COMPUTED, REQUIRED, Setting

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
WORKFLOW_DESCRIPTION = (
    "Workflow config (config/config.yaml, config/paper.yaml). GENERATED from "
    "latent_mi/settings/declarations.py by `python -m latent_mi.settings --write-schema`: "
    "edit the declarations, not this file. The trainer sections are validated again, per run "
    "and with their defaults, by trainer.config."
)


def setting_schema(s: Setting, workflow: bool, with_default: bool) -> dict:
    """The JSON schema of one setting's value (a list of values when ``many``)."""
    value = copy.deepcopy(s.workflow_value if workflow and s.workflow_value else s.value)
    if s.many:
        value = {"type": "array", "items": value}
        if s.min_items:
            value["minItems"] = s.min_items
    out = {"description": s.help, **value} if s.help else value
    if with_default and s.default not in (REQUIRED, COMPUTED):
        out["default"] = copy.deepcopy(s.default)
    return out


def _object(settings: list[Setting], workflow: bool, with_default: bool) -> dict:
    out: dict = {"type": "object", "additionalProperties": False, "properties": {}}
    for s in settings:
        out["properties"][s.name] = setting_schema(s, workflow, with_default)
    required = [s.name for s in settings if s.required]
    if required:
        out["required"] = required
    return out


def _sections(settings: list[Setting]) -> dict[str, list[Setting]]:
    """Section name ('' = top level) -> its settings, in table order."""
    out: dict[str, list[Setting]] = {}
    for s in settings:
        out.setdefault(s.section, []).append(s)
    return out


def json_schema() -> dict:
    """The workflow config's JSON schema. Trainer settings carry no defaults here (the trainer
    fills them per run, after arch_overrides); other sections default to {} with defaults."""
    chosen = [s for s in SETTINGS.values() if s.workflow]
    by_section = _sections(chosen)
    properties: dict = {}
    for s in by_section.pop(""):
        properties[s.name] = setting_schema(s, True, not s.trainer)
    for name, members in by_section.items():
        description, optional = SECTIONS[name]
        trainer = all(s.trainer for s in members)
        section = {"description": description, **_object(members, True, not trainer)}
        if optional:
            section["default"] = {}
        properties[name] = section
    return {
        "$schema": SCHEMA_DRAFT,
        "description": WORKFLOW_DESCRIPTION,
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": [n for n, p in properties.items() if p.get("required")],
    }


def trainer_schema() -> dict:
    """The JSON schema of a resolved run config (``trainer.config.SCHEMA``)."""
    by_section = _sections([s for s in SETTINGS.values() if s.trainer])
    properties = {s.name: setting_schema(s, False, False) for s in by_section.pop("")}
    for name, members in by_section.items():
        properties[name] = _object(members, False, False)
    return {"type": "object", "additionalProperties": False, "properties": properties}


def trainer_defaults() -> dict:
    """The defaults of a run config (``trainer.config.DEFAULTS``), nested by section."""
    out: dict = {}
    for s in SETTINGS.values():
        if not (s.trainer and s.stored) or s.default in (REQUIRED, COMPUTED):
            continue
        node = out
        for part in s.key.split(".")[:-1]:
            node = node.setdefault(part, {})
        node[s.key.split(".")[-1]] = copy.deepcopy(s.default)
    return out


def _number(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _literal(v: Any) -> str:
    """A value as the user writes it (YAML/JSON: true, false)."""
    return str(v).lower() if isinstance(v, bool) else str(v)


def range_text(s: Setting) -> str:
    """The allowed values of one value in words: 'in [2, 255]', 'at least 1', 'one of a, b'."""
    if s.range_text:
        return s.range_text
    v = s.value
    if "enum" in v:
        return "one of " + ", ".join(_literal(c) for c in v["enum"])
    lo_in, lo_ex = v.get("minimum"), v.get("exclusiveMinimum")
    hi_in, hi_ex = v.get("maximum"), v.get("exclusiveMaximum")
    lo, hi = (lo_in if lo_ex is None else lo_ex), (hi_in if hi_ex is None else hi_ex)
    integer = "integer" in str(v.get("type"))
    if lo is not None and hi is not None:
        left, right = ("[" if lo_ex is None else "("), ("]" if hi_ex is None else ")")
        return f"in {left}{_number(lo)}, {_number(hi)}{right}"
    if lo is not None:
        return f"at least {_number(lo)}" if lo_ex is None else f"> {_number(lo)}"
    if hi is not None:
        return f"at most {_number(hi)}" if hi_ex is None else f"< {_number(hi)}"
    return "an integer" if integer else f"of type {v.get('type', 'any')}"


def value_problem(s: Setting, value: Any, name: str) -> str | None:
    """One line if ``value`` (a list when ``many``) is outside the declared range, else None.

    name: how the user gave it, e.g. ``--q`` or ``mi.bins``.
    """
    import jsonschema

    if s.many and not s.axis:
        if not isinstance(value, (list, tuple)):
            return f"{name} must be a list of values {range_text(s)}, got {value!r}"
        if len(value) < s.min_items:
            return f"{name} needs at least {s.min_items} value(s)"
        items, plural = list(value), " values"
    else:
        items, plural = [value], ""
    check = jsonschema.Draft202012Validator(s.value)
    for item in items:
        if item is None and not s.required:
            continue
        if isinstance(item, bool) and "boolean" not in str(s.value.get("type")):
            return f"{name}{plural} must be {range_text(s)}, got {item!r}"
        if not check.is_valid(item):
            shown = _number(item) if isinstance(item, (int, float)) else repr(item)
            return f"{name}{plural} must be {range_text(s)}, got {shown}"
    return None
