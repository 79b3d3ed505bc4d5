"""Seeds 003/002 systems: the shipped 12-bit dataset, twelve_bit_mlp, its loop and store, whole-layer MI."""

import math

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.metrics import mutual_info_score
from sklearn.metrics.pairwise import cosine_similarity

from analyzer.core.clustering import cosine_clustering
from analyzer.core.whole_layer import LayerBinning, SaturationError, binned_input_mi, whole_layer_mi
from trainer.config import resolve_config
from trainer.models import build_model
from trainer.sites import capture_gap, find_sites
from trainer.task import dump_schedule
from trainer.twelve_bit.data import load_twelve_bit_bundle, load_var_u, split_indices, var_u_path

TWELVE_BIT = [
    "arch=twelve_bit_mlp",
    "dataset.name=twelve_bit",
    "activation=tanh",
    "train.optimizer=adam",
    "train.lr=0.01",
    "train.batch_size=512",
    "train.weight_decay=0",
    "train.progress=false",
    "train.device=cpu",
    "dump.epochs=log",
    "dump.log_count=5",
]


def test_dataset_is_the_shipped_file():
    path = var_u_path()
    assert path.name == "var_u.mat" and "trainer" in path.parts  # inside the package
    x, y = load_var_u()
    assert x.shape == (4096, 12) and set(np.unique(x)) == {0.0, 1.0}
    assert len(np.unique(x, axis=0)) == 4096  # every 12-bit pattern once
    assert set(np.unique(y)) == {0, 1} and y.dtype == np.int64


@pytest.mark.parametrize("fraction", [0.85, 0.05, 0.45])
def test_split_fraction_seeded_and_disjoint(fraction):
    tr, va = split_indices(4096, fraction, seed=3)
    assert len(tr) == round(4096 * fraction) and len(tr) + len(va) == 4096
    assert not set(tr) & set(va)
    again, _ = split_indices(4096, fraction, seed=3)
    other, _ = split_indices(4096, fraction, seed=4)
    assert np.array_equal(tr, again) and not np.array_equal(tr, other)
    bundle = load_twelve_bit_bundle(fraction, 3)
    assert len(bundle.train) == len(tr) and len(bundle.analysis) == 4096


def test_twelve_bit_mlp_shapes_sites_and_noise():
    torch.manual_seed(0)
    net = build_model("twelve_bit_mlp", 2, "tanh").eval()
    sites = find_sites(net)
    assert [(s.name, s.channels) for s in sites] == [
        ("fc1", 10),
        ("fc2", 7),
        ("fc3", 5),
        ("fc4", 4),
        ("fc5", 3),
    ]
    assert {s.kind for s in sites} == {"fc-tanh"}
    x = torch.from_numpy(load_var_u()[0][:64])
    with capture_gap(sites) as pooled:
        logits = net(x)
    assert logits.shape == (64, 2)
    assert [tuple(pooled[s.name].shape) for s in sites] == [(64, c) for c in (10, 7, 5, 4, 3)]
    assert all(
        pooled[s.name].abs().max() <= 1 for s in sites
    )  # tanh range: whole layer, no pooling
    net.beta = 0.1
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))  # noisy in evaluation too
        with net.noisy(False):
            assert torch.equal(net(x), logits)
    relu = build_model("twelve_bit_mlp", 2, "relu")
    assert {s.kind for s in find_sites(relu)} == {"fc-relu"}


def test_dump_grid_is_log_spaced_with_zero_and_last():
    grid = dump_schedule(10000, "log", 30)
    assert grid[0] == 0 and grid[-1] == 10000 and len(grid) == 31
    assert np.all(np.diff(grid) > 0) and grid[1] == 1
    assert dump_schedule(5, "log", 30) == list(range(6)) and dump_schedule(8, "all", 3) == list(
        range(9)
    )


def test_config_checks():
    from trainer.config import ConfigError

    with pytest.raises(ConfigError, match="twelve_bit_mlp only"):
        resolve_config(None, ["train.optimizer=adam"])
    with pytest.raises(ConfigError, match="noise.beta"):
        resolve_config(None, [*TWELVE_BIT, "noise.beta=-1"])


