"""The analysis options: one field per ``mi`` setting, its default from the settings table.

The table (latent_mi/settings/declarations.py) declares each setting once (range, help,
flag); the CLI fills these fields by name (``analyzer.cli.options_of``) and the epoch plan
carries the object whole (``analyzer.epoch_pass.Plan.options``), so a new analysis option is
its declaration, its field here and its use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from analyzer import layer_info
from analyzer.core.fused import Binning
from latent_mi.settings import default

# field metadata: an option used only by the estimators beyond the histogram
ESTIMATOR_ONLY = "estimator_only"


def estimator_option(key: str):
    """A field for setting ``key`` of the estimators beyond the histogram: it enters
    :meth:`Options.key` only when one of them runs, so adding such an option keeps the key,
    and the reuse, of every existing histogram-only MI Dataset."""
    return field(default=default(key), metadata={ESTIMATOR_ONLY: True})


@dataclass
class Options:
    """The analysis options; defaults: the ``mi`` settings (latent_mi/settings/declarations.py)."""

    bins: int = default("mi.bins")
    topk: tuple[float, ...] = default("mi.topk")
    pair_samples: int = default("mi.pair_samples")
    pca_components: int = default("mi.pca_components")
    miller_madow: bool = default("mi.miller_madow")
    cc_layers: str | list[str] = "last"  # "last", "all", or layer names
    cc_epochs: tuple[str, ...] = default("mi.cc_epochs")
    plateau_fraction: float = 0.95
    seed: int = default("mi.seed")  # the channel-pair samples, the PCA subsample, the permutations
    permutations: int = default("mi.permutations")  # label permutations of the nulls (0: none)
    run: str | None = None
    binning: Binning = field(default_factory=Binning)
    layer_info: layer_info.LayerInfoOptions = field(default_factory=layer_info.LayerInfoOptions)
    epoch_block: int | None = None  # epochs computed per write (None: 4 per worker)
    estimators: tuple[str, ...] = estimator_option("mi.estimators")  # analyzer/estimators.py
    knn_k: int = estimator_option("mi.knn_k")
    estimator_dims: int = estimator_option("mi.estimator_dims")

    def key(self) -> str:
        """JSON of every option that changes results (decides whether old epochs are reusable)."""
        d = dataclasses.asdict(self)
        d.pop("epoch_block")
        if tuple(self.estimators) == default("mi.estimators"):  # histogram only: the key as before
            for option in dataclasses.fields(self):
                if option.metadata.get(ESTIMATOR_ONLY):
                    d.pop(option.name)
        else:
            d["estimators"] = list(self.estimators)
        b = self.binning
        digest = hashlib.sha1()
        for v in (b.lo, b.hi):
            digest.update(np.asarray(v if v is not None else np.nan, dtype=np.float64).tobytes())
        d["binning"] = {"rule": b.rule, "bounds_sha1": digest.hexdigest()}
        d["topk"], d["cc_epochs"] = list(self.topk), list(self.cc_epochs)
        return json.dumps(d, sort_keys=True)
