"""Measurement sites of any network: the default discovery rule, or sites named by the user.

**Default rule** (``torchvision:<name>`` archs, and :class:`trainer.Recorder` without
``sites``). Walk the modules of the model's trunk (``model.features`` when the model has one,
else the model itself) in registration order. A module that only chains its children (its
``forward`` is ``nn.Sequential.forward``: plain Sequentials, torchvision's
``Conv2dNormActivation``, stages of blocks) is transparent: the walk descends into it. Any
other module is

* a site of kind ``block`` if it contains a convolution (residual, inverted-residual, dense,
  inception, fire blocks, ...): its output;
* a site of kind ``act`` if it is an activation module whose preceding module is a
  convolution, a normalization or a linear layer: its output;
* not a site otherwise (a bare convolution or normalization, pooling, dropout, a head).

Candidates that do not run in an eval-mode forward of an example input, or whose output is
not a ``(batch, channels, ...)`` tensor, are dropped; the rest are ordered by when they run
(depth order). On ``torchvision:vgg16`` this gives the paper's 13 post-convolution
activations; the paper's own archs (``vgg16``, ``resnet18``, ``resnet50``) keep their rule
(:mod:`trainer.sites`).

**Named sites** (config ``sites: [...]``, ``Recorder(sites=[...])``): each name is a module
name (``dict(model.named_modules())``) of a module that runs once per forward, or else a
``torchvision.models.feature_extraction`` node name (``get_graph_node_names``: functional
operations such as ``add`` or ``layer1.0.relu_1``, and modules that run several times). For
node names the model is traced with ``torch.fx`` and an identity probe module is inserted
after each node, so that hooks observe (and interventions replace) exactly that tensor; a
named module that encloses another named site is then observed at its last operation.

The chosen sites are stored on the model as ``model.latent_mi_sites`` (name, kind, channels,
module path); :func:`trainer.sites.find_sites` reads them.
"""

from __future__ import annotations

import difflib
import re

import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd

from latent_mi import contract as C

ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardsigmoid,
    nn.Softplus,
)
PRECEDERS = (_ConvNd, _NormBase, nn.GroupNorm, nn.LayerNorm, nn.Linear)
SITES_ATTR = "latent_mi_sites"


class SiteProbe(nn.Identity):
    """Identity module inserted after a traced graph node: the hook point of a named node site."""


class SiteError(ValueError):
    """A site name or rule problem; the message is one line naming the culprit."""


def _transparent(m: nn.Module) -> bool:
    return type(m).forward is nn.Sequential.forward


def _has_conv(m: nn.Module) -> bool:
    return any(isinstance(x, _ConvNd) for x in m.modules())


def default_candidates(net: nn.Module) -> list[tuple[str, str]]:
    """(module name, kind) of every default-rule candidate, in registration order."""
    features = getattr(net, "features", None)
    trunk, root = ("features", features) if isinstance(features, nn.Module) else ("", net)
    out: list[tuple[str, str]] = []

    def walk(module: nn.Module, prefix: str, prev: nn.Module | None) -> nn.Module | None:
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if _transparent(child):
                prev = walk(child, full, prev)
                continue
            if isinstance(child, ACTIVATIONS):
                if isinstance(prev, PRECEDERS):
                    out.append((full, C.SITE_ACT))
            elif _has_conv(child) and not isinstance(child, _ConvNd):
                out.append((full, C.SITE_BLOCK))
            prev = child
        return prev

    walk(root, trunk, None)
    return out


def _trace(net: nn.Module, leaves: set[str]):
    """(tracer, graph) of an eval-mode trace with torchvision's NodePathTracer (the settings of
    ``get_graph_node_names``; modules named in ``leaves`` stay whole), or (None, None) where
    torch.fx cannot trace the model."""
    from torchvision.models import feature_extraction as fe

    class Tracer(fe.NodePathTracer):
        def is_leaf_module(self, m: nn.Module, module_qualname: str) -> bool:
            return module_qualname in leaves or super().is_leaf_module(m, module_qualname)

    kwargs = (
        fe._set_default_tracer_kwargs(None) if hasattr(fe, "_set_default_tracer_kwargs") else {}
    )
    tracer = Tracer(**kwargs)
    was_training = net.training
    net.eval()
    try:
        graph = tracer.trace(net)
    except Exception:  # noqa: BLE001  (any tracing failure: the model is not fx-traceable)
        return None, None
    finally:
        net.train(was_training)
    return tracer, graph


def _unknown_site(name: str, candidates: list[str]) -> SiteError:
    candidates = list(dict.fromkeys(candidates))
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    if close:
        hint = "close matches: " + ", ".join(close)
    else:
        hint = "no close match; names look like: " + ", ".join(candidates[1:6])
    return SiteError(f"unknown site {name!r} in {len(candidates)} module and node names ({hint})")