def test_training_writes_the_store_contract(tmp_path):
    from analyzer.activations import layers_of, open_activations
    from trainer.train import run

    cfg = resolve_config(None, [*TWELVE_BIT, "train.epochs=20", "noise.beta=0.05", "seed=1"])
    done = run(cfg, tmp_path / "run")
    assert done["status"] == "complete"
    ds = open_activations(tmp_path / "run" / "activations.zarr")
    assert ds.epoch.values.tolist() == dump_schedule(20, "log", 5)
    assert ds.activation.shape == (len(ds.epoch), 4096, 29)
    assert [layer.name for layer in layers_of(ds)] == ["fc1", "fc2", "fc3", "fc4", "fc5"]
    assert ds.attrs["noise_beta"] == 0.05 and ds.attrs["dataset"] == "twelve_bit"
    assert np.array_equal(ds.label.values, load_var_u()[1])
    assert np.isfinite(ds.val_acc.values).all() and np.isnan(ds.train_loss.values[0])
    # the dump is the deterministic S of the stored network: equal to a noise-free forward
    net = build_model("twelve_bit_mlp", 2, "tanh")
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    net.load_state_dict(state["model"])
    with torch.no_grad(), capture_gap(find_sites(net)) as pooled:
        net(torch.from_numpy(load_var_u()[0]))
    np.testing.assert_allclose(ds.activation.values[-1, :, :10], pooled["fc1"].numpy(), atol=1e-6)
    # started again: finished work is kept
    assert run(cfg, tmp_path / "run")["epochs"] == done["epochs"]


def test_twelve_bit_store_through_the_analyzer(tmp_path):
    from analyzer.layer_info import LayerInfoOptions
    from analyzer.mi_tensors import Options, analyze
    from trainer.train import run

    run(resolve_config(None, [*TWELVE_BIT, "train.epochs=6"]), tmp_path / "run")
    opts = Options(bins=30, pair_samples=4, layer_info=LayerInfoOptions(betas=(0.01, 0.1)))
    analyze(tmp_path / "run" / "activations.zarr", tmp_path / "mi.zarr", opts)
    ds = xr.open_zarr(tmp_path / "mi.zarr")
    assert ds.layer_input_mi.dims == ("epoch", "layer")
    assert ds.noisy_input_mi.dims == ("epoch", "layer", "beta") and list(ds.beta.values) == [
        0.01,
        0.1,
    ]
    # first tanh layer at init, 30 bins: (almost) every pattern distinct
    assert ds.layer_input_mi.sel(layer="fc1").values[0] > 0.95 * math.log(4096)
    assert (ds.noisy_input_mi_lower <= ds.noisy_input_mi_upper + 1e-6).all()
    assert ds.attrs["layer_binning_rule"] == "size" and ds.layer_input_mi.attrs["units"] == "nat"


def _brute_force(values, labels, b):
    codes = np.floor(values / b).astype(np.int64)
    _, ids = np.unique(codes, axis=0, return_inverse=True)
    p = np.unique(ids, return_counts=True)[1] / len(ids)
    return -(p * np.log(p)).sum(), mutual_info_score(ids.ravel(), labels)


def test_whole_layer_estimators_against_np_unique():
    rng = np.random.default_rng(0)
    values = np.round(np.tanh(rng.normal(size=(600, 4))), 1)  # many ties
    labels = rng.integers(0, 3, 600)
    for b in (0.05, 0.2, 2 / 30):
        h, i = whole_layer_mi(values, labels, LayerBinning("size", b))
        ref_h, ref_i = _brute_force(values, labels, b)
        assert h == pytest.approx(ref_h, abs=1e-10) and i == pytest.approx(ref_i, abs=1e-10)
    h, i = whole_layer_mi(values, labels, LayerBinning("range", 5))
    lo, hi = values.min(), values.max()
    codes = np.minimum(np.floor((values - lo) * 5 / (hi - lo)), 4).astype(int)
    _, ids = np.unique(codes, axis=0, return_inverse=True)
    assert i == pytest.approx(mutual_info_score(ids.ravel(), labels), abs=1e-10)
    assert whole_layer_mi(values[:, :1] * 0, labels, LayerBinning("range", 5)) == (0.0, 0.0)


def test_wide_layers_refused_unless_forced():
    rng = np.random.default_rng(1)
    wide = rng.normal(size=(300, 40))
    with pytest.raises(SaturationError, match="saturates"):
        whole_layer_mi(wide, rng.integers(0, 2, 300), LayerBinning("size", 0.1))
    h, i = whole_layer_mi(wide, rng.integers(0, 2, 300), LayerBinning("size", 0.1), force=True)
    assert h == pytest.approx(math.log(300))  # the saturation the refusal names


def test_binning_sensitivity_saturates_at_ln_4096():
    torch.manual_seed(0)
    net = build_model("twelve_bit_mlp", 2, "tanh").eval()
    sites = find_sites(net)
    with torch.no_grad(), capture_gap(sites) as pooled:
        net(torch.from_numpy(load_var_u()[0]))
    fc1 = pooled["fc1"].numpy()
    sizes = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    mi = binned_input_mi(fc1, sizes)
    assert mi[0] == pytest.approx(math.log(4096), abs=1e-12)  # every pattern its own bin
    assert mi[-1] < mi[0]  # coarse bins merge patterns
    assert all(v <= math.log(4096) + 1e-12 for v in mi)


