"""Mixed precision and memory layout (``train.amp``, ``train.channels_last``).

``train.amp``: ``bf16`` / ``fp16`` autocast the forward pass (fp16 with a gradient scaler);
``off`` runs float32; ``auto`` is bf16 on CUDA devices that support it (else fp16) and off
on CPU (CPU autocast is slower than float32 for these convolutions). ``channels_last``:
NHWC weights and inputs; ``auto`` is on for CUDA (tensor-core convolutions), off on CPU.
Whatever the setting, the dumped GAP values are pooled in float32 (``trainer.sites.gap``)
and HSIC is computed in float32 with autocast off (``trainer.hsic``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


@dataclass
class Precision:
    """The resolved settings for one device; ``scaler`` only for fp16."""

    device: torch.device
    amp: str  # bf16 | fp16 | off
    channels_last: bool
    scaler: torch.amp.GradScaler | None

    @property
    def dtype(self) -> torch.dtype | None:
        return AMP_DTYPES[self.amp]

    def autocast(self):
        """Context for the forward pass (a no-op when amp is off)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device, memory_format=self._format)

    def inputs(self, images: torch.Tensor, labels: torch.Tensor):
        """Batch to the device (asynchronously from pinned memory), in the model's layout."""
        images = images.to(self.device, non_blocking=True, memory_format=self._format)
        return images, labels.to(self.device, non_blocking=True)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()

    @property
    def _format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> dict:
        return {"amp": self.amp, "channels_last": self.channels_last}


def resolve_precision(train_cfg: dict, device: torch.device) -> Precision:
    """Resolve ``train.amp`` / ``train.channels_last`` (``auto`` per the module doc)."""
    cuda = device.type == "cuda"
    amp = train_cfg.get("amp", "auto")
    if amp == "auto":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "off"
    layout = train_cfg.get("channels_last", "auto")
    channels_last = cuda if layout == "auto" else bool(layout)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    return Precision(device, amp, channels_last, scaler)
