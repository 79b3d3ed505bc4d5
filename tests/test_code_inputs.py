"""The import graph behind the workflow's code inputs, and the torch-free torchvision name list."""

import subprocess
import sys
from pathlib import Path

import pytest

from latent_mi.code_inputs import code_inputs, imported_names, module_name
from trainer.arch_names import classifier_names, unknown_arch

ROOT = Path(__file__).resolve().parents[1]


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def project(tmp_path):
    write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/__main__.py": "from app.cli import main\nmain()\n",
            "app/cli.py": (
                "import os\nfrom app import core\n\n"
                "def main():\n    import lib.heavy  # lazy: runs when main runs\n"
            ),
            "app/core/__init__.py": "from . import kernels\n",
            "app/core/kernels.py": "from ..util import helper\n",
            "app/util.py": "import numpy\n",
            "app/unused.py": "import app.cli\n",  # imports the entry's modules, is not imported
            "lib/__init__.py": "",
            "lib/heavy.py": "from lib.plugins import *\n",
            "lib/plugins/__init__.py": (
                "import importlib\n\ndef __getattr__(name):\n"
                "    return importlib.import_module(f'.{name}', __name__)\n"
            ),
            "lib/plugins/one.py": "",
            "lib/plugins/two.py": "import importlib\nimportlib.import_module('lib.const')\n",
            "lib/const.py": "",
            "lib/other.py": "",
            "notpkg/x.py": "",  # no __init__.py: not a project package
            "scripts/draw.py": "from app.core import kernels\nimport notpkg.x\n",
        },
    )
    return tmp_path


def names(root, files):
    return {module_name(root, f) for f in files}


def test_entry_module_closure_is_exactly_what_it_imports(project):
    got = names(project, code_inputs(project, "app.__main__"))
    expect = {
        "app",
        "app.__main__",
        "app.cli",
        "app.core",
        "app.core.kernels",
        "app.util",
        "lib",
        "lib.heavy",
        "lib.plugins",  # star import of a package
        "lib.plugins.one",  # computed relative import_module: the whole package
        "lib.plugins.two",
        "lib.const",  # a literal import_module name
    }
    assert got == expect


def test_script_entry_and_relative_imports(project):
    got = names(project, code_inputs(project, "scripts/draw.py"))
    assert got == {"scripts.draw", "app", "app.core", "app.core.kernels", "app.util"}
    assert imported_names(project / "app/core/kernels.py", "app.core") == {
        "app.util",
        "app.util.helper",
    }


def test_missing_entry_is_named(project):
    with pytest.raises(ModuleNotFoundError, match="app.nope"):
        code_inputs(project, "app.nope")
    with pytest.raises(FileNotFoundError, match="nope.py"):
        code_inputs(project, "scripts/nope.py")


def test_real_entry_points_reach_their_stage_and_the_contract():
    analyzer = names(ROOT, code_inputs(ROOT, "analyzer.__main__"))
    assert {"analyzer.cli", "analyzer.core.kernels", "latent_mi.contract"} <= analyzer
    assert not any(m.startswith(("trainer", "interventions")) for m in analyzer)  # no torch
    iv = names(ROOT, code_inputs(ROOT, "interventions.__main__"))
    # the ones the old hand-kept list missed (issue 21)
    assert {"trainer.zoo", "trainer.discovery", "trainer.config", "trainer.datasets_extra"} <= iv


def test_import_graph_modules_import_no_torch():
    code = (
        "import sys, latent_mi.code_inputs, trainer.arch_names as a; a.classifier_names(); "
        "sys.exit('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_torchvision_names_from_source_match_list_models():
    models = pytest.importorskip("torchvision.models")
    assert classifier_names() == frozenset(models.list_models(module=models))
    assert unknown_arch("torchvision:mobilenet_v3_small") is None
    assert unknown_arch("resnet18") is None  # not a torchvision arch: the schema checks it
    why = unknown_arch("torchvision:resnet19")
    assert why.startswith("unknown torchvision classifier 'resnet19'") and "resnet18" in why
