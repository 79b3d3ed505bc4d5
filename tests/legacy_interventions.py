"""The pre-streaming interventions (trainer/interventions.py before issue 10), kept verbatim as
the unstreamed reference the streamed package is tested against. Not used by the code.

The paper's §4.2 and appendices B-C: global knockouts (zero, energy-preserving), shuffles and
Gaussian perturbations of MI-ranked channel sets against size-matched random and bottom-MI
controls; class-targeted knockouts; cross-seed transplants of top-MI out-channels.

Efficiency: each site's output over the validation set is computed once per checkpoint
and cached; an intervention at site l then reruns only the network *after* l
(:func:`suffix_forward`), for many channel selections per forward pass (batched masks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from latent_mi import contract as C
from trainer.sites import Site, find_sites

SELECTIONS = ("top", "random", "bottom")


# ---------------------------------------------------------------- channel selections
def mass_prefix(mi: np.ndarray, q: float) -> int:
    """Smallest m such that the m largest values hold at least a fraction q of the total."""
    p = np.sort(np.clip(mi, 0, None))[::-1]
    total = p.sum()
    if total <= 0:
        return max(1, math.ceil(q * len(p)))
    return int(min(len(p), np.searchsorted(np.cumsum(p) / total, q - 1e-12) + 1))


def select_channels(mi: np.ndarray, q: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Indices of a top-MI set reaching mass q, or a size-matched bottom-MI / random set."""
    m = mass_prefix(mi, q)
    order = np.argsort(-mi, kind="stable")
    if kind == "top":
        return np.sort(order[:m])
    if kind == "bottom":
        return np.sort(order[::-1][:m])
    if kind == "random":
        return np.sort(rng.choice(len(mi), m, replace=False))
    raise ValueError(f"unknown selection {kind!r}")


def _names(items) -> np.ndarray:
    """String coords as object arrays (fixed-width numpy strings have no Zarr v3 spec)."""
    return np.array([str(i) for i in items], dtype=object)


