"""The streamed interventions package against the pre-streaming implementation
(tests/legacy_interventions.py, unstreamed, whole validation set at once) and brute force."""

import numpy as np
import pytest
import torch
from torch import nn

import interventions as iv
import tests.legacy_interventions as legacy
from analyzer.core.histogram import channel_label_mi
from interventions import edits as E
from interventions import experiments as X
from interventions.loading import validation_set
from interventions.selection import Ranking, choose, draw_rng, q_key
from tests.helpers import tiny_config
from trainer.models import build_model
from trainer.sites import capture_gap, find_sites
from trainer.train import run

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("iv") / "run"
    run(tiny_config("train.epochs=3", "dataset.noise=0.3", "dataset.n_val=64"), run_dir)
    ckpt = iv.load_checkpoint(run_dir)
    data = validation_set(ckpt.config)
    images = torch.stack([data[i][0] for i in range(len(data))])
    labels = torch.as_tensor([data[i][1] for i in range(len(data))])
    return run_dir, ckpt, data, images, labels


def streamer(ckpt, data, batch=24, edit_bytes=40_000):
    """Uneven batches (64 = 24 + 24 + 16) and small edit groups: many suffix forwards."""
    return iv.Streamer(
        iv.surgery_for(ckpt.model), data, len(ckpt.classes), CPU, batch, 0, edit_bytes
    )


def fake_mi(sites, seed=0, nan_at=None):
    rng = np.random.default_rng(seed)
    mi = {s.name: rng.random(s.channels) for s in sites}
    if nan_at is not None:
        for v in mi.values():
            v[nan_at] = np.nan
    return mi


def test_site_output_and_suffix_reproduce_the_full_network(trained):
    _, ckpt, _, images, _ = trained
    surg = iv.surgery_for(ckpt.model)
    with torch.no_grad():
        full = ckpt.model(images)
    for site in ckpt.sites[::3] + ckpt.sites[-1:]:
        torch.testing.assert_close(surg.suffix(site, surg.site_output(site, images)), full)
    torch.manual_seed(0)
    vgg = build_model("vgg16", 4, width=0.125).eval()
    x = torch.randn(6, 3, 32, 32)
    surg = iv.surgery_for(vgg)
    with torch.no_grad():
        full = vgg(x)
    for site in find_sites(vgg)[::4]:
        torch.testing.assert_close(surg.suffix(site, surg.site_output(site, x)), full)


def _legacy_zero(ckpt, site, images, labels, chans_list, energy):
    cache = legacy.cache_site(ckpt.model, site, images)
    edits = [legacy.zero_edit(c, energy) for c in chans_list]
    return legacy.evaluate_edits(ckpt.model, site, cache, labels, edits)


def test_streamed_knockouts_equal_the_unstreamed_ones(trained):
    _, ckpt, data, images, labels = trained
    sites = [ckpt.sites[0], ckpt.sites[7], ckpt.sites[-1]]
    depth = {s.name: i for i, s in enumerate(ckpt.sites)}
    mi = fake_mi(sites)
    rankings = {n: Ranking.of(v) for n, v in mi.items()}
    exp = X.GlobalInterventions(sites, rankings, [0.25, 0.5, 0.9], 2, [], seed=3)
    X.run_site_experiments(streamer(ckpt, data), sites, depth, [exp])
    ds = exp.dataset(np.nan)
    for li, site in enumerate(sites):
        choices = list(choose(rankings[site.name], iv.plan(exp.qs, 2), 3, depth[site.name]))
        for vi, energy in ((0, False), (1, True)):
            ref = _legacy_zero(ckpt, site, images, labels, [c.channels for c in choices], energy)
            for c, r in zip(choices, ref, strict=True):
                s = c.slot
                got = ds.accuracy.values[li, s.qi, s.si, vi, s.draw]
                assert got == pytest.approx(r, abs=1e-6), (site.name, s, energy)
    assert np.isnan(ds.accuracy.sel(selection="top", draw=1)).all()
    assert ds.n_selected.values[0].tolist() == [
        iv.mass_prefix(mi[sites[0].name], q) for q in exp.qs
    ]


