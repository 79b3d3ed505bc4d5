"""Every setting, declared once (a table). Add a setting here; its command-line option,
schema entry, README row and identity/resume role follow (``latent_mi/settings/__init__.py``).

Sections of the workflow config in schema order: :data:`SECTIONS`.
"""

from __future__ import annotations

from latent_mi.contract import SITE_CONV_RELU, SITE_CONV_TANH, SITE_KINDS, SITE_POST_ADD
from latent_mi.settings.table import (
    _BOOL,
    _DEVICE,
    _DEVICE_TEXT,
    _FACTORY,
    _NULLABLE_STR,
    _STR,
    ACTIVATIONS,
    CNN_ARCHS,
    COMPUTED,
    DATASETS,
    FIGURE_FORMATS,
    REGULARIZERS,
    REQUIRED,
    Setting,
    _enum,
    _int,
    _num,
    _per_arch,
    arch_schema,
    declare,
)

# section -> (description, default {} in the workflow config: the section may be left out)
SECTIONS: dict[str, tuple[str, bool]] = {
    "dataset": ("the trainer's data (validated by trainer.config too)", False),
    "train": ("the trainer's optimisation and hardware (validated by trainer.config too)", False),
    "hsic": ("the HSIC regularizer of regularizer: hsic runs", False),
    "dump": ("how the activation store is written", False),
    "noise": ("twelve_bit_mlp: noisy networks", False),
    "grid": ("the trained runs: every combination, minus grid.exclude", False),
    "mi": ("the analyzer's options (python -m analyzer; one MI Dataset per bin count)", True),
    "robustness": ("the robustness sweep (`snakemake --cores 8 robustness`, appendix F)", True),
    "interventions": ("MI-ranked interventions and transplants (python -m interventions)", True),
    "figures": ("the figures", True),
    "slurm": ("SLURM partitions (used with --profile workflow/profiles/slurm)", True),
    "twelve_bit": (
        "Shwartz-Ziv & Tishby / Goldfeld et al. on the 12-bit task (target twelve_bit; part of figures when enabled)",
        True,
    ),
}

_POS = _int(1)
_UNIT = _num(gt=0, le=1)
_FRACTION = _num(gt=0, lt=1)
_BINS = _int(2, 255)
_NUMBER_MAP = {
    "oneOf": [{"type": "number"}, {"type": "object", "additionalProperties": {"type": "number"}}]
}
_POSITIVE = _num(gt=0)
_WIDTH = {
    "oneOf": [
        _POSITIVE,
        {"type": "object", "additionalProperties": _POSITIVE},
    ]
}
_EXCLUDE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "arch": arch_schema(CNN_ARCHS),
        "activation": _enum(*ACTIVATIONS),
        "regularizer": _enum(*REGULARIZERS),
        "seed": {"type": "integer"},
    },
}
ID, A, V, F, R = "identity", "analysis", "interventions", "figures", "runtime"
T = {"trainer": True}  # a trainer setting that the workflow config holds as well
TO = {"trainer": True, "workflow": False}  # a trainer setting the workflow sets by itself
C = {"workflow": False}  # a command-line option only

