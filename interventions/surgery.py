"""Model surgery per architecture: a site's output, the network continued from it, the
weights that make its channels, and scaled residual identities.

The one place that knows VGG and ResNet internals (beside :mod:`trainer.sites`, which
names the sites). ResNet blocks are torchvision's own ``BasicBlock`` / ``Bottleneck``;
the identity path is scaled by swapping the block's ``downsample`` for a wrapper, so
torchvision's own ``forward`` runs. :func:`surgery_for` is the hook for other models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from latent_mi import contract as C
from trainer.sites import Site, replace_output


@dataclass
class SiteOutput:
    """One batch at a site: its output (B, C, H, W) and, for ResNet branch sites, the block input."""

    h: torch.Tensor
    block_input: torch.Tensor | None = None

    def rows(self, index: torch.Tensor) -> SiteOutput:
        """The samples ``index`` of the batch."""
        bi = None if self.block_input is None else self.block_input[index]
        return SiteOutput(self.h[index], bi)


class _Stop(Exception):
    """Raised by a hook to end a forward once the site output is known."""


class _ScaledIdentity(nn.Module):
    """``gain * downsample(x)`` (or ``gain * x``): the identity path of a residual block."""

    def __init__(self, gain: float, downsample: nn.Module | None):
        super().__init__()
        self.gain, self.inner = gain, downsample

    def forward(self, x):
        return self.gain * (x if self.inner is None else self.inner(x))


class Surgery:
    """Architecture adapter; subclasses know one family's layout."""

    def __init__(self, model: nn.Module):
        self.model = model

    @torch.no_grad()
    def site_output(self, site: Site, images: torch.Tensor) -> SiteOutput:
        """Run the network only up to ``site`` and return its output (and block input)."""
        got: dict[str, torch.Tensor] = {}

        def keep_out(_m, _i, out):
            got["h"] = out
            raise _Stop

        def keep_in(_m, inp):
            got["x"] = inp[0]

        handles = [site.module.register_forward_hook(keep_out)]
        if self.needs_block_input(site):
            handles.append(self.block_of(site).register_forward_pre_hook(keep_in))
        try:
            self.model(images)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        return SiteOutput(got["h"], got.get("x"))

    def needs_block_input(self, site: Site) -> bool:
        return False

    def block_of(self, site: Site) -> nn.Module:
        raise TypeError(f"site {site.name} is not inside a residual block")

    def suffix(self, site: Site, out: SiteOutput) -> torch.Tensor:
        raise NotImplementedError

    def out_channel_modules(self, site: Site) -> list[nn.Module]:
        raise NotImplementedError

    def has_skips(self) -> bool:
        return False

    @contextlib.contextmanager
    def skip_gain(self, gain: float) -> Iterator[None]:
        raise TypeError(f"{type(self.model).__name__} has no residual identity paths")
        yield


class VGGSurgery(Surgery):
    """torchvision VGG: ``features`` (Sequential), ``avgpool``, ``classifier``."""

    def _index(self, site: Site) -> int:
        return next(i for i, m in enumerate(self.model.features) if m is site.module)

    def suffix(self, site: Site, out: SiteOutput) -> torch.Tensor:
        x = self.model.features[self._index(site) + 1 :](out.h)
        return self.model.classifier(torch.flatten(self.model.avgpool(x), 1))

    def out_channel_modules(self, site: Site) -> list[nn.Module]:
        before = self.model.features[: self._index(site)]
        return [[m for m in before if isinstance(m, nn.Conv2d)][-1]]