def draw_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator fixed by (seed, keys): random controls are reproducible from their seed."""
    return np.random.default_rng([seed, *keys])


# ---------------------------------------------------------------- site cache and suffix
@dataclass
class SiteCache:
    """What a suffix forward from one site needs: the site output (and block input)."""

    output: torch.Tensor  # (N, C, H, W) site output over the validation set
    block_input: torch.Tensor | None  # ResNet branch sites: the input of the block


def _resnet_blocks(model) -> list[nn.Module]:
    return [b for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for b in stage]


@torch.no_grad()
def cache_site(model, site: Site, images: torch.Tensor, batch: int = 256) -> SiteCache:
    """Run the validation images once, keeping the site output (and block input)."""
    outs, inputs = [], []
    block = _block_of(model, site)

    def keep_out(_m, _i, out):
        outs.append(out.detach().clone())

    def keep_in(_m, inp):
        inputs.append(inp[0].detach().clone())

    handles = [site.module.register_forward_hook(keep_out)]
    if site.kind == "branch":
        handles.append(block.register_forward_pre_hook(keep_in))
    try:
        for i in range(0, len(images), batch):
            model(images[i : i + batch])
    finally:
        for h in handles:
            h.remove()
    return SiteCache(torch.cat(outs), torch.cat(inputs) if inputs else None)


def _block_of(model, site: Site):
    if site.kind not in ("branch", "post-add"):
        return None
    for block in _resnet_blocks(model):
        if site.module is block or site.module in (
            getattr(block, "bn2", None),
            getattr(block, "bn3", None),
        ):
            return block
    raise ValueError(f"site {site.name} is not inside a ResNet block")


@torch.no_grad()
def suffix_forward(
    model, site: Site, h: torch.Tensor, block_input: torch.Tensor | None = None
) -> torch.Tensor:
    """Logits of the network continued from site ``site`` whose output is ``h``."""
    if site.kind.startswith("conv-"):  # VGG: the rest of features, pooling, classifier
        idx = next(i for i, m in enumerate(model.features) if m is site.module)
        x = model.features[idx + 1 :](h)
        return model.classifier(torch.flatten(model.avgpool(x), 1))
    blocks = _resnet_blocks(model)
    block = _block_of(model, site)
    start = blocks.index(block)
    if site.kind == "branch":
        identity = block_input if block.downsample is None else block.downsample(block_input)
        x = block.relu(h + identity)
    else:
        x = h
    for b in blocks[start + 1 :]:
        x = b(x)
    return model.fc(torch.flatten(model.avgpool(x), 1))


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


@torch.no_grad()
def evaluate_edits(model, site, cache: SiteCache, labels, edits, batch: int = 2048) -> np.ndarray:
    """Accuracy after each edit; an edit maps the cached site output (N, C, H, W) to a new one.

    Edits are applied in groups so that many of them share one suffix forward pass.
    """
    n = cache.output.shape[0]
    per_pass = max(1, batch // n)
    acc = []
    for i in range(0, len(edits), per_pass):
        group = edits[i : i + per_pass]
        h = torch.cat([edit(cache.output) for edit in group])
        block_input = (
            None if cache.block_input is None else cache.block_input.repeat(len(group), 1, 1, 1)
        )
        logits = suffix_forward(model, site, h, block_input)
        for j in range(len(group)):
            acc.append(_accuracy(logits[j * n : (j + 1) * n], labels))
    return np.array(acc)


def zero_edit(channels: np.ndarray, energy_preserving: bool = False):
    """Zero the channels; with ``energy_preserving``, rescale the rest so that each sample's
    activation norm at the site (over channels and positions) equals the unablated one."""
    idx = torch.as_tensor(channels, dtype=torch.long)

    def edit(h):
        out = h.clone()
        out[:, idx] = 0
        if energy_preserving:
            before = h.flatten(1).norm(dim=1)
            after = out.flatten(1).norm(dim=1)
            scale = torch.where(after > 0, before / after.clamp_min(1e-12), torch.ones_like(after))
            out = out * scale.view(-1, *([1] * (h.dim() - 1)))
        return out

    return edit


def shuffle_edit(channels: np.ndarray, rng: np.random.Generator):
    """Permute the channels' maps across samples (one permutation for the set)."""
    idx = torch.as_tensor(channels, dtype=torch.long)

    def edit(h):
        perm = torch.as_tensor(rng.permutation(h.shape[0]))
        out = h.clone()
        out[:, idx] = h[perm][:, idx]
        return out

    return edit


def noise_edit(channels: np.ndarray, level: float, seed: int):
    """Add Gaussian noise of ``level`` x the channel's standard deviation (over samples, positions)."""
    idx = torch.as_tensor(channels, dtype=torch.long)

    def edit(h):
        g = torch.Generator().manual_seed(seed)
        sd = h[:, idx].transpose(0, 1).flatten(1).std(dim=1).view(1, -1, *([1] * (h.dim() - 2)))
        out = h.clone()
        out[:, idx] = h[:, idx] + level * sd * torch.randn(
            h[:, idx].shape, generator=g, dtype=h.dtype
        )
        return out

    return edit


# ---------------------------------------------------------------- experiments
def choose_layers(sites: list[Site], which: str) -> list[Site]:
    if which == "all":
        return sites
    if which == "last":
        return sites[-1:]
    if which == "last-third":
        return list(C.final_third(sites))
    raise ValueError(f"interventions.layers {which!r}: use all, last or last-third")


