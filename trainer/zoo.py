"""Model factories beyond the paper's three: any torchvision classifier, a user's own factory.

* ``arch: torchvision:<name>`` builds ``torchvision.models.get_model(name, weights=None,
  num_classes=n)``; ``weights`` (config key) is a local state-dict file (the head is skipped
  where its shape differs) or a torchvision weights name (``DEFAULT``,
  ``MobileNet_V3_Small_Weights.IMAGENET1K_V1``; torchvision loads it from ``$TORCH_HOME``).
* ``activation: relu`` keeps the model's own activations (made non-in-place);
  ``activation: tanh`` swaps every ReLU, ReLU6, SiLU, Hardswish and GELU module for Tanh
  (functional activations inside a ``forward`` stay as they are).
* ``width``: through the builder's ``width_mult`` where it has one (MobileNetV2/V3), else by
  rescaling every Conv2d / BatchNorm2d / Linear (as for the paper's archs) where the model
  has no grouped convolutions and runs after rescaling; refused with one line otherwise.
* ``model_factory: "module:function"``: ``function(config)`` returns the model, and
  ``data_factory: "module:function"``: ``function(config)`` returns the validation dataset
  (both used to rebuild a :class:`trainer.Recorder` run for interventions).

Sites: config ``sites`` or the default rule of :mod:`trainer.discovery`.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path

import torch
from torch import nn

from trainer.discovery import attach_sites

PREFIX = "torchvision:"
TANH_SWAPPED = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU)


def is_torchvision(arch: str) -> bool:
    return arch.startswith(PREFIX)


def classifier_names() -> list[str]:
    """Names of torchvision's image classifiers (``torchvision.models.list_models``)."""
    from torchvision import models

    return models.list_models(module=models)


def _check_name(name: str) -> None:
    names = classifier_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = (
            f"close matches: {', '.join(close)}"
            if close
            else "see torchvision.models.list_models()"
        )
        raise ValueError(f"unknown torchvision classifier {name!r} ({hint})")


def _set_activation(net: nn.Module, activation: str) -> None:
    for name, child in list(net.named_children()):
        if activation == "tanh" and isinstance(child, TANH_SWAPPED):
            setattr(net, name, nn.Tanh())
        else:
            if getattr(child, "inplace", False) is True:
                child.inplace = False  # an in-place op would overwrite a captured site output
            _set_activation(child, activation)


