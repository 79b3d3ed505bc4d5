"""Which ``torchvision:<name>`` archs exist, known without importing torch.

The workflow checks every run's arch before any job starts, while it parses (where importing
torch would cost seconds on every ``snakemake`` call). torchvision registers each image
classifier with ``@register_model()`` on its builder function in ``torchvision/models/*.py``
(detection, segmentation, video and quantized models live in subpackages), which is what
``torchvision.models.list_models(module=torchvision.models)`` lists; this module reads those
decorators from the installed package's source instead (``ast``, nothing imported).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from functools import cache
from pathlib import Path

PREFIX = "torchvision:"


def _registered(path: Path) -> list[str]:
    """Names of the functions of one file decorated with ``@register_model(...)``."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            func = call.func if call else deco
            if getattr(func, "id", getattr(func, "attr", None)) != "register_model":
                continue
            named = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
            names.append(
                named[0].value if named and isinstance(named[0], ast.Constant) else node.name
            )
    return names


@cache
def classifier_names() -> frozenset[str] | None:
    """torchvision's image classifier names, or None where torchvision is not installed."""
    spec = importlib.util.find_spec("torchvision")  # finds the package, runs none of it
    if spec is None or not spec.submodule_search_locations:
        return None
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    return frozenset(n for path in sorted(models.glob("*.py")) for n in _registered(path))


def unknown_arch(arch: str) -> str | None:
    """One line naming why ``torchvision:<name>`` is not a torchvision classifier (with close
    matches), or None when it is one, when ``arch`` is not a torchvision arch, or when
    torchvision is not installed here (the trainer checks again where it runs)."""
    if not arch.startswith(PREFIX):
        return None
    names = classifier_names()
    name = arch[len(PREFIX) :]
    if names is None or name in names:
        return None
    close = difflib.get_close_matches(name, sorted(names), n=5, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}" if close else "see torchvision.models.list_models()"
    return f"unknown torchvision classifier {name!r} ({hint})"