def test_shuffle_and_noise_equal_brute_force_on_the_whole_set(trained):
    _, ckpt, data, images, labels = trained
    site = ckpt.sites[-3]
    d_idx = len(ckpt.sites) - 3
    ranking = Ranking.of(fake_mi([site], 1)[site.name])
    exp = X.GlobalInterventions([site], {site.name: ranking}, [0.5], 2, [0.5, 2.0], seed=5)
    X.run_site_experiments(streamer(ckpt, data), [site], {site.name: d_idx}, [exp])
    acc = exp.dataset(np.nan).accuracy
    cache = legacy.cache_site(ckpt.model, site, images)
    h = cache.output.double()
    n = len(labels)
    for c in choose(ranking, iv.plan([0.5], 2), 5, d_idx):
        s, idx = c.slot, torch.as_tensor(c.channels)
        perm = torch.as_tensor(E.permutation(n, draw_rng(5, d_idx, X.SHUFFLE_TAG, s.draw)))
        shuffled = cache.output.clone()
        shuffled[:, idx] = cache.output[perm][:, idx]
        edited = [shuffled]
        sd = h[:, idx].transpose(0, 1).flatten(1).std(dim=1).float().view(1, -1, 1, 1)
        for level in (0.5, 2.0):
            rng = draw_rng(5, d_idx, s.si, q_key(s.q), s.draw, X.NOISE_TAG, q_key(level))
            z = torch.from_numpy(rng.standard_normal((n, len(idx), *h.shape[2:]), dtype=np.float32))
            noisy = cache.output.clone()
            noisy[:, idx] = cache.output[:, idx] + level * sd * z
            edited.append(noisy)
        for vi, e in zip((2, 3, 4), edited, strict=True):
            logits = legacy.suffix_forward(ckpt.model, site, e, cache.block_input)
            ref = legacy._accuracy(logits, labels)
            assert float(acc.values[0, 0, s.si, vi, s.draw]) == pytest.approx(ref, abs=1e-6)
    # a shuffle moves maps between samples, never changes them: the shuffled set's values
    perm = E.permutation(n, draw_rng(5, d_idx, X.SHUFFLE_TAG, 0))
    assert sorted(perm.tolist()) == list(range(n))


def test_class_knockouts_equal_per_class_brute_force(trained):
    _, ckpt, data, images, labels = trained
    site = ckpt.sites[-1]
    d = len(ckpt.sites) - 1
    rng = np.random.default_rng(2)
    class_mi = {site.name: rng.random((site.channels, 4))}
    exp = X.ClassKnockouts([site], class_mi, [0.3, 0.6], 2, seed=1, n_classes=4)
    s = streamer(ckpt, data)
    X.run_site_experiments(s, [site], {site.name: d}, [exp])
    correct, count = s.class_counts(4)
    ds = exp.dataset(correct / count)
    with torch.no_grad():
        logits = ckpt.model(images)
    for k in range(4):
        mask = labels == k
        assert float(ds.class_baseline[k]) == pytest.approx(
            legacy._accuracy(logits[mask], labels[mask])
        )
        cache = legacy.cache_site(ckpt.model, site, images[mask])
        choices = list(
            choose(Ranking.of(class_mi[site.name][:, k]), iv.plan([0.3, 0.6], 2), 1, d, k)
        )
        ref = legacy.evaluate_edits(
            ckpt.model, site, cache, labels[mask], [legacy.zero_edit(c.channels) for c in choices]
        )
        for c, r in zip(choices, ref, strict=True):
            got = ds.class_accuracy.values[0, c.slot.qi, c.slot.si, k, c.slot.draw]
            assert got == pytest.approx(r, abs=1e-6)
    # the class-k top set is ranked by class k's MI, not another class's
    top0 = next(choose(Ranking.of(class_mi[site.name][:, 0]), iv.plan([0.3], 1), 1, d, 0)).channels
    assert set(top0) <= set(np.argsort(-class_mi[site.name][:, 0])[: len(top0)])


