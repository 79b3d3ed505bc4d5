"""Run configuration: defaults, YAML files, ``key.sub=value`` overrides, schema validation.

Imports no torch, so the workflow can validate every run's config before any job starts.

A run is fully given by the resolved config (``resolve_config``), which goes verbatim into
the activation store's attrs. The workflow's config file is accepted as well: its
workflow-only sections (``grid``, ``mi``, ``interventions``, ``figures``, ``robustness``) are dropped.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import yaml

from latent_mi.settings import trainer_defaults, trainer_schema
from latent_mi.settings.declarations import SETTINGS
from latent_mi.settings.table import (  # noqa: F401  (names the trainer modules import)
    ACTIVATIONS,
    ARCHS,
    DATASETS,
    TORCHVISION_ARCH,
    arch_schema,
)

ARCH_SCHEMA: dict = arch_schema()
# top-level keys of the workflow config that are not trainer settings (dropped here)
WORKFLOW_ONLY = tuple(
    dict.fromkeys(s.key.split(".")[0] for s in SETTINGS.values() if s.workflow and not s.trainer)
)
DEFAULTS: dict = trainer_defaults()  # latent_mi/settings/declarations.py
SCHEMA: dict = trainer_schema()


class ConfigError(ValueError):
    """A configuration problem; the message is one line naming the offending key."""


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict:
    """``train.epochs=3`` -> ``{"train": {"epochs": 3}}`` (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as e:
        raise ConfigError(
            f"override {text!r}: the value is not valid YAML ({_yaml_problem(e)})"
        ) from None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _yaml_problem(e: yaml.YAMLError) -> str:
    """One line: the YAML problem and where (line, column counted from 1)."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _merge_layer(cfg: dict, layer: dict, source: str) -> dict:
    """Merge one layer; a section (train, dataset, ...) given as a non-mapping stops here,
    before a later layer could fill it in partially."""
    for key, value in layer.items():
        if isinstance(DEFAULTS.get(key), dict) and not isinstance(value, dict):
            raise ConfigError(f"config key {key}: {value!r} is not a mapping (in {source})")
    return deep_merge(cfg, {k: v for k, v in layer.items() if k not in WORKFLOW_ONLY})


def validate(cfg: dict) -> None:
    try:
        jsonschema.validate(cfg, SCHEMA)
    except jsonschema.ValidationError as e:
        where = ".".join(str(p) for p in e.absolute_path) or "<top level>"
        raise ConfigError(f"config key {where}: {e.message}") from None


def resolve_config(
    path: str | Path | None = None, overrides: list[str] | None = None, data: dict | None = None
) -> dict:
    """Defaults <- YAML file <- dict <- overrides, validated; ``width`` resolved for the arch."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(e)}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} does not hold a mapping")
        cfg = _merge_layer(cfg, loaded, f"config file {path}")
    if data is not None:
        if not isinstance(data, dict):
            raise ConfigError(f"--config-json must be a JSON object, got {type(data).__name__}")
        cfg = _merge_layer(cfg, data, "--config-json")
    for text in overrides or []:
        cfg = _merge_layer(cfg, parse_override(text), f"override {text!r}")
    if cfg["train"].get("amp") is False:  # YAML 1.1 reads `amp: off` (and amp=off) as false
        cfg["train"]["amp"] = "off"
    validate(cfg)
    if cfg["train"]["optimizer"] != "sgd" and cfg["arch"] != "twelve_bit_mlp":
        raise ConfigError(
            "config key train.optimizer: 'adam' is implemented for arch twelve_bit_mlp only"
        )
    if isinstance(cfg["width"], dict):
        cfg["width"] = float(cfg["width"].get(cfg["arch"], 1.0))
    return cfg


def config_json(cfg: dict) -> str:
    return json.dumps(cfg, sort_keys=True)