def global_interventions(
    model,
    sites,
    caches,
    labels,
    channel_mi: dict[str, np.ndarray],
    qs,
    draws: int,
    noise_levels,
    seed: int,
) -> xr.Dataset:
    """accuracy(layer, q, selection, variant, draw) for knockouts, shuffles and perturbations.

    variants: zero, energy (energy-preserving zero), shuffle, noise-<level>. Top and bottom
    selections are deterministic: their value is in draw 0 and NaN for later draws.
    """
    variants = ["zero", "energy", "shuffle", *[f"noise-{lvl:g}" for lvl in noise_levels]]
    acc = np.full((len(sites), len(qs), len(SELECTIONS), len(variants), draws), np.nan)
    n_sel = np.zeros((len(sites), len(qs)), dtype=np.int32)
    baseline = None
    for li, site in enumerate(sites):
        cache = caches[site.name]
        if baseline is None:
            baseline = _accuracy(
                suffix_forward(model, site, cache.output, cache.block_input), labels
            )
        mi = channel_mi[site.name]
        edits, slots = [], []
        for qi, q in enumerate(qs):
            for si, kind in enumerate(SELECTIONS):
                for d in range(draws if kind == "random" else 1):
                    chans = select_channels(mi, q, kind, draw_rng(seed, li, qi, d))
                    n_sel[li, qi] = len(chans)
                    rng = draw_rng(seed + 1, li, qi, si, d)
                    options = [zero_edit(chans), zero_edit(chans, True), shuffle_edit(chans, rng)]
                    options += [noise_edit(chans, lvl, seed + 7 * d + qi) for lvl in noise_levels]
                    for vi, edit in enumerate(options):
                        edits.append(edit)
                        slots.append((li, qi, si, vi, d))
        for slot, value in zip(
            slots, evaluate_edits(model, site, cache, labels, edits), strict=True
        ):
            acc[slot] = value
    return xr.Dataset(
        {
            "accuracy": (
                ("layer", "q", "selection", "variant", "draw"),
                acc,
                {"description": "validation accuracy after the intervention", "units": "1"},
            ),
            "n_selected": (("layer", "q"), n_sel, {"description": "channels in each selection"}),
            "baseline_accuracy": ((), baseline if baseline is not None else np.nan),
        },
        coords={
            "layer": _names(s.name for s in sites),
            "q": list(qs),
            "selection": _names(SELECTIONS),
            "variant": _names(variants),
            "draw": np.arange(draws),
        },
    )


def class_knockouts(
    model, sites, caches, labels, class_mi: dict[str, np.ndarray], qs, draws, seed, n_classes
) -> xr.Dataset:
    """class_accuracy(layer, q, selection, label, draw): for class k, zero the smallest set
    of channels reaching MI mass q of I(T_c; 1[Y=k]) and score class k's samples only."""
    acc = np.full((len(sites), len(qs), len(SELECTIONS), n_classes, draws), np.nan)
    base = np.full(n_classes, np.nan)
    for li, site in enumerate(sites):
        cache = caches[site.name]
        logits = suffix_forward(model, site, cache.output, cache.block_input)
        for k in range(n_classes):
            mask = labels == k
            if not mask.any():
                continue
            base[k] = _accuracy(logits[mask], labels[mask])
            sub = SiteCache(
                cache.output[mask], None if cache.block_input is None else cache.block_input[mask]
            )
            edits, slots = [], []
            for qi, q in enumerate(qs):
                for si, kind in enumerate(SELECTIONS):
                    for d in range(draws if kind == "random" else 1):
                        chans = select_channels(
                            class_mi[site.name][:, k], q, kind, draw_rng(seed, li, qi, k, d)
                        )
                        edits.append(zero_edit(chans))
                        slots.append((li, qi, si, k, d))
            for slot, value in zip(
                slots, evaluate_edits(model, site, sub, labels[mask], edits), strict=True
            ):
                acc[slot] = value
    return xr.Dataset(
        {
            "class_accuracy": (
                ("layer", "q", "selection", "label", "draw"),
                acc,
                {"description": "accuracy on class k's samples after the class-k knockout"},
            ),
            "class_baseline": (("label",), base),
        },
        coords={
            "layer": _names(s.name for s in sites),
            "q": list(qs),
            "selection": _names(SELECTIONS),
            "label": np.arange(n_classes),
            "draw": np.arange(draws),
        },
    )


