"""Model construction: torchvision VGG-16 / ResNet-18 / ResNet-50 with the paper's options.

* ``activation``: every ReLU is swapped for a fresh, non-in-place ``nn.ReLU`` or ``nn.Tanh``
  (torchvision's in-place ReLU would overwrite tensors captured at a measurement site).
* ``width``: a channel multiplier for CPU-sized variants. Width 1 is the torchvision model
  exactly (same modules, same parameter count); other widths rebuild every Conv2d,
  BatchNorm2d and Linear with ``round(c * width)`` channels, which keeps every residual
  addition consistent because the scaling is a function of the original channel count.
"""

from __future__ import annotations

from torch import nn
from torchvision import models

from trainer.config import ACTIVATIONS, ARCHS


def scaled(channels: int, width: float) -> int:
    """Channel count of a width-scaled layer (at least 1)."""
    return max(1, int(round(channels * width)))


def _vgg16_paper(n_classes: int) -> nn.Module:
    """torchvision VGG-16 backbone with the paper's head: 25088 -> 4096 -> n_classes."""
    net = models.vgg16(weights=None, num_classes=n_classes)
    net.classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(inplace=False),
        nn.Dropout(p=0.5),
        nn.Linear(4096, n_classes),
    )
    for m in net.classifier:
        if isinstance(m, nn.Linear):  # torchvision's VGG init for linear layers
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)
    return net


def _swap_activation(net: nn.Module, activation: str) -> None:
    """Replace every ReLU (in place or not) by a fresh non-in-place module."""
    for name, child in list(net.named_children()):
        if isinstance(child, nn.ReLU):
            setattr(net, name, nn.ReLU(inplace=False) if activation == "relu" else nn.Tanh())
        else:
            _swap_activation(child, activation)


def _rescale_width(net: nn.Module, width: float, n_classes: int, spatial: int) -> None:
    """Rebuild conv / BN / linear layers with width-scaled channel counts (fresh init).

    ``spatial`` is the number of positions flattened into the first linear layer of VGG
    (7 * 7 after torchvision's adaptive pooling); ResNet's fc has spatial 1.
    """
    first_linear = True
    for name, child in list(net.named_children()):
        if isinstance(child, nn.Conv2d):
            cin = child.in_channels if child.in_channels == 3 else scaled(child.in_channels, width)
            new = nn.Conv2d(
                cin,
                scaled(child.out_channels, width),
                child.kernel_size,
                child.stride,
                child.padding,
                bias=child.bias is not None,
            )
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
            if new.bias is not None:
                nn.init.zeros_(new.bias)
            setattr(net, name, new)
        elif isinstance(child, nn.BatchNorm2d):
            setattr(net, name, nn.BatchNorm2d(scaled(child.num_features, width)))
        elif isinstance(child, nn.Linear):
            if first_linear and spatial > 1:
                cin = scaled(child.in_features // spatial, width) * spatial
            else:
                cin = scaled(child.in_features, width)
            cout = (
                n_classes if child.out_features == n_classes else scaled(child.out_features, width)
            )
            new = nn.Linear(cin, cout)
            setattr(net, name, new)
            first_linear = False
        else:
            _rescale_width(child, width, n_classes, spatial)


def build_model(
    arch: str, n_classes: int, activation: str = "relu", width: float = 1.0
) -> nn.Module:
    """Return an untrained model; the caller seeds torch before calling for reproducibility."""
    if arch not in ARCHS:
        raise ValueError(
            f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}, "
            "or torchvision:<name> for a torchvision model"
        )
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}"
        )
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    if arch == "twelve_bit_mlp":  # Shwartz-Ziv & Tishby's 12-10-7-5-4-3-2 MLP (model.beta: noise)
        from trainer.twelve_bit.model import TwelveBitMLP

        return TwelveBitMLP(activation)
    if arch == "vgg16":
        net = _vgg16_paper(n_classes)
        if width != 1:
            _rescale_width(net.features, width, n_classes, spatial=1)
            _rescale_width(net.classifier, width, n_classes, spatial=7 * 7)
    else:
        net = getattr(models, arch)(weights=None, num_classes=n_classes)
        if width != 1:
            _rescale_width(net, width, n_classes, spatial=1)
            # torchvision zero-inits nothing by default; BN weight 1 / bias 0 is the default.
    _swap_activation(net, activation)
    return net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
