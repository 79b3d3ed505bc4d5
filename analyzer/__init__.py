"""Stage 2: from activation stores to labelled MI tensors (numpy / numba / dask / xarray; no torch)."""