def redundant_set(mi: np.ndarray, pair_mi: np.ndarray, cover: np.ndarray, q: float) -> np.ndarray:
    """Channels outside ``cover``, most redundant with it first (largest MI with any cover
    channel), taken until their share of the layer's label MI reaches q (or none are left)."""
    outside = np.setdiff1d(np.arange(len(mi)), cover)
    if len(outside) == 0 or len(cover) == 0:
        return outside
    redundancy = np.nan_to_num(pair_mi[np.ix_(outside, cover)], nan=-np.inf).max(axis=1)
    order = outside[np.argsort(-redundancy, kind="stable")]
    share = np.cumsum(np.clip(mi[order], 0, None)) / max(np.clip(mi, 0, None).sum(), 1e-300)
    return np.sort(order[: int(min(len(order), np.searchsorted(share, q - 1e-12) + 1))])


def cover_vs_redundant(model, site, cache, labels, mi, pair_mi, qs) -> xr.Dataset:
    """Appendix D: knock out the minimal MI cover (fewest top-MI channels reaching q) against
    a redundant MI-matched set (channels most redundant with the cover, same MI mass)."""
    rows = []
    for q in qs:
        cover = select_channels(mi, q, "top", None)
        redundant = redundant_set(mi, pair_mi, cover, q)
        acc = evaluate_edits(model, site, cache, labels, [zero_edit(cover), zero_edit(redundant)])
        mass = np.clip(mi, 0, None).sum()
        rows.append((acc[0], acc[1], len(cover), len(redundant), mi[redundant].sum() / mass))
    cov, red, n_cov, n_red, red_mass = map(np.array, zip(*rows, strict=True))
    return xr.Dataset(
        {
            "cover_accuracy": (
                ("q",),
                cov,
                {"description": "accuracy without the minimal MI cover"},
            ),
            "redundant_accuracy": (
                ("q",),
                red,
                {"description": "accuracy without the redundant MI-matched set"},
            ),
            "cover_size": (("q",), n_cov),
            "redundant_size": (("q",), n_red),
            "redundant_mass": (
                ("q",),
                red_mass,
                {"description": "label-MI share of the redundant set"},
            ),
        },
        coords={"q": list(qs)},
    )


def _block_forward_with_gain(block, x: torch.Tensor, gain: float) -> torch.Tensor:
    """torchvision's BasicBlock / Bottleneck forward with the identity path scaled by ``gain``."""
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.bn1(block.conv1(x)))
    if isinstance(block, Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        out = block.bn3(block.conv3(out))
    else:
        out = block.bn2(block.conv2(out))
    return block.relu(out + gain * identity)


@torch.no_grad()
def skip_gain_sweep(model, images, labels, gains) -> xr.Dataset:
    """Appendix A: accuracy with every residual identity path scaled by g (ResNets only)."""
    acc = []
    for g in gains:
        handles = [
            b.register_forward_hook(lambda m, inp, out, g=g: _block_forward_with_gain(m, inp[0], g))
            for b in _resnet_blocks(model)
        ]
        try:
            acc.append(full_accuracy(model, images, labels))
        finally:
            for h in handles:
                h.remove()
    return xr.Dataset(
        {
            "skip_gain_accuracy": (
                ("gain",),
                np.array(acc),
                {"description": "accuracy with identity paths scaled by g"},
            )
        },
        coords={"gain": list(gains)},
    )


def _out_channel_modules(model, site: Site) -> list[nn.Module]:
    """Modules whose out-channels produce the site's channels (weights to transplant)."""
    if site.kind.startswith("conv-"):
        idx = next(i for i, m in enumerate(model.features) if m is site.module)
        conv = [m for m in model.features[:idx] if isinstance(m, nn.Conv2d)][-1]
        return [conv]
    block = _block_of(model, site)
    if isinstance(block, Bottleneck):
        mods = [block.conv3, block.bn3]
    elif isinstance(block, BasicBlock):
        mods = [block.conv2, block.bn2]
    else:
        raise TypeError(type(block).__name__)
    if site.kind == "post-add" and block.downsample is not None:
        mods += list(block.downsample)
    return mods


@torch.no_grad()
def transplant(donor, recipient, donor_site: Site, recipient_site: Site, channels) -> None:
    """Copy the out-channel filters and normalization parameters of ``channels``."""
    idx = torch.as_tensor(channels, dtype=torch.long)
    for src, dst in zip(
        _out_channel_modules(donor, donor_site),
        _out_channel_modules(recipient, recipient_site),
        strict=True,
    ):
        for name in ("weight", "bias", "running_mean", "running_var"):
            a, b = getattr(src, name, None), getattr(dst, name, None)
            if a is not None and b is not None:
                b[idx] = a[idx]


@torch.no_grad()
def full_accuracy(model, images, labels, batch: int = 512) -> float:
    logits = torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)])
    return _accuracy(logits, labels)


