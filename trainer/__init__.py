"""Stage 1: train CNNs and dump per-epoch GAP activations of the validation set to Zarr."""