def test_cover_vs_redundant_equals_the_unstreamed_one(trained):
    _, ckpt, data, images, labels = trained
    site = ckpt.sites[-1]
    rng = np.random.default_rng(4)
    mi = rng.random(site.channels)
    pair = rng.random((site.channels, site.channels))
    exp = X.CoverVsRedundant(site, mi, pair, [0.2, 0.5])
    X.run_site_experiments(streamer(ckpt, data), [site], {site.name: 0}, [exp])
    ds = exp.dataset().isel(cover_layer=0)
    cache = legacy.cache_site(ckpt.model, site, images)
    ref = legacy.cover_vs_redundant(ckpt.model, site, cache, labels, mi, pair, [0.2, 0.5])
    for name in ("cover_accuracy", "redundant_accuracy", "cover_size", "redundant_size"):
        np.testing.assert_allclose(ds[name].values, ref[name].values, atol=1e-6)
    np.testing.assert_allclose(ds.redundant_mass.values, ref.redundant_mass.values)


def test_transplants_and_skip_gain_equal_the_unstreamed_ones(trained):
    _, ckpt, data, images, labels = trained
    torch.manual_seed(1)
    other = build_model("resnet18", 4, width=0.125).eval()
    r_sites = find_sites(other)
    layers = [ckpt.sites[-1].name, ckpt.sites[4].name]
    mi = fake_mi(ckpt.sites, 6)
    depth = {s.name: i for i, s in enumerate(ckpt.sites)}
    rec = iv.Streamer(iv.surgery_for(other), data, 4, CPU, 24)
    ds = X.transplants(
        iv.surgery_for(ckpt.model),
        rec,
        {s.name: s for s in ckpt.sites},
        {s.name: s for s in r_sites},
        {n: Ranking.of(mi[n]) for n in layers},
        layers,
        depth,
        [0.5],
        2,
        0,
    )
    ref = legacy.transplants(ckpt.model, other, images, labels, mi, layers, [0.5], 2, 0)
    for sel in ("top", "bottom"):  # deterministic sets: equal; random draws are seeded anew
        np.testing.assert_allclose(
            ds.transplant_accuracy.sel(selection=sel, draw=0).values,
            ref.transplant_accuracy.sel(selection=sel, draw=0).values,
            atol=1e-6,
        )
    assert float(ds.recipient_baseline) == pytest.approx(float(ref.recipient_baseline))
    assert np.isfinite(ds.transplant_accuracy.sel(selection="random")).all()
    gains = [0.0, 0.5, 1.0]
    new = X.skip_gain_sweep(streamer(ckpt, data), gains).skip_gain_accuracy.values
    old = legacy.skip_gain_sweep(ckpt.model, images, labels, gains).skip_gain_accuracy.values
    np.testing.assert_allclose(new, old, atol=1e-6)
    assert new[2] == pytest.approx(legacy.full_accuracy(ckpt.model, images, labels))


def test_transplant_copies_the_selected_out_channels(trained):
    _, ckpt, _, _, _ = trained
    torch.manual_seed(1)
    other = build_model("resnet18", 4, width=0.125).eval()
    chans = np.array([0, 2, 5])
    site = ckpt.sites[-1]
    iv.transplant(
        iv.surgery_for(ckpt.model), iv.surgery_for(other), site, find_sites(other)[-1], chans
    )
    src, dst = ckpt.model.layer4[-1], other.layer4[-1]
    torch.testing.assert_close(dst.conv2.weight[chans], src.conv2.weight[chans])
    torch.testing.assert_close(dst.bn2.running_var[chans], src.bn2.running_var[chans])
    assert not torch.equal(dst.conv2.weight[1], src.conv2.weight[1])


def test_streaming_never_runs_more_than_one_batch_through_the_prefix(trained):
    _, ckpt, data, _, _ = trained
    seen = []
    hook = ckpt.model.conv1.register_forward_pre_hook(lambda m, i: seen.append(i[0].shape[0]))
    try:
        site = ckpt.sites[-1]
        exp = X.GlobalInterventions(
            [site], {site.name: Ranking.of(np.ones(site.channels))}, [0.5], 1, [1.0], 0
        )
        X.run_site_experiments(streamer(ckpt, data, batch=16), [site], {site.name: 0}, [exp])
    finally:
        hook.remove()
    assert max(seen) == 16 and sum(seen) == 64 * 3  # sd pass, batch + one shuffle partner


