"""The one registry of the MI Dataset's output variables (name, dims, dtype, units, fill, text).

Everything that lists the output variables reads :data:`VARIABLES`: the per-epoch stacking
and padding (:func:`stack_layers`), the lazy Dataset's variables, the attrs
(:func:`set_attrs`) and the README table (``analyzer/variables_table.py``:
``python -m analyzer.variables_table --check README.md``; a test runs the same check).

Each variable has a ``stage``, which says where its value is computed:

* ``"layer"``: dims ``("epoch", "layer", ...)``; one value per (epoch, layer), returned
  under its name by the per-(epoch, layer) step (``epoch_pass.layer_step``, which sees the
  layer's values, bin codes and counts from the fused pass) with the ``channel`` axis unpadded (length ``n_channels``); :func:`stack_layers` pads it to
  ``c_max`` with ``fill`` and stacks the layers.
* ``"epoch"``: dims ``("epoch", ...)``; computed once per epoch from all layers' results
  (``epoch_pass.epoch_step``: layer-layer MI).
* ``"selected"``: the all-pairs channel MI at selected (cc_epoch, cc_layer).
* ``"dynamics"``: computed from the whole epoch axis after all epochs are written
  (``mi_tensors.add_dynamics``): recomputed whenever epochs are appended.
* ``"store"``: carried from the activation store per epoch.

How to add a variable (one edit here plus its computation):

1. Append one :class:`Variable` to the list below (dims from :data:`DIMS` or a new dim
   whose size and coord you add in ``setup.prepare``'s ``sizes``/``coords``).
2. Compute it in the function of its stage and return it under its name (for ``"layer"``:
   add ``out["my_var"] = ...`` in ``epoch_pass.layer_step``, channel axis unpadded; the
   layer's bin codes (channel, sample) uint8, label counts and per-channel MIs are in its
   ``LayerView``). Stacking, padding, writing, appending and attrs follow from the registry.
3. Regenerate the README table: ``python -m analyzer.variables_table --write README.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STAGES = ("layer", "epoch", "selected", "dynamics", "store")
DIMS = (
    "epoch",
    "layer",
    "layer_b",
    "channel",
    "channel_b",
    "label",
    "k",
    "cc_epoch",
    "cc_layer",
    "bin_size",  # whole-layer bin sizes of binned_input_mi (analyzer/layer_info.py)
    "beta",  # noise sd of the noisy-network estimator (analyzer/core/noisy_mi.py)
)


@dataclass(frozen=True)
class Variable:
    """One output variable: its full dims, dtype, units ("1" = dimensionless) and fill."""

    name: str
    dims: tuple[str, ...]
    dtype: str
    units: str
    description: str
    stage: str
    fill: float = math.nan  # padding (past n_channels) and undefined values
    optional: bool = False  # present only when asked for (a zero-length dim otherwise)
    notes: tuple[tuple[str, str], ...] = ()  # further attrs: (name, text), e.g. known_bias

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"{self.name}: stage {self.stage!r} not in {STAGES}")
        if self.stage == "layer" and self.dims[:2] != ("epoch", "layer"):
            raise ValueError(f"{self.name}: a 'layer' variable's dims start with (epoch, layer)")

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.fill, dtype=self.dtype)


_NAT, _ONE = "nat", "1"

# --- the estimators beyond the histogram (analyzer/estimators.py; ``mi.estimators``) ---
_KNN = (
    (
        "definition",
        "Ross (2014) kNN estimator of I(T;Y), T continuous, Y discrete: psi(N) + <psi(k)> - "
        "<psi(N_y)> - <psi(m)>, m = samples of any class closer than the k-th neighbour of "
        "the same class (scikit-learn's mutual_info_classif without its noise)",
    ),
    (
        "assumptions",
        "T has a density, or is a mixture with point masses (ReLU zeros): a sample whose "
        "k-th same-class neighbour is tied with it uses k_i = its same-class tie group and "
        "m_i = its tie group (Gao et al. 2017's rule); k = analysis option knn_k",
    ),
    (
        "known_bias",
        "small, either sign, for a smooth 1-D density at N >= 359 (README ground-truth "
        "table); grows with the dimension of a projection; not clipped at 0",
    ),
)
_GAUSS = (
    (
        "definition",
        "0.5 (log det S - sum_k p_k log det S_k) = h(T) - h(T|Y) with Gaussian entropies of "
        "the ML (1-D) or Ledoit-Wolf shrunk (projection) covariances",
    ),
    ("assumptions", "T Gaussian given Y and marginally Gaussian"),
    (
        "known_bias",
        "the MI of moment-matched Gaussians: a monotone map of T changes it; a class "
        "mixture is not Gaussian, so it can exceed H(Y) for well-separated classes",
    ),
)
_PROBE = (
    (
        "definition",
        "H(Y) - held-out cross-entropy of a multinomial logistic regression on the layer's "
        "whitened leading principal components (fitted per training fold, L2 strength by "
        "inner cross-validation): a variational lower bound on I(T_l;Y)",
    ),
    ("assumptions", "none for validity; tight when p(y|t) is near a linear softmax"),
    (
        "known_bias",
        "below the truth by the probe's misfit and finite-N error; sampling error can put "
        "it slightly above the truth or below 0; never above H(Y)",
    ),
)
_PROJ = "on the layer's leading estimator_dims principal components (analysis option)"


def _estimator_vars() -> list[Variable]:
    """The optional variables of the kNN, Gaussian and probe estimators."""
    chan, lay = ("epoch", "layer", "channel"), ("epoch", "layer")
    out = []
    for est, notes, what in (("knn", _KNN, "kNN (Ross)"), ("gaussian", _GAUSS, "Gaussian")):
        out += [
            Variable(
                f"channel_label_mi_{est}",
                chan,
                "float32",
                _NAT,
                f"I(T_lc; Y) by the {what} estimator; NaN past n_channels(layer)",
                "layer",
                optional=True,
                notes=notes,
            ),
            Variable(
                f"label_mi_{est}",
                lay,
                "float32",
                _NAT,
                f"mean over the layer's channels of channel_label_mi_{est}",
                "layer",
                optional=True,
                notes=notes,
            ),
            Variable(
                f"label_mi_{est}_pca",
                lay,
                "float32",
                _NAT,
                f"I(T_l; Y) by the {what} estimator {_PROJ}",
                "layer",
                optional=True,
                notes=notes,
            ),
        ]
    out.append(
        Variable(
            "label_mi_probe",
            lay,
            "float32",
            _NAT,
            "I(T_l; Y) >= H(Y) - held-out cross-entropy of a logistic-regression probe",
            "layer",
            optional=True,
            notes=_PROBE,
        )
    )
    return out


_FINAL = "mean over the final third of layers"


def declare(variables: list[Variable]) -> dict[str, Variable]:
    """The registry keyed by name; a name declared twice raises (a dict would keep the last)."""
    out: dict[str, Variable] = {}
    for v in variables:
        if v.name in out:
            raise ValueError(f"output variable {v.name!r} is declared twice")
        out[v.name] = v
    return out


VARIABLES: dict[str, Variable] = declare(
    [
        # --- per (epoch, layer, channel) ---
        Variable(
            "channel_label_mi",
            ("epoch", "layer", "channel"),
            "float32",
            _NAT,
            "I(T_lc; Y); NaN past n_channels(layer)",
            "layer",
        ),
        Variable(
            "channel_input_mi",
            ("epoch", "layer", "channel"),
            "float32",
            _NAT,
            "H(Bin T_lc) = I(X; T_lc) for X uniform over the validation images and a "
            "deterministic net (a clustering measure: Saxe et al. 2019)",
            "layer",
        ),
        Variable(
            "class_channel_mi",
            ("epoch", "layer", "channel", "label"),
            "float32",
            _NAT,
            "I(T_lc; 1[Y = k]) for class k = label",
            "layer",
        ),
        # --- per (epoch, layer) ---
        Variable(
            "label_mi",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "I(T_l; Y): mean over the layer's channels of I(T_lc; Y)",
            "layer",
        ),
        Variable(
            "input_mi",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "I(X; T_l): mean over the layer's channels of H(Bin T_lc)",
            "layer",
        ),
        Variable(
            "input_summary_mi",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "mean over channels of I(T_lc; Bin(PC1 of the stored input summaries))",
            "layer",
        ),
        Variable(
            "label_mi_pca",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "I(Bin(top principal components of GAP T_l); Y), joint bins (PCA rule in attrs)",
            "layer",
        ),
        Variable(
            "input_mi_pca",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "H(Bin(top principal components of GAP T_l)), joint bins (PCA rule in attrs)",
            "layer",
        ),
        Variable(
            "gini",
            ("epoch", "layer"),
            "float32",
            _ONE,
            "Gini coefficient of p_c = I(T_lc; Y) / sum_c I(T_lc; Y) (formula in analyzer/core/metrics.py)",
            "layer",
        ),
        Variable(
            "norm_entropy",
            ("epoch", "layer"),
            "float32",
            _ONE,
            "-sum_c p_c log p_c / log C",
            "layer",
        ),
        Variable(
            "topk_share",
            ("epoch", "layer", "k"),
            "float32",
            _ONE,
            "share of sum_c I(T_lc; Y) held by the top ceil(k% C) channels",
            "layer",
        ),
        Variable(
            "nonfinite_channels",
            ("epoch", "layer"),
            "int32",
            _ONE,
            "channels with NaN or Inf activations at this epoch (their MI and the layer's are NaN)",
            "layer",
            fill=0,
        ),
        # --- label-permutation nulls (analyzer/core/nulls.py; P = permutations attr) ---
        Variable(
            "channel_label_mi_null",
            ("epoch", "layer", "channel"),
            "float32",
            _NAT,
            "exact mean over all label permutations pi of I(T_lc; pi(Y)) (hypergeometric cells): "
            "the plug-in bias of a channel with no label information, ~(B-1)(K-1)/(2N)",
            "layer",
        ),
        Variable(
            "channel_label_mi_corrected",
            ("epoch", "layer", "channel"),
            "float32",
            _NAT,
            "plug-in I(T_lc; Y) minus channel_label_mi_null",
            "layer",
        ),
        Variable(
            "channel_label_mi_pvalue",
            ("epoch", "layer", "channel"),
            "float32",
            _ONE,
            "permutation p-value (1 + #{null >= observed}) / (1 + P)",
            "layer",
        ),
        Variable(
            "class_channel_mi_null",
            ("epoch", "layer", "channel", "label"),
            "float32",
            _NAT,
            "exact mean over all label permutations pi of I(T_lc; 1[pi(Y) = k])",
            "layer",
        ),
        Variable(
            "label_mi_null",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "exact mean over all label permutations of the layer mean of I(T_lc; pi(Y)) "
            "(the null of label_mi)",
            "layer",
        ),
        Variable(
            "label_mi_null_lo",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "2.5% quantile over the P seeded permutations of the layer mean of I(T_lc; pi(Y))",
            "layer",
        ),
        Variable(
            "label_mi_null_hi",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "97.5% quantile over the P seeded permutations of the layer mean of I(T_lc; pi(Y))",
            "layer",
        ),
        Variable(
            "label_mi_corrected",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "label_mi minus label_mi_null (plug-in, bias-corrected)",
            "layer",
        ),
        Variable(
            "label_mi_pvalue",
            ("epoch", "layer"),
            "float32",
            _ONE,
            "permutation p-value of label_mi: (1 + #{null layer mean >= observed}) / (1 + P)",
            "layer",
        ),
        Variable(
            "gini_corrected",
            ("epoch", "layer"),
            "float32",
            _ONE,
            "Gini of p_c over the bias-corrected channel_label_mi_corrected clipped at 0",
            "layer",
        ),
        # --- whole layer: Shwartz-Ziv & Tishby, Goldfeld et al. (analyzer/layer_info.py) ---
        Variable(
            "layer_input_mi",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "H(Bin T) = I(X; Bin T) of the joint bin pattern of the whole layer (rule in attrs "
            "layer_binning); NaN for layers wider than 16 units unless forced (it saturates)",
            "layer",
        ),
        Variable(
            "layer_label_mi",
            ("epoch", "layer"),
            "float32",
            _NAT,
            "I(Bin T; Y) of the joint bin pattern of the whole layer (Shwartz-Ziv & Tishby's information plane)",
            "layer",
        ),
        Variable(
            "binned_input_mi",
            ("epoch", "layer", "bin_size"),
            "float32",
            _NAT,
            "H(floor(T / b)) of the whole layer for bin size b = bin_size (Goldfeld et al. 2019, Fig. 1; "
            "saturates at ln N for small b)",
            "layer",
        ),
        Variable(
            "noisy_input_mi",
            ("epoch", "layer", "beta"),
            "float32",
            _NAT,
            "I(X; S + N(0, beta^2 I)) of the noisy network, Monte Carlo over the Gaussian mixture "
            "(Goldfeld et al. 2019); present when betas are given",
            "layer",
            optional=True,
        ),
        Variable(
            "noisy_input_mi_upper",
            ("epoch", "layer", "beta"),
            "float32",
            _NAT,
            "Kolchinsky-Tracey upper bound of noisy_input_mi (pairwise KL divergences)",
            "layer",
            optional=True,
        ),
        Variable(
            "noisy_input_mi_lower",
            ("epoch", "layer", "beta"),
            "float32",
            _NAT,
            "Kolchinsky-Tracey lower bound of noisy_input_mi (pairwise Bhattacharyya distances)",
            "layer",
            optional=True,
        ),
        Variable(
            "cos_within",
            ("epoch", "layer"),
            "float32",
            _ONE,
            "mean cosine similarity of the layer's vectors over pairs of samples of one class",
            "layer",
        ),
        Variable(
            "cos_between",
            ("epoch", "layer"),
            "float32",
            _ONE,
            "mean cosine similarity of the layer's vectors over pairs of samples of different classes",
            "layer",
        ),
        Variable(
            "cos_gap",
            ("epoch", "layer"),
            "float32",
            _ONE,
            "cos_within - cos_between: clustering of the representation by class (Goldfeld et al. 2019)",
            "layer",
        ),
        # --- per epoch, across layers ---
        Variable(
            "layer_mi",
            ("epoch", "layer", "layer_b"),
            "float32",
            _NAT,
            "mean over P fixed seeded aligned channel pairs of I(T_a,s_a(p); T_b,s_b(p)) "
            "(P = pair_samples attr)",
            "epoch",
        ),
        Variable(
            "layer_mi_null",
            ("epoch", "layer", "layer_b"),
            "float32",
            _NAT,
            "bias level of layer_mi: mean over the same P channel pairs of the exact mean of "
            "their plug-in MI over all permutations of one channel's samples (independent "
            "channels, same bins and N; analyzer/core/null_mean.py)",
            "epoch",
        ),
        Variable(
            "layer_mi_pc1",
            ("epoch", "layer", "layer_b"),
            "float32",
            _NAT,
            "I(Bin PC1 of GAP T_a; Bin PC1 of GAP T_b)",
            "epoch",
        ),
        # --- selected epochs and layers ---
        Variable(
            "channel_channel_mi",
            ("cc_epoch", "cc_layer", "channel", "channel_b"),
            "float32",
            _NAT,
            "I(T_lc; T_lc') for all channel pairs of the chosen layers at the chosen epochs "
            "(init, best, last by default); diagonal = H(Bin T_lc)",
            "selected",
        ),
        # --- dynamics over the whole epoch axis ---
        Variable(
            "delta_input_mi",
            (),
            "float64",
            _NAT,
            f"I(X;T) at the best-accuracy epoch minus at epoch 0, {_FINAL}",
            "dynamics",
        ),
        Variable(
            "delta_input_mi_layer",
            ("layer",),
            "float64",
            _NAT,
            "I(X;T)[best epoch] - I(X;T)[epoch 0] per layer",
            "dynamics",
        ),
        Variable(
            "plateau_epoch",
            ("layer",),
            "int64",
            "epoch",
            "first epoch where I(T;Y) reaches plateau_fraction (attr) of its max; -1: undefined",
            "dynamics",
            fill=-1,
        ),
        Variable(
            "post_plateau_slope",
            ("layer",),
            "float64",
            "nat/epoch",
            "least-squares slope of I(X;T) over epochs >= plateau_epoch",
            "dynamics",
        ),
        # --- carried from the store ---
        Variable(
            "val_acc", ("epoch",), "float64", _ONE, "validation accuracy (from the store)", "store"
        ),
        Variable(
            "val_loss",
            ("epoch",),
            "float64",
            _NAT,
            "validation cross-entropy (from the store)",
            "store",
        ),
        Variable(
            "train_acc", ("epoch",), "float64", _ONE, "training accuracy (from the store)", "store"
        ),
        Variable(
            "train_loss",
            ("epoch",),
            "float64",
            _NAT,
            "training loss (from the store)",
            "store",
        ),
        Variable("lr", ("epoch",), "float64", _ONE, "learning rate (from the store)", "store"),
        *_estimator_vars(),
    ]
)


def of_stage(stage: str) -> list[Variable]:
    """The registry's variables of one stage, in registry order."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} not in {STAGES}")
    return [v for v in VARIABLES.values() if v.stage == stage]


