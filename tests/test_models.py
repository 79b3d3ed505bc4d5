import pytest
import torch
from torch import nn
from torchvision import models

from trainer.models import build_model, count_parameters
from trainer.sites import capture_gap, find_sites, replace_output


def test_resnet_parameter_counts_equal_torchvision():
    for arch in ("resnet18", "resnet50"):
        ours = build_model(arch, 10)
        ref = getattr(models, arch)(weights=None, num_classes=10)
        assert count_parameters(ours) == count_parameters(ref)


def test_vgg16_parameter_count_equals_paper_head():
    ref = models.vgg16(weights=None, num_classes=10)
    ref.classifier = nn.Sequential(
        nn.Linear(25088, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10)
    )
    assert count_parameters(build_model("vgg16", 10)) == count_parameters(ref)


@pytest.mark.parametrize("arch,n_sites", [("vgg16", 13), ("resnet18", 16), ("resnet50", 32)])
def test_site_counts_and_no_inplace(arch, n_sites):
    net = build_model(arch, 10, width=0.125)
    sites = find_sites(net)
    assert len(sites) == n_sites
    assert len({s.name for s in sites}) == n_sites
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            assert not m.inplace


def test_width_variants_run_and_tanh_swaps_everything():
    for arch in ("vgg16", "resnet18", "resnet50"):
        net = build_model(arch, 7, activation="tanh", width=0.125).eval()
        assert not any(isinstance(m, nn.ReLU) for m in net.modules())
        with capture_gap(find_sites(net)) as pooled:
            out = net(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 7)
        for site in find_sites(net):
            assert pooled[site.name].shape == (2, site.channels)


def test_resnet_gap_values_match_manual_forward():
    torch.manual_seed(0)
    net = build_model("resnet18", 10, width=0.25).eval()
    x = torch.randn(3, 3, 32, 32)
    sites = {s.name: s for s in find_sites(net)}
    with capture_gap(list(sites.values())) as pooled:
        net(x)
    with torch.no_grad():
        h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        h = net.layer1[0](h)
        blk = net.layer1[1]
        branch = blk.bn2(blk.conv2(blk.relu(blk.bn1(blk.conv1(h)))))
        out = torch.relu(branch + h)
    torch.testing.assert_close(pooled["layer1.1.branch"], branch.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled["layer1.1.out"], out.mean(dim=(2, 3)))


def test_vgg_gap_value_matches_manual_forward():
    torch.manual_seed(0)
    net = build_model("vgg16", 10, width=0.125).eval()
    x = torch.randn(2, 3, 32, 32)
    with capture_gap(find_sites(net)) as pooled:
        net(x)
    with torch.no_grad():
        first = torch.relu(net.features[0](x))
        second = torch.relu(net.features[2](first))
    torch.testing.assert_close(pooled["conv1"], first.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled["conv2"], second.mean(dim=(2, 3)))


def test_replace_output_zeroing_a_site_changes_downstream_only():
    torch.manual_seed(0)
    net = build_model("vgg16", 10, width=0.125).eval()
    sites = find_sites(net)
    x = torch.randn(2, 3, 32, 32)
    with capture_gap(sites) as ref:
        net(x)
    ref = dict(ref)
    with replace_output([sites[5]], lambda s, out: out * 0), capture_gap(sites) as knocked:
        net(x)
    torch.testing.assert_close(knocked["conv5"], ref["conv5"])
    assert torch.all(knocked["conv6"] == 0)


def test_unknown_arch_and_activation_are_named():
    with pytest.raises(ValueError, match="unknown arch 'alexnet'"):
        build_model("alexnet", 10)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        build_model("resnet18", 10, activation="gelu")