def _load_weights(net: nn.Module, path: Path) -> None:
    """Load a local state dict; entries whose shape differs (a new head) keep their init."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable and not k.startswith(_head_prefixes(net))]
    if missing:
        raise ValueError(
            f"weights {path} do not fit the model: {len(missing)} missing, e.g. {missing[0]}"
        )
    net.load_state_dict(usable, strict=False)


def _head_prefixes(net: nn.Module) -> tuple[str, ...]:
    return tuple(n for n in ("fc", "classifier", "head", "heads") if hasattr(net, n))


def _rescale(net: nn.Module, arch: str, width: float, n_classes: int, example) -> None:
    from trainer.models import _rescale_width

    if any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in net.modules()):
        raise ValueError(
            f"width={width} cannot be applied to {arch}: it has grouped/depthwise convolutions "
            "and no width_mult option (use width: 1)"
        )
    pool = getattr(net, "avgpool", None)
    spatial = 1
    if isinstance(pool, nn.AdaptiveAvgPool2d) and isinstance(
        getattr(net, "classifier", None), nn.Sequential
    ):
        size = pool.output_size
        spatial = size * size if isinstance(size, int) else size[0] * size[1]
    for child_name in ("features", "classifier") if spatial > 1 else ("",):
        target = net.get_submodule(child_name)
        _rescale_width(target, width, n_classes, spatial if child_name == "classifier" else 1)
    try:
        with torch.no_grad():
            net.eval()(example)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ValueError(
            f"width={width} cannot be applied to {arch}: its channel counts do not scale "
            f"uniformly ({first}); use width: 1 or another width"
        ) from None
    net.train()


def build_torchvision(
    name: str,
    n_classes: int,
    activation: str = "relu",
    width: float = 1.0,
    weights: str | None = None,
    example: torch.Tensor | None = None,
) -> nn.Module:
    """An untrained torchvision classifier (or one with ``weights``), sites not yet attached."""
    from torchvision import models

    _check_name(name)
    arch = PREFIX + name
    if example is None:
        example = torch.zeros(1, 3, 64, 64)
    weight_file = Path(weights) if weights and Path(weights).is_file() else None
    tv_weights = weights if weights and weight_file is None else None
    if tv_weights:
        known = list(models.get_model_weights(name).__members__)
        if tv_weights.rsplit(".", 1)[-1] not in known:
            raise ValueError(
                f"weights={weights!r}: no such file, nor a torchvision weights name of {name} "
                f"(one of {', '.join(known)})"
            )
    if width != 1 and tv_weights:
        raise ValueError(f"width={width} cannot be used with pretrained weights {weights!r}")
    try:
        net = models.get_model(name, weights=tv_weights, num_classes=n_classes, width_mult=width)
        scaled = True
    except TypeError:
        net = models.get_model(name, weights=tv_weights, num_classes=n_classes)
        scaled = width == 1
    if not scaled:
        _rescale(net, arch, width, n_classes, example)
    if weight_file is not None:
        _load_weights(net, weight_file)
    _set_activation(net, activation)
    return net


def load_factory(spec: str, key: str = "model_factory"):
    """``"package.module:function"`` -> the function (one line naming what is missing)."""
    module_name, _, func = spec.partition(":")
    if not module_name or not func:
        raise ValueError(f"{key} {spec!r} is not of the form 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{key} {spec!r}: cannot import {module_name} ({e})") from None
    if not hasattr(module, func):
        raise ValueError(f"{key} {spec!r}: {module_name} has no {func}")
    return getattr(module, func)


def val_set_from_config(cfg: dict):
    """The validation dataset of a run, in its recorded order (``data_factory`` wins)."""
    from trainer.config import DATASETS
    from trainer.datasets import load_dataset

    if cfg.get("data_factory"):
        return load_factory(cfg["data_factory"], "data_factory")(cfg)
    name = cfg.get("dataset", {}).get("name") if isinstance(cfg.get("dataset"), dict) else None
    if name not in DATASETS:
        raise ValueError(
            f"cannot rebuild the validation set of this run (dataset {name!r}): record it with "
            "config data_factory: 'module:function' or a trainer dataset section"
        )
    return load_dataset(cfg["dataset"]).val


def model_from_config(cfg: dict, n_classes: int) -> nn.Module:
    """The untrained model of a resolved run config, with its measurement sites attached.

    ``model_factory`` wins, then ``torchvision:<name>``, then the paper's archs
    (:func:`trainer.models.build_model`, own site rule unless ``sites`` names others).
    """
    from trainer.models import build_model

    size = int(cfg.get("dataset", {}).get("image_size", 64))
    example = torch.zeros(1, 3, size, size)
    names = cfg.get("sites")
    if cfg.get("model_factory"):
        net = load_factory(cfg["model_factory"])(cfg)
        if not isinstance(net, nn.Module):
            raise ValueError(f"model_factory {cfg['model_factory']!r} did not return an nn.Module")
        example = torch.zeros(1, *cfg.get("input_shape", (3, size, size)))
        return attach_sites(net, names, example)
    if cfg.get("recorder"):
        raise ValueError(
            f"cannot rebuild the model {cfg.get('arch')!r} of a Recorder run: record it with "
            "config model_factory: 'module:function' (a function of the config returning the model)"
        )
    arch = cfg["arch"]
    if is_torchvision(arch):
        net = build_torchvision(
            arch[len(PREFIX) :],
            n_classes,
            cfg["activation"],
            cfg["width"],
            cfg.get("weights"),
            example,
        )
        return attach_sites(net, names, example)
    net = build_model(arch, n_classes, cfg["activation"], cfg["width"])
    return attach_sites(net, names, example) if names else net