def test_cosine_clustering_against_brute_force():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 200)
    values = rng.normal(size=(200, 5)) + 2 * np.eye(5)[labels]
    values[7] = 0  # a zero vector has no direction: left out
    c = cosine_clustering(values, labels)
    keep = np.arange(200) != 7
    sim = cosine_similarity(values[keep])
    same = labels[keep][:, None] == labels[keep][None, :]
    off = ~np.eye(keep.sum(), dtype=bool)
    assert c.within == pytest.approx(sim[same & off].mean(), abs=1e-12)
    assert c.between == pytest.approx(sim[~same].mean(), abs=1e-12)
    assert c.gap > 0.3


def test_cosine_clustering_compiled_pass_matches_numpy_on_strided_float32():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    block = np.maximum(rng.normal(size=(300, 40)), 0).astype(np.float32)
    block[11] = 0
    values = block[:, 5:29]  # a strided view, as the analyzer passes a layer of a segment
    t = values.astype(np.float64)
    norm = np.linalg.norm(t, axis=1)
    keep = norm > 0
    sums = np.zeros((4, t.shape[1]))
    np.add.at(sums, labels[keep], t[keep] / norm[keep, None])
    n_k = np.bincount(labels[keep], minlength=4).astype(float)
    gram = sums @ sums.T
    within = (np.trace(gram) - n_k.sum()) / (n_k * (n_k - 1)).sum()
    between = (gram.sum() - np.trace(gram)) / (n_k.sum() ** 2 - (n_k**2).sum())
    c = cosine_clustering(values, labels)
    assert c.within == pytest.approx(within, abs=1e-12)
    assert c.between == pytest.approx(between, abs=1e-12)
    bad = values.copy()
    bad[3, 2] = np.inf
    assert math.isnan(cosine_clustering(bad, labels).within)
    # the same from a copy, a transposed (non-row-contiguous) layout and float64
    for other in (values.copy(), np.asfortranarray(values), values.astype(np.float64)):
        again = cosine_clustering(other, labels)
        assert again.within == pytest.approx(c.within, abs=1e-12)
        assert again.between == pytest.approx(c.between, abs=1e-12)


def test_twelve_bit_figures_average_every_seed_of_a_group():
    from analyzer.figures.twelve_bit import TWELVE_BIT_FIGURES, twelve_bit_groups

    rng = np.random.default_rng(0)
    dims3 = ("run", "epoch", "layer")
    shape = (3, 4, 2)
    ds = xr.Dataset(
        {
            name: (dims3, rng.random(shape))
            for name in ("layer_input_mi", "layer_label_mi", "cos_within", "cos_between", "cos_gap")
        },
        coords={
            "epoch": [0, 1, 10, 100],
            "layer": ["fc1", "fc2"],
            "seed": ("run", [0, 1, 2]),
            "activation": "tanh",  # scalar: shared by every run (as load_runs leaves it)
            "noise_beta": 0.0,
            "bins": 30,
            "bin_size": [1e-3, 1e-1],
            "beta": [0.01],
        },
    )
    ds["binned_input_mi"] = (("run", "epoch", "layer", "bin_size"), rng.random((3, 4, 2, 2)))
    for name in ("noisy_input_mi", "noisy_input_mi_upper", "noisy_input_mi_lower"):
        ds[name] = (("run", "epoch", "layer", "beta"), rng.random((3, 4, 2, 1)))
    groups = twelve_bit_groups(ds)
    assert list(groups) == [("tanh", 0.0)] and groups[("tanh", 0.0)].sizes["run"] == 3
    for draw in TWELVE_BIT_FIGURES.values():
        fig = draw(ds).figure
        assert "seeds [0, 1, 2]" in " ".join(ax.get_title() for ax in fig.axes)


def test_resume_keeps_work_and_refuses_a_changed_config(tmp_path):
    from trainer.resume import ResumeError
    from trainer.train import run

    cfg = resolve_config(None, [*TWELVE_BIT, "train.epochs=12"])
    run(cfg, tmp_path / "run")
    first = xr.open_zarr(tmp_path / "run" / "activations.zarr").activation.values
    # started again on a finished run: a display-only change resumes (nothing retrained)
    longer = resolve_config(None, [*TWELVE_BIT, "train.epochs=12", "train.progress=true"])
    assert run(longer, tmp_path / "run")["epochs"] == first.shape[0]  # display key: resumes
    with pytest.raises(ResumeError, match="train.lr"):
        run(
            resolve_config(None, [*TWELVE_BIT, "train.epochs=12", "train.lr=0.5"]), tmp_path / "run"
        )
    assert (tmp_path / "run" / "activations.zarr").is_dir()  # nothing deleted
