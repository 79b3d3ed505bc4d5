"""Every setting of the project, declared once (``declarations.py``), and what follows from it.

* :func:`json_schema`: the workflow config's schema (``workflow/schemas/config.schema.yaml``,
  written by ``python -m latent_mi.settings --write-schema``);
* :func:`trainer_schema`, :func:`trainer_defaults`: a run config's schema and defaults;
* :func:`add_arguments`, :func:`parse`: the analyzer's and the interventions' options;
* :func:`identity_settings`: what defines a trained run; :func:`may_change`: what a resumed
  run may change (every non-identity trainer setting);
* :func:`command_document`: the settings document a workflow rule passes a command;
* ``readme.py``: the README configuration table (``--write-readme README.md``).

Add a setting: one :class:`Setting` in ``declarations.py``, then use it where it acts, then
``python -m latent_mi.settings --write-schema --write-readme README.md``.
Torch-free and light: no numpy; jsonschema and yaml only when validating or writing.
"""

from __future__ import annotations

import copy

from latent_mi.settings.cli import (
    HelpFormatter,
    Parser,
    add_arguments,
    parse,
    plain_text,
    resolved,
)
from latent_mi.settings.declarations import SECTIONS, SETTINGS
from latent_mi.settings.schema import (
    json_schema,
    range_text,
    trainer_defaults,
    trainer_schema,
    value_problem,
)
from latent_mi.settings.table import (
    COMPUTED,
    KINDS,
    REQUIRED,
    DuplicateSettingError,
    Setting,
    declare,
)

__all__ = [
    "COMPUTED",
    "KINDS",
    "REQUIRED",
    "SECTIONS",
    "SETTINGS",
    "DuplicateSettingError",
    "HelpFormatter",
    "Parser",
    "Setting",
    "add_arguments",
    "command_document",
    "command_json",
    "declare",
    "default",
    "identity_settings",
    "json_schema",
    "may_change",
    "parse",
    "plain_text",
    "range_text",
    "resolved",
    "trainer_defaults",
    "trainer_schema",
    "value_problem",
]


def default(key: str):
    """The declared default of a setting as its command takes it (an axis: its first value;
    a list: a tuple)."""
    value = SETTINGS[key].command_default
    return tuple(value) if isinstance(value, list) else copy.deepcopy(value)


def identity_settings(config: dict) -> dict:
    """``config`` (a resolved run config, or a workflow config) without every declared
    non-identity key: what defines a trained run. Undeclared keys are kept (they might)."""

    def keep(node: dict, prefix: str) -> dict:
        out = {}
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            s = SETTINGS.get(dotted)
            if s is not None:
                if s.kind == "identity":
                    out[key] = copy.deepcopy(value)
            elif isinstance(value, dict) and (dotted in SECTIONS or prefix):
                inner = keep(value, f"{dotted}.")
                if inner:
                    out[key] = inner
            else:
                out[key] = copy.deepcopy(value)
        return out

    return keep(config, "")


def may_change() -> dict[str, str]:
    """Dotted key -> why: the trainer settings a resumed run may change (non-identity)."""
    return {k: s.help for k, s in SETTINGS.items() if s.trainer and s.kind != "identity"}


def command_document(
    section_config: dict, section: str, runtime: bool = False, only: tuple[str, ...] = ()
) -> dict:
    """The settings document a rule passes its command (``--settings-json``): the section's
    command-line settings, resolved (config over declared defaults), without axes (the job's
    wildcard gives those), unless ``runtime`` without runtime settings (they must never reach
    a rule's params: changing them reruns nothing), and only the names ``only`` if given."""
    out = {}
    for s in SETTINGS.values():
        if s.section != section or not s.flag or s.axis or not s.workflow:
            continue
        if (s.kind == "runtime" and not runtime) or (only and s.name not in only):
            continue
        out[s.name] = copy.deepcopy(section_config.get(s.name, s.default))
    return out


def command_json(section_config: dict, section: str, **kwargs) -> str:
    """:func:`command_document` as one shell-quoted JSON word (keys sorted)."""
    import json
    import shlex

    return shlex.quote(
        json.dumps(command_document(section_config, section, **kwargs), sort_keys=True)
    )
