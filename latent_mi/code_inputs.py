"""The project's own code a command runs, from the import graph (for the workflow's rules).

Snakemake reruns a job when a declared input changes, but it does not follow imports. Each
rule therefore declares as inputs the project modules its entry point imports, found here by
reading the source (``ast``, nothing is imported or executed): from an entry module (e.g.
``analyzer.__main__``) or script file, follow every absolute import of a project package,
wherever it sits in the file (imports inside functions run too), transitively. Importing
``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so those are inputs as well.
``importlib.import_module("a.b")`` counts as an import; a computed relative name
(``import_module(f".{name}", __name__)``, a package's lazy loader) counts as importing every
module of that package. A fully computed name (a user's ``model_factory``) is not followed.

Torch-free and standard-library only: ``workflow/rules/common.smk`` uses it while parsing.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path


def project_packages(root: str | Path) -> frozenset[str]:
    """Top-level packages of the project: folders of ``root`` holding an ``__init__.py``."""
    return frozenset(p.parent.name for p in Path(root).glob("*/__init__.py"))


def module_file(root: str | Path, module: str) -> Path | None:
    """``a.b`` -> ``root/a/b.py`` or ``root/a/b/__init__.py``; None if neither exists."""
    base = Path(root).joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]``: the modules Python runs to import ``a.b.c``."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _package_of(root: Path, path: Path) -> str:
    """The package a file's relative imports start from (``a/b/c.py`` -> ``a.b``)."""
    rel = path.resolve().relative_to(root.resolve()).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1])


def _relative(package: str, level: int, module: str | None) -> str:
    """The absolute name of a relative import ``from <level dots><module> import ...``."""
    parts = package.split(".")
    anchor = parts[: len(parts) - level + 1]
    return ".".join([*anchor, module] if module else anchor)


def _import_module_name(node: ast.Call, package: str) -> str | None:
    """The module an ``importlib.import_module(...)`` call loads: its name, ``<package>.*``
    for a computed relative name, None for anything else."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called != "import_module" or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        text = arg.value
        level = len(text) - len(text.lstrip("."))
        return _relative(package, level, text[level:] or None) if level else text
    head = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else None
    if isinstance(head, ast.Constant) and str(head.value).startswith("."):
        return f"{package}.*"
    return None


def imported_names(path: str | Path, package: str = "") -> set[str]:
    """Every module name ``path`` may import: ``import x.y`` gives ``x.y``; ``from x import y``
    gives ``x`` and ``x.y`` (``y`` may be a module); relative imports resolve against
    ``package``; ``<package>.*`` stands for every module of the package."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _relative(package, node.level, node.module) if node.level else node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            name = _import_module_name(node, package)
            if name is not None:
                names.add(name)
    return names


def _files_of(root: Path, name: str) -> list[Path]:
    """The files Python runs to import ``name`` (parents first); for ``<package>.*`` every
    module and subpackage of the package."""
    if name.endswith(".*"):
        package = Path(root).joinpath(*name[:-2].split("."))
        found = [*package.glob("*.py"), *package.glob("*/__init__.py")]
        return [*_files_of(root, name[:-2]), *sorted(found)]
    found = (module_file(root, module) for module in _with_parents(name))
    return [f for f in found if f is not None]


@cache
def _closure(root: Path, start: Path) -> frozenset[Path]:
    packages = project_packages(root)
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path, _package_of(root, path)):
            if name.split(".")[0] not in packages:
                continue
            todo.extend(f for f in _files_of(root, name) if f not in seen)
    return frozenset(seen)


def code_inputs(root: str | Path, entry: str) -> list[Path]:
    """The project files a command runs, sorted: the entry and every project module it
    imports, transitively (with the ``__init__.py`` of each package on the way).

    ``entry`` is a module name (``analyzer.__main__``, as ``python -m analyzer`` runs it) or
    a script path relative to ``root`` (``workflow/scripts/figures.py``).
    """
    root = Path(root).resolve()
    if entry.endswith(".py"):
        start = (root / entry).resolve()
        if not start.is_file():
            raise FileNotFoundError(f"entry script {start} does not exist")
        files = set(_closure(root, start))
    else:
        files = set()
        for module in _with_parents(entry):  # python -m a.b runs a/__init__.py first
            found = module_file(root, module)
            if found is None:
                raise ModuleNotFoundError(f"entry module {module} is not in {root}")
            files |= _closure(root, found.resolve())
    return sorted(files)


def module_name(root: str | Path, path: str | Path) -> str:
    """``root/a/b.py`` -> ``a.b``; ``root/a/__init__.py`` -> ``a``."""
    rel = Path(path).resolve().relative_to(Path(root).resolve()).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)