# fmt: off
SETTINGS = declare(
    [
        # --- top level ---
        Setting("results", R, _STR, COMPUTED, "output folder (default: results/<config file stem>; results/default for config/config.yaml); trained runs go to runs/ beside it, shared by configs"),
        Setting("arch", ID, arch_schema(), "resnet18", "vgg16, resnet18, resnet50, twelve_bit_mlp or torchvision:<name> (any torchvision classifier)", **TO),
        Setting("activation", ID, _enum(*ACTIVATIONS), "relu", "every activation of the net (swapped)", **TO),
        Setting("regularizer", ID, _enum(*REGULARIZERS), "none", "none, or hsic: loss = CE - lambda sum_l w_l HSIC", **TO),
        Setting("seed", ID, _int(0), 0, "seed of initialisation, data order and augmentation", **TO),
        Setting("width", ID, _WIDTH, 1.0, "channel multiplier, one number or a map arch -> number (1 = torchvision exactly)", workflow_value={"oneOf": [_POSITIVE, _per_arch(_POSITIVE)]}, **T),
        Setting("arch_overrides", ID, _per_arch({"type": "object"}), {}, "per-arch trainer sections merged over the shared ones, e.g. {vgg16: {train: {lr: 0.01}}}"),
        Setting("sites", ID, {"type": ["array", "null"], "items": _STR, "minItems": 1}, None, "measurement sites by module or fx node name (unset: the discovery rule of 'Your own model')", **T, stored=False),
        Setting("weights", ID, _NULLABLE_STR, None, "torchvision: archs only: a local state-dict file or a torchvision weights name", **T, stored=False),
        Setting("model_factory", ID, _FACTORY, None, "module:function building your own model (README, 'Your own model')", **TO, stored=False),
        Setting("data_factory", ID, _FACTORY, None, "module:function building your own data", **TO, stored=False),
        Setting("input_shape", ID, {"type": "array", "items": _POS}, COMPUTED, "input shape (channel, height, width) of a model_factory model (default: from the data)", **TO),
        # --- dataset ---
        Setting("dataset.name", ID, _enum(*DATASETS), "digits", "digits (bundled), imagenette, imagefolder (root/train, root/val), cifar10, synthetic (tests), twelve_bit (Shwartz-Ziv & Tishby's 12-bit patterns; arch twelve_bit_mlp)", **T),
        Setting("dataset.root", R, _STR, "data", "where the data lives (Imagenette, imagefolder, cifar10)", **T),
        Setting("dataset.size", ID, _enum("full", "320px", "160px"), "160px", "Imagenette image size", **T),
        Setting("dataset.download", R, _BOOL, False, "download a missing dataset on demand", **T),
        Setting("dataset.image_size", ID, _int(8), 32, "input size in pixels: crop size for Imagenette, upscaled size for digits", **T),
        Setting("dataset.val_fraction", ID, _FRACTION, 0.2, "digits: stratified validation share", **T),
        Setting("dataset.split_seed", ID, _int(0), 0, "digits, twelve_bit: seed of the train/validation split", **T),
        Setting("dataset.shift", ID, _int(0), 2, "digits: random-shift augmentation in pixels", **T),
        Setting("dataset.n_classes", ID, _int(2), 4, "synthetic data (tests): classes", **T),
        Setting("dataset.n_train", ID, _POS, 128, "synthetic data (tests): training samples", **T),
        Setting("dataset.n_val", ID, _POS, 64, "synthetic data (tests): validation samples", **T),
        Setting("dataset.noise", ID, _num(ge=0), 0.5, "synthetic data (tests): noise sd", **T),
        Setting("dataset.train_fraction", ID, _FRACTION, 0.85, "twelve_bit: share of the 4,096 patterns that trains", **T),
        # --- train ---
        Setting("train.epochs", ID, _int(0), 15, "maximum epochs after epoch 0", **T),
        Setting("train.batch_size", ID, _POS, 64, "training batch size", **T),
        Setting("train.lr", ID, _POSITIVE, 0.05, "learning rate", **T),
        Setting("train.optimizer", ID, _enum("sgd", "adam"), "sgd", "sgd; adam for twelve_bit_mlp only", **T),
        Setting("train.momentum", ID, _num(ge=0, le=1), 0.9, "SGD momentum", **T),
        Setting("train.weight_decay", ID, _num(ge=0), 0.0005, "weight decay", **T),
        Setting("train.lr_patience", ID, _int(0), 10, "ReduceLROnPlateau on validation accuracy: patience in epochs", **T),
        Setting("train.lr_factor", ID, _FRACTION, 0.1, "ReduceLROnPlateau: factor", **T),
        Setting("train.early_stop_patience", ID, _POS, 25, "stop after this many epochs without improvement", **T),
        Setting("train.num_workers", R, {"oneOf": [_int(0), {"const": "auto"}]}, "auto", "DataLoader workers, a number or auto (see 'On a GPU')", range_text="an integer >= 0 or auto", **T),
        Setting("train.device", R, _DEVICE, "auto", "where training runs (auto: CUDA when present)", range_text=_DEVICE_TEXT, **T),
        Setting("train.amp", ID, _enum("auto", "bf16", "fp16", "off"), "auto", "autocast bf16/fp16/off; auto = on for CUDA, off on CPU", **T),
        Setting("train.channels_last", ID, _enum("auto", True, False), "auto", "NHWC layout true/false; auto = on for CUDA, off on CPU", **T),
        Setting("train.progress", R, _BOOL, True, "progress bar (display only)", **T),
        Setting("train.live", R, _BOOL, False, "run the live analyzer beside training (python -m trainer --live)", stored=False, **T),
        # --- hsic ---
        Setting("hsic.lambda", ID, _num(ge=0), 0.01, "weight of the HSIC term: loss = CE - lambda sum_l w_l HSIC", **T),
        Setting("hsic.weights", ID, _NUMBER_MAP, 1.0, "w_l: one number for every site of hsic.site_kinds, or {site: w}", **T),
        Setting("hsic.site_kinds", ID, _enum(*SITE_KINDS), [SITE_CONV_RELU, SITE_CONV_TANH, SITE_POST_ADD], "site kinds that carry the HSIC term", many=True, **T),
        Setting("hsic.bandwidth", ID, {"oneOf": [{"const": "median"}, _POSITIVE]}, "median", "RBF bandwidth: median heuristic or a number sigma", **T),
        # --- dump ---
        Setting("dump.dtype", ID, _enum("float32", "float16"), "float32", "storage dtype of the activations", **T),
        Setting("dump.unit_chunk", ID, _POS, 1024, "units per Zarr chunk", **T),
        Setting("dump.clevel", R, _int(0, 9), 1, "Blosc-zstd level of new stores (lossless; 1: ~4x faster than 3 for ~6% more bytes)", **T),
        Setting("dump.checkpoint_every_epoch", ID, _BOOL, False, "keep epoch-NNN.pt besides init/best/last", **T),
        Setting("dump.epochs", ID, _enum("all", "log"), "all", "twelve_bit_mlp: dump all epochs, or log: ~log_count log-spaced ones", **T),
        Setting("dump.log_count", ID, _POS, 30, "dump epochs of dump.epochs: log", **T),
        Setting("noise.beta", ID, _num(ge=0), 0.0, "twelve_bit_mlp: sd of the Gaussian noise after every hidden activation", **TO),
        # --- grid ---
        Setting("grid.arch", ID, arch_schema(CNN_ARCHS), REQUIRED, "vgg16, resnet18, resnet50, torchvision:<name> (any torchvision classifier, see 'Your own model')", many=True, min_items=1),
        Setting("grid.activation", ID, _enum(*ACTIVATIONS), REQUIRED, "relu, tanh (every activation of the net is swapped)", many=True, min_items=1),
        Setting("grid.regularizer", ID, _enum(*REGULARIZERS), REQUIRED, "none, hsic", many=True, min_items=1),
        Setting("grid.seed", ID, _int(0), REQUIRED, "seeds; each grid point is one run <arch>-<activation>-<regularizer>-s<seed>", many=True, min_items=1),
        Setting("grid.exclude", ID, _EXCLUDE, [], "partial grid points to drop, e.g. [{arch: resnet50, regularizer: hsic}]", many=True),
        # --- mi: python -m analyzer ---
        Setting("mi.bins", A, _BINS, [20], "equal-width bins per variable; the workflow: one analysis per count", many=True, min_items=1, axis=True, flag="--bins"),
        Setting("mi.topk", A, _num(gt=0, le=100), [1, 5, 10, 20], "Top-k% levels of topk_share", many=True, min_items=1, flag="--topk"),
        Setting("mi.pair_samples", A, _POS, 64, "channel pairs per layer pair for layer_mi", flag="--pair-samples"),
        Setting("mi.pca_components", A, _POS, 2, "components for the *_pca layer estimates (at most the widest layer's channels)", flag="--pca-components"),
        Setting("mi.cc_layers", A, _STR, ["last"], "layers for all-pairs channel MI: last, all, or layer names", many=True, min_items=1, flag="--cc-layers"),
        Setting("mi.cc_epochs", A, _enum("init", "best", "last"), ["init", "best", "last"], "epochs for all-pairs channel MI", many=True, min_items=1, flag="--cc-epochs"),
        Setting("mi.miller_madow", A, _BOOL, False, "apply the Miller-Madow bias correction", flag="--miller-madow"),
        Setting("mi.seed", A, _int(0), 0, "seed of the channel-pair samples, the PCA subsample and the label permutations", flag="--seed"),
        Setting("mi.permutations", A, _int(0), 20, "seeded label permutations of the null p-values and band (null means are exact; 0: no null)", flag="--permutations"),
        Setting("mi.layer_binning", A, _enum("auto", "size", "range"), "auto", "layer_input_mi/layer_label_mi rule: fixed bin size floor(t/b), or B bins over the layer's observed range; auto: size for tanh stores, range otherwise", flag="--layer-binning"),
        Setting("mi.layer_bin_size", A, {"type": ["number", "null"], "exclusiveMinimum": 0}, None, "b of the size rule (unset: 2/B, B bins on [-1, 1])", flag="--layer-bin-size", range_text="> 0"),
        Setting("mi.force_whole_layer", A, _BOOL, False, "bin layers wider than 16 units as one joint pattern too (it saturates: H -> ln N)", flag="--force-whole-layer"),
        Setting("mi.bin_sizes", A, _POSITIVE, [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "bin sizes of binned_input_mi", many=True, min_items=1, flag="--bin-sizes"),
        Setting("mi.noise_betas", A, _POSITIVE, [], "noise sd beta of noisy_input_mi and its bounds ([]: not computed)", many=True, flag="--noise-betas"),
        Setting("mi.noise_samples", A, _POS, 1, "noise draws per sample of noisy_input_mi", flag="--noise-samples"),
        Setting("mi.estimators", A, _enum("histogram", "knn", "gaussian", "probe"), ["histogram"], "MI estimators: histogram (always computed), knn, gaussian, probe; each adds its own variables (README, 'Estimators beyond the histogram')", many=True, min_items=1, flag="--estimators"),
        Setting("mi.knn_k", A, _POS, 3, "neighbours k of the kNN estimator", flag="--knn-k"),
        Setting("mi.estimator_dims", A, _POS, 4, "leading principal components of the *_knn_pca and *_gaussian_pca estimates", flag="--estimator-dims"),
        Setting("mi.run", A, _NULLABLE_STR, None, "run name stored as the scalar coord 'run' (unset: the run directory's name)", flag="--run", **C),
        Setting("mi.threads", R, _POS, None, "dask threads (unset: all cores)", flag="--threads", **C),
        Setting("mi.processes", R, _POS, None, "use dask's processes scheduler with this many worker processes instead of threads", flag="--processes", **C),
        Setting("mi.scheduler", R, _NULLABLE_STR, None, "dask.distributed scheduler address (workers must see STORE and OUT's folder)", flag="--scheduler", **C),
        Setting("mi.allow_running", R, _BOOL, False, "analyze the complete epochs of a store still being written (rerun later: only new epochs are computed and appended)", flag="--allow-running", **C),
        Setting("mi.progress", R, _BOOL, True, "progress bar", flag="--progress", **C),
        # --- robustness ---
        Setting("robustness.bins", A, _BINS, [10, 20, 30, 50], "bin counts of the sweep", many=True, min_items=1, flag="--bins"),
        Setting("robustness.fractions", A, _UNIT, [0.25, 0.5, 1.0], "validation-sample fractions of the sweep", many=True, min_items=1, flag="--fractions"),
        Setting("robustness.rules", A, _enum("range", "quantile", "fixed"), ["range", "quantile", "fixed"], "binning rules of the sweep", many=True, min_items=1, flag="--rules"),
        Setting("robustness.seed", A, _int(0), 0, "seed of the class-stratified sample subsets", flag="--seed"),
        Setting("robustness.permutations", A, _POS, 10, "accepted for old configs; ignored (the sweep's null mean is exact)"),
        # --- interventions: python -m interventions ---
        Setting("interventions.enabled", V, _BOOL, True, "run the interventions"),
        Setting("interventions.q", V, _UNIT, [0.1, 0.25, 0.5, 0.75], "MI-mass levels of the global knockouts", many=True, min_items=1, flag="--q"),
        Setting("interventions.class_q", V, _UNIT, [0.25, 0.5], "MI-mass levels of the class-targeted knockouts", many=True, min_items=1, flag="--class-q"),
        Setting("interventions.random_draws", V, _POS, 3, "seeded random-control draws", flag="--draws"),
        Setting("interventions.noise", V, _num(ge=0), [0.5, 1.0], "perturbation levels in channel standard deviations", many=True, flag="--noise"),
        Setting("interventions.layers", V, _enum("all", "last", "last-third"), "all", "sites: all, last-third (latent_mi.contract.final_third) or last", flag="--layers"),
        Setting("interventions.skip_gains", V, _num(ge=0), [0.0, 0.5, 1.0, 1.5], "ResNets: identity-path gains g of the skip-gain sweep", many=True, min_items=1, flag="--skip-gains"),
        Setting("interventions.seed", V, _int(0), 0, "seed of the random controls", flag="--seed"),
        Setting("interventions.transplants", V, _BOOL, True, "seed-pair transplants (donor seed s -> recipient seed s+1)"),
        Setting("interventions.regularizers", V, _enum(*REGULARIZERS), ["none"], "interventions and transplants only for runs with these regularizers", many=True),
        Setting("interventions.device", R, _DEVICE, "auto", "where torch runs (auto: CUDA when present); cuda* asks Snakemake for gpu=1", flag="--device", range_text=_DEVICE_TEXT),
        Setting("interventions.batch_size", R, _POS, 100, "validation samples per batch", flag="--batch-size", **C),
        Setting("interventions.workers", R, _int(0), 0, "DataLoader worker processes", flag="--workers", **C),
        Setting("interventions.edit_mb", R, _POS, 256, "MiB of site outputs edited per suffix forward", flag="--edit-mb", **C),
        Setting("interventions.threads", R, _POS, None, "torch CPU threads (unset: torch's default)", flag="--threads", **C),
        # --- figures, slurm ---
        Setting("figures.formats", F, _enum(*FIGURE_FORMATS), ["png", "pdf"], "file formats of every figure", many=True),
        Setting("slurm.cpu_partition", R, _STR, "", "partition of analysis and figure jobs ('' = the cluster's default)"),
        Setting("slurm.gpu_partition", R, _STR, "", "partition of training and intervention jobs ('' = the cluster's default)"),
        # --- twelve_bit ---
        Setting("twelve_bit.enabled", F, _BOOL, False, "train the twelve_bit runs and draw their figures in `figures` (the target twelve_bit always does)"),
        Setting("twelve_bit.activation", ID, _enum("tanh", "relu"), ["tanh"], "hidden activations, one run set each", many=True, min_items=1),
        Setting("twelve_bit.train_beta", ID, _num(ge=0), [0.0], "noise sd of the trained networks (0 = deterministic), one run set each", many=True, min_items=1),
        Setting("twelve_bit.seed", ID, _int(0), [0, 1, 2], "repeats", many=True, min_items=1),
        Setting("twelve_bit.train_fraction", ID, _FRACTION, 0.85, "share of the 4,096 patterns that trains"),
        Setting("twelve_bit.epochs", ID, _POS, 600, "training epochs"),
        Setting("twelve_bit.dump_count", ID, _POS, 20, "log-spaced dump epochs"),
        Setting("twelve_bit.train", ID, {"type": "object"}, {"optimizer": "adam", "lr": 0.002, "batch_size": 512, "weight_decay": 0.0}, "trainer train section of the twelve_bit runs (optimizer, lr, batch_size, ...)"),
        Setting("twelve_bit.bins", A, _BINS, [30], "bin counts of the information plane (fixed bin size 2/B for tanh)", many=True, min_items=1),
        Setting("twelve_bit.bin_sizes", A, _POSITIVE, [0.0001, 0.001, 0.01, 0.1], "bin sizes of binned_input_mi of the twelve_bit runs (the analyzer's mi.bin_sizes, decades only)", many=True, min_items=1),
        Setting("twelve_bit.noise_betas", A, _POSITIVE, [0.01, 0.05], "noise sd of the noisy-network estimator ([] = not computed)", many=True),
    ]
)
# fmt: on
