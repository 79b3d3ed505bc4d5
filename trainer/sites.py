"""Measurement sites: where a network's activations are observed or replaced.

One abstraction, three uses, all through forward hooks on torchvision's own modules:

* ``capture_gap(sites)``: record the global-average-pooled value of each site's output,
  shape (batch, channels), detached (for the dump) or with its graph; ``capture_sums``:
  the same as (spatial sum, count) with its graph (for the HSIC loss);
* ``replace_output(sites, fn)``: substitute each site's output by ``fn(site, output)``
  (channel knockouts, shuffles, perturbations build on it).

Sites, in depth order:

* VGG-16: the activation after each of the 13 convolutions (kind ``conv-relu``/``conv-tanh``);
* ResNets: per block, the residual branch before the addition (the last BatchNorm of the
  block, kind ``branch``) and the block output after the addition and its activation
  (the block module itself, kind ``post-add``).

Any other model (``torchvision:<name>`` archs, named ``sites``, :class:`trainer.Recorder`):
the rule of :mod:`trainer.discovery`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from latent_mi import contract as C


@dataclass(frozen=True)
class Site:
    name: str
    kind: str
    channels: int
    module: nn.Module

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "channels": self.channels}


def find_sites(net: nn.Module) -> list[Site]:
    """The measurement sites of a model built by :func:`trainer.models.build_model`, or those
    recorded on any model by :func:`trainer.discovery.attach_sites`."""
    recorded = getattr(net, "latent_mi_sites", None)
    if recorded is not None:
        return [Site(n, k, c, net.get_submodule(path)) for n, k, c, path in recorded]
    if hasattr(net, "measurement_sites"):  # models that declare their own (trainer.twelve_bit)
        return net.measurement_sites()
    sites: list[Site] = []
    if hasattr(net, "features") and isinstance(net.features, nn.Sequential):  # VGG
        last_conv = None
        for module in net.features:
            if isinstance(module, nn.Conv2d):
                last_conv = module
            elif isinstance(module, nn.ReLU | nn.Tanh) and last_conv is not None:
                kind = C.SITE_CONV_RELU if isinstance(module, nn.ReLU) else C.SITE_CONV_TANH
                name = f"conv{len(sites) + 1}"
                sites.append(Site(name, kind, last_conv.out_channels, module))
                last_conv = None
        return sites
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        for i, block in enumerate(getattr(net, stage)):
            if isinstance(block, Bottleneck):
                branch_end = block.bn3
            elif isinstance(block, BasicBlock):
                branch_end = block.bn2
            else:
                raise TypeError(f"unsupported block type {type(block).__name__}")
            c = branch_end.num_features
            sites.append(Site(f"{stage}.{i}.branch", C.SITE_BRANCH, c, branch_end))
            sites.append(Site(f"{stage}.{i}.out", C.SITE_POST_ADD, c, block))
    if not sites:
        raise TypeError(f"no measurement sites found in {type(net).__name__}")
    return sites


def spatial_sum(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Sum over all spatial dims in float32, (batch, C, ...) -> ((batch, C), positions summed).

    Sum's backward broadcasts the (batch, C) gradient as a view (mean's materialises a whole
    feature map), so a loss can take these sums and fold the division into its own node.
    """
    if x.dim() <= 2:
        return x.float(), 1
    return x.sum(dim=tuple(range(2, x.dim())), dtype=torch.float32), math.prod(x.shape[2:])


def gap(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling over all spatial dims: (batch, C, ...) -> (batch, C), float32.

    Accumulated in float32 whatever the activation's dtype (autocast) or layout; computed as
    ``spatial_sum / n``, bitwise what ``mean`` computes (mean is a sum then a division).
    """
    total, n = spatial_sum(x)
    return total / n if n != 1 else total


@contextlib.contextmanager
def _capture(sites: list[Site], fn: Callable[[torch.Tensor], object]) -> Iterator[dict]:
    """Within the block, every forward stores ``fn(output)`` of each site in the yielded dict.

    ``fn`` runs inside the hook, before any later in-place operation (such as the residual
    ``out += identity``) can modify the tensor.
    """
    store: dict = {}
    handles = []
    for site in sites:

        def hook(_module, _inp, out, name=site.name):
            store[name] = fn(out)

        handles.append(site.module.register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def capture_gap(sites: list[Site], detach: bool = True):
    """Context yielding {site name: ``gap(output)``} filled by every forward in the block;
    detached (for the dump) or with its graph."""
    return _capture(sites, (lambda out: gap(out).detach()) if detach else gap)


def capture_sums(sites: list[Site]):
    """Context yielding {site name: ``spatial_sum(output)``} (with graph) for every forward:
    the GAP as (sum, n), for losses that divide inside their own node (:mod:`trainer.hsic`)."""
    return _capture(sites, spatial_sum)


@contextlib.contextmanager
def replace_output(
    sites: list[Site], fn: Callable[[Site, torch.Tensor], torch.Tensor]
) -> Iterator[None]:
    """Within the block, each site's output is replaced by ``fn(site, output)``."""
    handles = []
    for site in sites:

        def hook(_module, _inp, out, site=site):
            return fn(site, out)

        handles.append(site.module.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
