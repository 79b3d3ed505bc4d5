"""Any torchvision classifier: build, site discovery in depth order, named sites, width, one step."""

import pytest
import torch
import torch.nn.functional as F

from trainer.config import ConfigError, resolve_config
from trainer.discovery import SiteError, attach_sites
from trainer.models import build_model
from trainer.sites import capture_gap, find_sites
from trainer.zoo import build_torchvision, model_from_config

# (name, width, expected default sites): 2 conv-norm-act + 11 inverted residuals;
# 2 conv-norm-act + 16 MBConv; relu0 + 4 dense blocks + 3 transition ReLUs
MODELS = [("mobilenet_v3_small", 0.25, 13), ("efficientnet_b0", 1.0, 18), ("densenet121", 0.25, 8)]


def tv_config(name, width, *extra):
    return resolve_config(
        None, [f"arch=torchvision:{name}", f"width={width}", "dataset.image_size=32", *extra]
    )


@pytest.mark.parametrize("name,width,n_sites", MODELS)
def test_torchvision_model_builds_discovers_sites_in_depth_order_and_trains(name, width, n_sites):
    torch.manual_seed(0)
    net = model_from_config(tv_config(name, width), n_classes=3)
    sites = find_sites(net)
    assert len(sites) == n_sites
    assert {s.kind for s in sites} <= {"block", "act"}
    # depth order: these trunks run their modules in registration order
    registered = [n for n, _ in net.named_modules()]
    assert [s.name for s in sites] == sorted((s.name for s in sites), key=registered.index)
    assert not any(getattr(m, "inplace", False) for m in net.modules())
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    before = [p.detach().clone() for p in net.parameters()]
    net.train()
    with capture_gap(sites) as pooled:
        loss = F.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))
    for s in sites:
        assert pooled[s.name].shape == (4, s.channels)


@pytest.mark.slow
def test_torchvision_vgg16_default_rule_gives_the_paper_sites():
    ours = find_sites(model_from_config(tv_config("vgg16", 0.125), 5))
    paper = find_sites(build_model("vgg16", 5, width=0.125))
    assert [s.channels for s in ours] == [s.channels for s in paper]
    assert all(s.kind == "act" for s in ours)


def test_width_goes_through_width_mult_or_is_refused_in_one_line():
    small = build_torchvision("mobilenet_v3_small", 3, width=0.5)
    full = build_torchvision("mobilenet_v3_small", 3, width=1.0)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in full.parameters())
    with pytest.raises(
        ValueError, match=r"width=0.5 cannot be applied to torchvision:efficientnet_b0"
    ) as e:
        build_torchvision("efficientnet_b0", 3, width=0.5)
    assert "\n" not in str(e.value)


def test_uneven_width_on_densenet_is_refused():
    with pytest.raises(
        ValueError, match=r"width=0.3 cannot be applied to torchvision:densenet121: its channel"
    ):
        build_torchvision("densenet121", 3, width=0.3, example=torch.zeros(1, 3, 32, 32))


def test_bad_site_name_is_one_line_naming_it_with_close_matches():
    cfg = tv_config("resnet18", 0.25, "sites=[layer1.0.rleu, layer2]")
    with pytest.raises(SiteError) as e:
        model_from_config(cfg, 3)
    msg = str(e.value)
    assert "\n" not in msg and "'layer1.0.rleu'" in msg
    assert "close matches: layer1.0.relu" in msg and "layer1.0.relu_1" in msg


def test_unknown_torchvision_name_lists_close_matches():
    with pytest.raises(
        ValueError,
        match=r"unknown torchvision classifier 'mobilenet_v3_smal' \(close matches: mobilenet_v3_small",
    ):
        build_torchvision("mobilenet_v3_smal", 3)


def test_named_module_and_node_sites_equal_a_manual_forward():
    torch.manual_seed(0)
    ex = torch.zeros(1, 3, 32, 32)
    base = build_torchvision("resnet18", 4, width=0.25, example=ex).eval()
    net = attach_sites(base, ["layer4", "layer1.0.relu_1", "layer1.0.add"], ex).eval()
    sites = find_sites(net)
    assert [s.name for s in sites] == ["layer1.0.add", "layer1.0.relu_1", "layer4"]  # depth order
    assert net.state_dict().keys() == base.state_dict().keys()
    x = torch.randn(2, 3, 32, 32)
    with capture_gap(sites) as pooled:
        out = net(x)
    with torch.no_grad():
        torch.testing.assert_close(out, base(x))
        h = base.maxpool(base.relu(base.bn1(base.conv1(x))))
        b = base.layer1[0]
        add = b.bn2(b.conv2(b.relu(b.bn1(b.conv1(h))))) + h
        l4 = base.layer4(base.layer3(base.layer2(base.layer1(h))))
    torch.testing.assert_close(pooled["layer1.0.add"], add.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled["layer1.0.relu_1"], add.relu().mean(dim=(2, 3)))
    torch.testing.assert_close(pooled["layer4"], l4.mean(dim=(2, 3)))


