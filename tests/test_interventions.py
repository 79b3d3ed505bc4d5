import numpy as np
import pytest
import torch
from torch import nn

from analyzer.estimators import channel_label_mi
from tests.helpers import tiny_config
from trainer import interventions as iv
from trainer.models import build_model
from trainer.sites import capture_gap, find_sites
from trainer.train import run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("iv") / "run"
    run(tiny_config("train.epochs=3", "dataset.noise=0.3", "dataset.n_val=64"), run_dir)
    model, cfg, sites = iv.load_checkpoint(run_dir)
    images, labels = iv.validation_tensors(cfg)
    return model, sites, images, labels


def test_suffix_forward_reproduces_the_full_network(trained):
    model, sites, images, labels = trained
    with torch.no_grad():
        full = model(images)
    for site in (sites[0], sites[5], sites[-2], sites[-1]):
        cache = iv.cache_site(model, site, images)
        torch.testing.assert_close(
            iv.suffix_forward(model, site, cache.output, cache.block_input), full
        )


def test_vgg_suffix_forward_reproduces_the_full_network():
    torch.manual_seed(0)
    model = build_model("vgg16", 4, width=0.125).eval()
    images = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        full = model(images)
    for site in find_sites(model)[::4]:
        cache = iv.cache_site(model, site, images)
        torch.testing.assert_close(iv.suffix_forward(model, site, cache.output), full)


def test_knocking_out_nothing_changes_nothing_and_everything_gives_chance(trained):
    model, sites, images, labels = trained
    site = sites[-1]
    cache = iv.cache_site(model, site, images)
    base = iv._accuracy(model(images), labels)
    none, everything = iv.evaluate_edits(
        model,
        site,
        cache,
        labels,
        [iv.zero_edit(np.array([], dtype=int)), iv.zero_edit(np.arange(site.channels))],
    )
    assert none == pytest.approx(base)
    assert everything == pytest.approx(1 / 4)  # constant prediction on 4 balanced classes


def test_energy_preserving_knockout_keeps_each_samples_norm():
    h = torch.rand(5, 8, 3, 3)
    out = iv.zero_edit(np.array([0, 3, 4]), energy_preserving=True)(h)
    torch.testing.assert_close(out.flatten(1).norm(dim=1), h.flatten(1).norm(dim=1))
    assert torch.all(out[:, [0, 3, 4]] == 0)


def test_random_controls_are_reproducible_from_their_seed():
    mi = np.random.default_rng(0).random(50)
    a = iv.select_channels(mi, 0.5, "random", iv.draw_rng(3, 1, 2, 0))
    b = iv.select_channels(mi, 0.5, "random", iv.draw_rng(3, 1, 2, 0))
    c = iv.select_channels(mi, 0.5, "random", iv.draw_rng(4, 1, 2, 0))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    top = iv.select_channels(mi, 0.5, "top", None)
    assert len(a) == len(top) and mi[top].sum() >= 0.5 * mi.sum()
    m = iv.mass_prefix(mi, 0.5)
    assert np.sort(mi)[::-1][: m - 1].sum() < 0.5 * mi.sum() <= np.sort(mi)[::-1][:m].sum()


class OneChannelNet(nn.Module):
    """VGG-shaped toy: channel 0 copies the label signal, channels 1-3 carry noise."""

    def __init__(self):
        super().__init__()
        conv = nn.Conv2d(2, 4, 1)
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[0, 0] = 1.0
            conv.weight[1:, 1] = torch.tensor([1.0, 0.8, 0.6]).view(3, 1, 1)
            conv.bias[:] = 1.0
        self.features = nn.Sequential(conv, nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4, 2)
        with torch.no_grad():
            self.classifier.weight.copy_(
                torch.tensor([[-4.0, 0.1, 0.1, 0.1], [4.0, -0.1, -0.1, -0.1]])
            )
            self.classifier.bias.copy_(torch.tensor([4.0, -4.0]))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def test_top_mi_knockout_hurts_far_more_than_random_in_a_hand_built_net():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 2
    signal = (labels.float() * 2 - 1).view(-1, 1, 1, 1) * 0.9 + 0.05 * torch.randn(
        400, 1, 2, 2, generator=g
    )
    noise = torch.randn(400, 1, 2, 2, generator=g)
    images = torch.cat([signal, noise], dim=1)
    net = OneChannelNet().eval()
    sites = find_sites(net)
    with capture_gap(sites) as pooled, torch.no_grad():
        net(images)
    mi = channel_label_mi(pooled[sites[0].name].numpy(), labels.numpy(), 20, 2)
    assert np.argmax(mi) == 0
    caches = {s.name: iv.cache_site(net, s, images) for s in sites}
    ds = iv.global_interventions(
        net, sites, caches, labels, {sites[0].name: mi}, [0.5], 20, [], seed=0
    )
    base = float(ds.baseline_accuracy)
    assert base > 0.95
    zero = ds.accuracy.sel(variant="zero", q=0.5).isel(layer=0)
    top_drop = base - float(zero.sel(selection="top", draw=0))
    random_drop = base - float(zero.sel(selection="random").mean())
    assert top_drop > 0.4 and top_drop > 2 * random_drop


def test_transplant_copies_the_selected_out_channels(trained):
    model, sites, images, labels = trained
    torch.manual_seed(1)
    other = build_model("resnet18", 4, width=0.125).eval()
    site = sites[-1]
    chans = np.array([0, 2, 5])
    iv.transplant(model, other, site, find_sites(other)[-1], chans)
    block_src, block_dst = model.layer4[-1], other.layer4[-1]
    torch.testing.assert_close(block_dst.conv2.weight[chans], block_src.conv2.weight[chans])
    torch.testing.assert_close(block_dst.bn2.running_var[chans], block_src.bn2.running_var[chans])
    assert not torch.equal(block_dst.conv2.weight[1], block_src.conv2.weight[1])


def test_redundant_set_prefers_channels_that_overlap_the_cover():
    mi = np.array([0.5, 0.3, 0.1, 0.1])
    pair = np.array(
        [[2.0, 0.1, 0.0, 0.9], [0.1, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.9, 0.0, 0.0, 2.0]]
    )
    cover = iv.select_channels(mi, 0.5, "top", None)
    np.testing.assert_array_equal(cover, [0])
    np.testing.assert_array_equal(iv.redundant_set(mi, pair, cover, 0.1), [3])
    np.testing.assert_array_equal(iv.redundant_set(mi, pair, cover, 0.4), [1, 3])


def test_skip_gain_one_is_the_unmodified_network(trained):
    model, sites, images, labels = trained
    ds = iv.skip_gain_sweep(model, images, labels, [0.0, 1.0])
    assert float(ds.skip_gain_accuracy.sel(gain=1.0)) == pytest.approx(
        iv.full_accuracy(model, images, labels)
    )
