"""Torch-free pieces shared by every stage: :mod:`latent_mi.contract` (cross-stage names),
:mod:`latent_mi.outputs` (safe outputs, locks), :mod:`latent_mi.store_check` (store integrity)."""

import re as _re
import warnings as _warnings

# Each directory output holds this tool's ownership marker (latent_mi.outputs.MARKER); zarr
# lists it when opening the group and warns that the object is not part of the hierarchy.
# Only that one warning, about that one file, is silenced.
_warnings.filterwarnings(
    "ignore",
    message=r"Object at " + _re.escape(".latent-mi-output.json") + r" is not recognized",
    category=UserWarning,
)