def test_shared_module_site_asks_for_a_node_name():
    # in a BasicBlock the same ReLU runs twice: naming it picks the first call (fx node name)
    ex = torch.zeros(1, 3, 32, 32)
    net = attach_sites(
        build_torchvision("resnet18", 4, width=0.25, example=ex), ["layer1.0.relu"], ex
    )
    assert find_sites(net)[0].channels == 16


def test_config_accepts_torchvision_archs_and_still_names_bad_ones():
    assert (
        resolve_config(None, ["arch=torchvision:densenet121"])["arch"] == "torchvision:densenet121"
    )
    with pytest.raises(ConfigError, match="'alexnet' is not one of"):
        resolve_config(None, ["arch=alexnet"])
    with pytest.raises(ConfigError, match="config key arch"):
        resolve_config(None, ["arch=torchvision:no good"])


def test_torchvision_run_trains_dumps_and_supports_interventions(tmp_path):
    """python -m trainer's loop on torchvision:mobilenet_v3_small; interventions rebuild it."""
    import interventions as iv
    from interventions.loading import validation_set
    from tests.helpers import tiny_config
    from trainer.train import run

    cfg = tiny_config("arch=torchvision:mobilenet_v3_small", "width=0.25", "train.epochs=1")
    run(cfg, tmp_path / "run")
    import xarray as xr

    ds = xr.open_zarr(tmp_path / "run" / "activations.zarr")
    assert ds.sizes["epoch"] == 2 and ds.attrs["arch"] == "torchvision:mobilenet_v3_small"
    ckpt = iv.load_checkpoint(tmp_path / "run")
    model, sites = ckpt.model, ckpt.sites
    assert [s.name for s in sites] == list(dict.fromkeys(ds.site.values))
    data = validation_set(cfg)
    images = torch.stack([data[i][0] for i in range(len(data))])
    labels = torch.as_tensor([data[i][1] for i in range(len(data))])
    surg = iv.surgery_for(model)
    with torch.no_grad():
        full = model(images)
    site = sites[-3]
    torch.testing.assert_close(surg.suffix(site, surg.site_output(site, images)), full)
    stream = iv.Streamer(surg, data, len(ckpt.classes), torch.device("cpu"), 16)
    jobs = [iv.Job(iv.Zero([])), iv.Job(iv.Zero(list(range(site.channels))))]
    none, _ = stream.run_site(site, jobs)
    assert none == pytest.approx(float((full.argmax(1) == labels).float().mean()))
    donor = iv.load_checkpoint(tmp_path / "run", "init")
    mods = surg.out_channel_modules(site)
    assert isinstance(mods[0], torch.nn.Conv2d) and mods[0].out_channels == site.channels
    d_surg = iv.surgery_for(donor.model)
    iv.transplant(d_surg, surg, donor.sites[-3], site, [0, 1])
    torch.testing.assert_close(
        mods[0].weight[:2], d_surg.out_channel_modules(donor.sites[-3])[0].weight[:2]
    )


def test_hsic_with_no_matching_site_kind_is_named():
    from trainer.train import hsic_weights

    cfg = tv_config("mobilenet_v3_small", 0.25, "regularizer=hsic")
    sites = find_sites(model_from_config(cfg, 3))
    with pytest.raises(
        ValueError,
        match="hsic.site_kinds selects no site of this model \\(its kinds: act, block\\)",
    ):
        hsic_weights(cfg, sites)
    cfg["hsic"]["site_kinds"] = ["block"]
    assert set(hsic_weights(cfg, sites)) == {s.name for s in sites if s.kind == "block"}


def test_local_weights_load_except_a_head_of_another_shape(tmp_path):
    torch.manual_seed(0)
    src = build_torchvision("mobilenet_v3_small", 7, width=0.25)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(1)
    net = build_torchvision("mobilenet_v3_small", 3, width=0.25, weights=str(tmp_path / "w.pt"))
    torch.testing.assert_close(
        net.features[1].block[0][0].weight, src.features[1].block[0][0].weight
    )
    assert net.classifier[-1].out_features == 3
    wrong = build_torchvision("mobilenet_v3_small", 3, width=0.5)
    torch.save(wrong.state_dict(), tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="do not fit the model"):
        build_torchvision("mobilenet_v3_small", 3, width=0.25, weights=str(tmp_path / "wrong.pt"))
