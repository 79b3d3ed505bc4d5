"""The one declaration of every setting: :class:`Setting` and the registry :data:`SETTINGS`.

Everything that lists settings reads this table: the workflow's JSON schema
(``workflow/schemas/config.schema.yaml``), the trainer's config schema and defaults, the
analyzer's and the interventions' command-line options, the README configuration table,
the resume "may change" table and a trained run's identity.

Torch-free and light (no numpy, no jsonschema): the workflow imports it to plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What a setting is for. ``identity`` defines a trained run (two runs with equal identity
# settings are the same run); ``runtime`` is how something runs (display, hardware, where
# data or results live): never identity, never a rule's params, free to change on resume.
KINDS = ("identity", "analysis", "interventions", "figures", "runtime")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # default of a setting a config must give


class _Computed:
    def __repr__(self) -> str:
        return "COMPUTED"


COMPUTED: Any = _Computed()  # no fixed default: derived when left out (the help says how)


class DuplicateSettingError(ValueError):
    """Two declarations of one key."""


@dataclass(frozen=True)
class Setting:
    """One config setting.

    key: dotted config key (``mi.bins``); its first part is the config section, the last
    its name in the section's settings document. value: JSON schema of one value (of each
    item when ``many``). axis: the workflow config holds a list of values, one job per
    value, and the command takes one (``mi.bins`` -> ``--bins 20``). flag: the command-line
    option of the section's command (``--pair-samples``), None: not an option. workflow /
    trainer: part of the workflow config / of a trained run's (trainer) config.
    """

    key: str
    kind: str
    value: dict
    default: Any
    help: str
    many: bool = False
    min_items: int = 0
    axis: bool = False
    flag: str | None = None
    workflow: bool = True
    trainer: bool = False
    workflow_value: dict | None = None  # another value schema in the workflow config
    range_text: str | None = None  # how the allowed values read in messages (else derived)
    stored: bool = True  # trainer settings: part of every resolved run config (its defaults)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.key}: kind {self.kind!r} not in {KINDS}")
        if self.trainer and self.kind not in ("identity", "runtime"):
            raise ValueError(f"setting {self.key}: a trainer setting is identity or runtime")
        if self.axis and not self.many:
            raise ValueError(f"setting {self.key}: an axis is a list of values")

    @property
    def section(self) -> str:
        return self.key.split(".")[0] if "." in self.key else ""

    @property
    def name(self) -> str:
        """Its name in the section's settings document (``pair_samples``)."""
        return self.key.split(".", 1)[1] if "." in self.key else self.key

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def command_default(self) -> Any:
        """The default of its command-line option (an axis: its first value)."""
        if self.axis:
            return self.default[0]
        return None if self.default in (REQUIRED, COMPUTED) else self.default


def declare(settings: list[Setting]) -> dict[str, Setting]:
    """The registry keyed by dotted key; a key or a command-line flag declared twice raises."""
    out: dict[str, Setting] = {}
    flags: set[tuple[str, str]] = set()
    for s in settings:
        if s.key in out:
            raise DuplicateSettingError(f"setting {s.key} is declared twice")
        if s.flag is not None:
            if (s.section, s.flag) in flags:
                raise DuplicateSettingError(f"option {s.flag} of {s.section} is declared twice")
            flags.add((s.section, s.flag))
        out[s.key] = s
    return out


def _int(lo: int | None = None, hi: int | None = None) -> dict:
    out: dict = {"type": "integer"}
    if lo is not None:
        out["minimum"] = lo
    if hi is not None:
        out["maximum"] = hi
    return out


def _num(gt=None, ge=None, lt=None, le=None) -> dict:
    bounds = {"exclusiveMinimum": gt, "minimum": ge, "exclusiveMaximum": lt, "maximum": le}
    return {"type": "number", **{k: v for k, v in bounds.items() if v is not None}}


def _enum(*choices) -> dict:
    return {"enum": list(choices)}


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_NULLABLE_STR = {"type": ["string", "null"]}
_FACTORY = {"type": ["string", "null"], "pattern": r"^[\w.]+:\w+$"}
_DEVICE = {"type": "string", "pattern": "^(auto|cpu|cuda(:[0-9]+)?)$"}
_DEVICE_TEXT = "auto, cpu or cuda[:i]"

# names shared by the trainer (trainer/config.py, models.py, data.py) and the workflow grid
ARCHS = ("vgg16", "resnet18", "resnet50", "twelve_bit_mlp")
CNN_ARCHS = ARCHS[:3]  # the built-in archs of the workflow grid (twelve_bit_mlp: twelve_bit)
ACTIVATIONS = ("relu", "tanh")
REGULARIZERS = ("none", "hsic")
DATASETS = ("imagenette", "digits", "synthetic", "imagefolder", "cifar10", "twelve_bit")
FIGURE_FORMATS = ("png", "pdf", "svg")
TORCHVISION_ARCH = r"^torchvision:[A-Za-z0-9_]+$"  # any torchvision classifier (trainer.zoo)


def arch_schema(archs=ARCHS) -> dict:
    """One of ``archs`` or torchvision:<name>; if/else keeps the one-line 'is not one of'."""
    return {
        "if": {"type": "string", "pattern": "^torchvision:"},
        "then": {"pattern": TORCHVISION_ARCH},
        "else": {"enum": list(archs)},
    }


def _per_arch(value: dict) -> dict:
    """A map arch -> value of the workflow config (built-in CNN archs and torchvision:<name>)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {a: value for a in CNN_ARCHS},
        "patternProperties": {TORCHVISION_ARCH: value},
    }