def _probe_nodes(net: nn.Module, tracer, graph, targets: dict[str, str]) -> tuple[nn.Module, dict]:
    """A GraphModule computing ``net`` with a :class:`SiteProbe` after the node of each site
    (``targets``: site name -> node name), and the probe's module path per site name."""
    gm = fx.GraphModule(tracer.root, graph, type(net).__name__)
    by_name = {q: n for n, q in tracer.node_to_qualname.items()}
    paths = {}
    for i, (name, target) in enumerate(targets.items()):
        node = by_name[target]
        paths[name] = f"latent_mi_probe_{i}_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"
        gm.add_submodule(paths[name], SiteProbe())
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(paths[name], (node,))
        node.replace_all_uses_with(new, delete_user_cb=lambda user, new=new: user is not new)
    gm.graph.lint()
    gm.recompile()
    return gm, paths


@torch.no_grad()
def _observe(net: nn.Module, paths: list[str], example: torch.Tensor) -> tuple[dict, list]:
    """Eval-mode forward of ``example``: per module path the channel count of each call
    (None: not a (batch, C, ...) tensor), and the paths in the order of their first call."""
    calls: dict[str, list] = {p: [] for p in paths}
    order: list[str] = []
    handles = []
    for p in calls:

        def hook(_m, _i, out, p=p):
            ok = isinstance(out, torch.Tensor) and out.dim() >= 2
            calls[p].append(int(out.shape[1]) if ok else None)
            if p not in order:
                order.append(p)

        handles.append(net.get_submodule(p).register_forward_hook(hook))
    was_training = net.training
    net.eval()
    try:
        net(example)
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    return calls, order


def _finish(net: nn.Module, sites: list[tuple], order: list[str]) -> nn.Module:
    rank = {p: i for i, p in enumerate(order)}
    sites.sort(key=lambda s: rank[s[3]])
    setattr(net, SITES_ATTR, sites)
    return net


def attach_sites(net: nn.Module, names: list[str] | None, example: torch.Tensor) -> nn.Module:
    """Resolve the measurement sites of ``net`` and record them on the returned model.

    ``names`` None: the default rule. The returned model is ``net`` itself, or a
    ``torch.fx.GraphModule`` sharing its parameters when a name is a graph-node name.
    ``example``: one input batch (its values do not matter), on the model's device.
    Sites are stored as (name, kind, channels, module path) in depth order.
    """
    modules = dict(net.named_modules())
    if names is None:
        spec = default_candidates(net)
        calls, order = _observe(net, [p for p, _ in spec], example)
        sites = [(p, kind, calls[p][0], p) for p, kind in spec if calls[p] and calls[p][0]]
        if not sites:
            raise SiteError(
                f"the default site rule finds no block or activation in {type(net).__name__}: "
                "name the sites (sites: [...])"
            )
        return _finish(net, sites, order)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SiteError(f"site names repeat: {', '.join(dup)}")
    known = [n for n in names if n and n in modules]
    calls, _ = _observe(net, known, example)
    paths = {n: n for n in known if len(calls[n]) == 1}
    need_nodes = [n for n in names if n not in paths]
    if need_nodes:
        # a module site enclosing another named site is traced through and observed at its
        # last operation; other module sites stay whole (leaf modules of the trace)
        enclosing = {p for p in paths if any(n.startswith(p + ".") for n in names)}
        tracer, graph = _trace(net, set(paths) - enclosing)
        node_names = list(tracer.node_to_qualname.values()) if tracer else []
        targets = {}
        for p in enclosing:
            inner = [q for q in node_names if q.startswith(p + ".")]
            if inner:
                targets[p] = inner[-1]
                del paths[p]
        for n in need_nodes:
            if n in node_names:
                targets[n] = n
                continue
            if n in known and calls[n]:
                alts = [m for m in node_names if re.fullmatch(re.escape(n) + r"(_\d+)?", m)]
                raise SiteError(
                    f"site {n!r} is a module that runs {len(calls[n])} times per forward: name "
                    f"one call by its node name ({', '.join(alts) or 'model not fx-traceable'})"
                )
            if n in known:
                raise SiteError(f"site {n!r} does not run in a forward of the model")
            raise _unknown_site(n, [m for m in modules if m] + node_names)
        net, probes = _probe_nodes(net, tracer, graph, targets)
        paths.update(probes)
        modules = dict(net.named_modules())
    calls, order = _observe(net, list(paths.values()), example)
    sites = []
    for n in names:
        seen = calls[paths[n]]
        if not seen or seen[0] is None:
            raise SiteError(f"site {n!r} does not output a (batch, channels, ...) tensor")
        kind = C.SITE_ACT if isinstance(modules[paths[n]], ACTIVATIONS) else C.SITE_NAMED
        sites.append((n, kind, seen[0], paths[n]))
    return _finish(net, sites, order)