def transplants(
    donor,
    recipient,
    images,
    labels,
    channel_mi: dict[str, np.ndarray],
    layers: list[str],
    qs,
    draws,
    seed,
) -> xr.Dataset:
    """transplant_accuracy(layer, q, selection, draw) of the recipient after each transplant."""
    d_sites = {s.name: s for s in find_sites(donor)}
    r_sites = {s.name: s for s in find_sites(recipient)}
    state = {k: v.clone() for k, v in recipient.state_dict().items()}
    acc = np.full((len(layers), len(qs), len(SELECTIONS), draws), np.nan)
    for li, name in enumerate(layers):
        for qi, q in enumerate(qs):
            for si, kind in enumerate(SELECTIONS):
                for d in range(draws if kind == "random" else 1):
                    chans = select_channels(channel_mi[name], q, kind, draw_rng(seed, li, qi, d))
                    transplant(donor, recipient, d_sites[name], r_sites[name], chans)
                    acc[li, qi, si, d] = full_accuracy(recipient, images, labels)
                    recipient.load_state_dict(state)
    return xr.Dataset(
        {
            "transplant_accuracy": (
                ("layer", "q", "selection", "draw"),
                acc,
                {"description": "recipient accuracy after copying the donor's channels"},
            ),
            "recipient_baseline": ((), full_accuracy(recipient, images, labels)),
        },
        coords={
            "layer": _names(layers),
            "q": list(qs),
            "selection": _names(SELECTIONS),
            "draw": np.arange(draws),
        },
    )


# ---------------------------------------------------------------- loading
def load_checkpoint(run_dir, which: str = "best", device: str = "cpu"):
    """(model in eval mode, resolved config, sites) of a run's checkpoint."""
    import json

    from trainer.models import build_model

    path = C.checkpoint_path(run_dir, which)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found (train the run first)")
    state = torch.load(path, map_location=device, weights_only=False)
    cfg = json.loads(state["config"])
    model = build_model(cfg["arch"], len(state["classes"]), cfg["activation"], cfg["width"])
    model.load_state_dict(state["model"])
    model.eval()
    return model, cfg, find_sites(model)


def validation_tensors(cfg: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole validation set as tensors, in the dump's fixed sample order."""
    from trainer.datasets import load_dataset

    val = load_dataset(cfg["dataset"]).val
    images, labels = zip(*(val[i] for i in range(len(val))), strict=True)
    return torch.stack(images), torch.as_tensor(labels)


def mi_at_best(mi_path) -> tuple[dict, dict, xr.Dataset]:
    """Channel-label and class-channel MI at the best epoch, per layer, unpadded."""
    ds = xr.open_zarr(mi_path)
    best = int(ds.attrs[C.ATTR_BEST_EPOCH])
    channel, klass = {}, {}
    for layer, n in zip(ds.layer.values, ds.n_channels.values, strict=True):
        channel[str(layer)] = (
            ds[C.CHANNEL_LABEL_MI].sel(epoch=best, layer=layer).values[:n].astype(np.float64)
        )
        klass[str(layer)] = (
            ds[C.CLASS_CHANNEL_MI].sel(epoch=best, layer=layer).values[:n].astype(np.float64)
        )
    return channel, klass, ds
