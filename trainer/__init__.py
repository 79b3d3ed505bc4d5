"""Stage 1: train CNNs and dump per-epoch GAP activations of the validation set to Zarr.

``from trainer import Recorder`` records a hand-written training loop into the same store.
Attributes load lazily, so ``import trainer.config`` (the workflow) imports no torch.
"""


def __getattr__(name: str):
    if name == "Recorder":
        from trainer.recorder import Recorder

        return Recorder
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")


__all__ = ["Recorder"]
