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

ARCHS = ("vgg16", "resnet18", "resnet50", "twelve_bit_mlp")
ACTIVATIONS = ("relu", "tanh")
DATASETS = ("imagenette", "digits", "synthetic", "imagefolder", "cifar10", "twelve_bit")
TORCHVISION_ARCH = r"^torchvision:[A-Za-z0-9_]+$"  # any torchvision classifier (trainer.zoo)
# arch: one of ARCHS, or torchvision:<name>; if/else keeps the one-line "is not one of" message
ARCH_SCHEMA: dict = {
    "if": {"type": "string", "pattern": "^torchvision:"},
    "then": {"pattern": TORCHVISION_ARCH},
    "else": {"enum": list(ARCHS)},
}

WORKFLOW_ONLY = (
    "grid",
    "mi",
    "interventions",
    "figures",
    "results",
    "arch_overrides",
    "robustness",
    "slurm",
    "twelve_bit",
)

DEFAULTS: dict = {
    "arch": "resnet18",
    "activation": "relu",
    "regularizer": "none",
    "seed": 0,
    "width": 1.0,
    "dataset": {
        "name": "digits",
        "root": "data",
        "size": "160px",
        "download": False,
        "image_size": 32,
        "val_fraction": 0.2,
        "split_seed": 0,
        "shift": 2,
        "n_classes": 4,
        "n_train": 128,
        "n_val": 64,
        "noise": 0.5,
        "train_fraction": 0.85,
    },
    "train": {
        "epochs": 15,
        "batch_size": 64,
        "lr": 0.05,
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "lr_patience": 10,
        "lr_factor": 0.1,
        "early_stop_patience": 25,
        "num_workers": "auto",
        "device": "auto",
        "amp": "auto",
        "channels_last": "auto",
        "progress": True,
    },
    "hsic": {
        "lambda": 0.01,
        "weights": 1.0,
        "site_kinds": ["conv-relu", "conv-tanh", "post-add"],
        "bandwidth": "median",
    },
    "dump": {
        "dtype": "float32",
        "unit_chunk": 1024,
        "clevel": 1,
        "checkpoint_every_epoch": False,
        "epochs": "all",
        "log_count": 30,
    },
    "noise": {"beta": 0.0},
}

_NUM = {"type": "number"}
_POS_INT = {"type": "integer", "minimum": 1}
SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "arch": ARCH_SCHEMA,
        "sites": {"type": ["array", "null"], "items": {"type": "string"}, "minItems": 1},
        "weights": {"type": ["string", "null"]},
        "model_factory": {"type": ["string", "null"], "pattern": r"^[\w.]+:\w+$"},
        "data_factory": {"type": ["string", "null"], "pattern": r"^[\w.]+:\w+$"},
        "input_shape": {"type": "array", "items": _POS_INT},
        "activation": {"enum": list(ACTIVATIONS)},
        "regularizer": {"enum": ["none", "hsic"]},
        "seed": {"type": "integer", "minimum": 0},
        "width": {
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {
                    "type": "object",
                    "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                },
            ]
        },
        "dataset": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"enum": list(DATASETS)},
                "root": {"type": "string"},
                "size": {"enum": ["full", "320px", "160px"]},
                "download": {"type": "boolean"},
                "image_size": {"type": "integer", "minimum": 8},
                "val_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "split_seed": {"type": "integer", "minimum": 0},
                "shift": {"type": "integer", "minimum": 0},
                "n_classes": {"type": "integer", "minimum": 2},
                "n_train": _POS_INT,
                "n_val": _POS_INT,
                "noise": {"type": "number", "minimum": 0},
                "train_fraction": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "exclusiveMaximum": 1,
                },
            },
        },
        "train": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "epochs": {"type": "integer", "minimum": 0},
                "batch_size": _POS_INT,
                "lr": {"type": "number", "exclusiveMinimum": 0},
                "optimizer": {"enum": ["sgd", "adam"]},
                "momentum": {"type": "number", "minimum": 0, "maximum": 1},
                "weight_decay": {"type": "number", "minimum": 0},
                "lr_patience": {"type": "integer", "minimum": 0},
                "lr_factor": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "early_stop_patience": _POS_INT,
                "num_workers": {"oneOf": [{"type": "integer", "minimum": 0}, {"const": "auto"}]},
                "device": {"type": "string", "pattern": "^(auto|cpu|cuda(:[0-9]+)?)$"},
                "amp": {"enum": ["auto", "bf16", "fp16", "off"]},
                "channels_last": {"enum": ["auto", True, False]},
                "progress": {"type": "boolean"},
                "live": {"type": "boolean"},
            },
        },
        "hsic": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "lambda": {"type": "number", "minimum": 0},
                "weights": {"oneOf": [_NUM, {"type": "object", "additionalProperties": _NUM}]},
                "site_kinds": {
                    "type": "array",
                    "items": {
                        "enum": [
                            "conv-relu",
                            "conv-tanh",
                            "branch",
                            "post-add",
                            "block",
                            "act",
                            "named",
                        ]
                    },
                },
                "bandwidth": {
                    "oneOf": [{"const": "median"}, {"type": "number", "exclusiveMinimum": 0}]
                },
            },
        },
        "dump": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "dtype": {"enum": ["float32", "float16"]},
                "unit_chunk": _POS_INT,
                "clevel": {"type": "integer", "minimum": 0, "maximum": 9},
                "checkpoint_every_epoch": {"type": "boolean"},
                "epochs": {"enum": ["all", "log"]},
                "log_count": _POS_INT,
            },
        },
        "noise": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"beta": {"type": "number", "minimum": 0}},
        },
    },
}


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