class ResNetSurgery(Surgery):
    """torchvision ResNet: ``layer1..4`` of BasicBlock / Bottleneck, ``avgpool``, ``fc``."""

    def blocks(self) -> list[nn.Module]:
        m = self.model
        return [b for stage in (m.layer1, m.layer2, m.layer3, m.layer4) for b in stage]

    def block_of(self, site: Site) -> nn.Module:
        for block in self.blocks():
            if site.module is block or site.module is self._branch_end(block):
                return block
        raise ValueError(f"site {site.name} is not inside a ResNet block")

    @staticmethod
    def _branch_end(block) -> nn.Module:
        if isinstance(block, Bottleneck):
            return block.bn3
        if isinstance(block, BasicBlock):
            return block.bn2
        raise TypeError(f"unsupported block type {type(block).__name__}")

    def needs_block_input(self, site: Site) -> bool:
        return site.kind == C.SITE_BRANCH

    def suffix(self, site: Site, out: SiteOutput) -> torch.Tensor:
        blocks = self.blocks()
        block = self.block_of(site)
        x = out.h
        if site.kind == C.SITE_BRANCH:  # finish the block: add the identity, then its activation
            xb = out.block_input
            identity = xb if block.downsample is None else block.downsample(xb)
            x = block.relu(out.h + identity)
        for b in blocks[blocks.index(block) + 1 :]:
            x = b(x)
        return self.model.fc(torch.flatten(self.model.avgpool(x), 1))

    def out_channel_modules(self, site: Site) -> list[nn.Module]:
        block = self.block_of(site)
        if isinstance(block, Bottleneck):
            mods = [block.conv3, block.bn3]
        else:
            mods = [block.conv2, block.bn2]
        if site.kind == C.SITE_POST_ADD and block.downsample is not None:
            mods += list(block.downsample)
        return mods

    def has_skips(self) -> bool:
        return True

    @contextlib.contextmanager
    def skip_gain(self, gain: float) -> Iterator[None]:
        """Within the block, every residual identity path is scaled by ``gain``."""
        saved = [(b, b.downsample) for b in self.blocks()]
        try:
            for b, ds in saved:
                b.downsample = _ScaledIdentity(gain, ds)
            yield
        finally:
            for b, ds in saved:
                b.downsample = ds


class GenericSurgery(Surgery):
    """Any model with sites from trainer.discovery (``latent_mi_sites``): no known suffix, so
    the whole network reruns from its input with the site's output replaced."""

    @torch.no_grad()
    def site_output(self, site: Site, images: torch.Tensor) -> SiteOutput:
        """The site output, with the network input of the batch as its "block input"."""
        out = super().site_output(site, images)
        return SiteOutput(out.h, images)

    def suffix(self, site: Site, out: SiteOutput) -> torch.Tensor:
        with replace_output([site], lambda _s, _o: out.h):
            return self.model(out.block_input)

    def out_channel_modules(self, site: Site) -> list[nn.Module]:
        """The last convolution with the site's channel count (inside the site module when it
        is a block, else before it) and the first normalization of that count after it."""
        mods = list(self.model.modules())
        inner = list(site.module.modules())[1:]
        has_conv = any(isinstance(m, nn.Conv2d) for m in inner)
        pool = inner if has_conv else mods[: mods.index(site.module)]
        convs = [
            i
            for i, m in enumerate(pool)
            if isinstance(m, nn.Conv2d) and m.out_channels == site.channels
        ]
        if not convs:
            raise ValueError(
                f"transplant: no convolution produces the {site.channels} channels of site {site.name}"
            )
        norms = [
            m
            for m in pool[convs[-1] + 1 :]
            if isinstance(m, nn.BatchNorm2d) and m.num_features == site.channels
        ]
        return [pool[convs[-1]], *norms[:1]]


def surgery_for(model: nn.Module) -> Surgery:
    """The adapter for ``model``: VGG or ResNet as built by :func:`trainer.models.build_model`,
    or any model with discovered sites (:class:`GenericSurgery`)."""
    if hasattr(model, "latent_mi_sites"):
        return GenericSurgery(model)
    if hasattr(model, "features") and isinstance(model.features, nn.Sequential):
        return VGGSurgery(model)
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)) and hasattr(model, "fc"):
        return ResNetSurgery(model)
    raise ValueError(f"interventions support VGG and ResNet models, not {type(model).__name__}")


@torch.no_grad()
def transplant(
    donor: Surgery, recipient: Surgery, donor_site: Site, recipient_site: Site, channels
):
    """Copy the out-channel filters and normalization parameters of ``channels``."""
    idx = torch.as_tensor(channels, dtype=torch.long)
    for src, dst in zip(
        donor.out_channel_modules(donor_site),
        recipient.out_channel_modules(recipient_site),
        strict=True,
    ):
        for name in ("weight", "bias", "running_mean", "running_var"):
            a, b = getattr(src, name, None), getattr(dst, name, None)
            if a is not None and b is not None:
                b[idx.to(b.device)] = a[idx.to(a.device)].to(b.device)