def shape_of(var: Variable, sizes: dict[str, int], skip: int = 0) -> tuple[int, ...]:
    """Shape of ``var`` with its first ``skip`` dims left out; sizes: dim -> length."""
    try:
        return tuple(sizes[d] for d in var.dims[skip:])
    except KeyError as e:
        raise ValueError(f"{var.name}: no size for dim {e.args[0]!r}") from None


def stack_layers(results: list[dict], sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """Stack one epoch's per-layer results into (layer, ...) arrays of every 'layer' variable.

    results[i][name] is layer i's value with its channel axis unpadded; it is padded with
    the variable's fill to ``sizes["channel"]``. A missing name is an error (a registry
    variable that nothing computes).
    """
    out = {}
    for var in of_stage("layer"):
        shape = shape_of(var, sizes, skip=2)
        if 0 in shape:  # an optional variable not asked for (e.g. no noise betas)
            continue
        if var.optional and all(var.name not in r for r in results):
            continue  # not asked for (e.g. an estimator not in mi.estimators)
        arr = var.empty((len(results), *shape))
        for i, r in enumerate(results):
            if var.name not in r:
                raise KeyError(f"layer computation did not return registry variable {var.name!r}")
            value = np.asarray(r[var.name])
            arr[(i, *(slice(0, s) for s in value.shape))] = value
        out[var.name] = arr
    return out


def set_attrs(ds) -> None:
    """Units and description of every registry variable present in ``ds`` (in place)."""
    for name, var in VARIABLES.items():
        if name in ds.variables:
            ds[name].attrs.update(units=var.units, description=var.description, **dict(var.notes))