def test_energy_preserving_knockout_keeps_each_samples_norm():
    h = torch.rand(5, 8, 3, 3)
    out = E.Zero(np.array([0, 3, 4]), energy=True)(h, E.BatchContext())
    torch.testing.assert_close(out.flatten(1).norm(dim=1), h.flatten(1).norm(dim=1))
    assert torch.all(out[:, [0, 3, 4]] == 0)


def test_nan_channels_are_left_out_of_mass_q_selections():
    rng = np.random.default_rng(0)
    clean = rng.random(63)
    mi = np.insert(clean, 7, np.nan)  # channel 7 has no finite MI
    ranking = Ranking.of(mi)
    assert ranking.n_nonfinite == 1
    for q in (0.1, 0.25, 0.5, 0.75):
        # brute force over the finite channels: fewest largest values reaching q of the total
        p = np.sort(clean)[::-1]
        m = next(i for i in range(1, 64) if p[:i].sum() >= q * clean.sum() - 1e-12)
        assert iv.mass_prefix(mi, q) == m
        for kind in iv.SELECTIONS:
            chans = ranking.select(q, kind, draw_rng(0, 1, 2))
            assert len(chans) == m and 7 not in chans
        top = ranking.select(q, "top")
        expect = np.sort(np.argsort(-np.nan_to_num(mi, nan=-1))[:m])
        np.testing.assert_array_equal(top, expect)
    assert [iv.mass_prefix(mi, q) for q in (0.1, 0.25, 0.5, 0.75)] != [1, 1, 1, 1]


def test_random_draws_depend_on_their_own_keys_only():
    mi = np.random.default_rng(0).random(50)
    r = Ranking.of(mi)
    a = {c.slot: c.channels for c in choose(r, iv.plan([0.5], 3), 3, 4)}
    b = {
        (c.slot.q, c.slot.selection, c.slot.draw): c.channels
        for c in choose(r, iv.plan([0.25, 0.5], 3), 3, 4)
    }
    for slot, chans in a.items():
        np.testing.assert_array_equal(chans, b[(slot.q, slot.selection, slot.draw)])
    rand = [v for k, v in a.items() if k.selection == "random"]
    assert len(rand) == 3 and not np.array_equal(rand[0], rand[1])
    other_seed = {c.slot: c.channels for c in choose(r, iv.plan([0.5], 3), 4, 4)}
    assert not all(np.array_equal(a[k], other_seed[k]) for k in a if k.selection == "random")


def test_redundant_set_prefers_channels_that_overlap_the_cover():
    mi = np.array([0.5, 0.3, 0.1, 0.1])
    pair = np.array(
        [[2.0, 0.1, 0.0, 0.9], [0.1, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.9, 0.0, 0.0, 2.0]]
    )
    cover = iv.select_channels(mi, 0.5, "top")
    np.testing.assert_array_equal(cover, [0])
    np.testing.assert_array_equal(iv.redundant_set(mi, pair, cover, 0.1), [3])
    np.testing.assert_array_equal(iv.redundant_set(mi, pair, cover, 0.4), [1, 3])


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
    images = torch.cat([signal, torch.randn(400, 1, 2, 2, generator=g)], dim=1)
    net = OneChannelNet().eval()
    sites = find_sites(net)
    with capture_gap(sites) as pooled, torch.no_grad():
        net(images)
    mi = channel_label_mi(pooled[sites[0].name].numpy(), labels.numpy(), 20, 2)
    assert np.argmax(mi) == 0
    data = torch.utils.data.TensorDataset(images, labels)
    s = iv.Streamer(iv.surgery_for(net), data, 2, CPU, 64)
    exp = X.GlobalInterventions(sites, {sites[0].name: Ranking.of(mi)}, [0.5], 20, [], seed=0)
    X.run_site_experiments(s, sites, {sites[0].name: 0}, [exp])
    base = s.accuracy()
    assert base > 0.95
    zero = exp.dataset(base).accuracy.sel(variant="zero", q=0.5).isel(layer=0)
    top_drop = base - float(zero.sel(selection="top", draw=0))
    random_drop = base - float(zero.sel(selection="random").mean())
    assert top_drop > 0.4 and top_drop > 2 * random_drop
