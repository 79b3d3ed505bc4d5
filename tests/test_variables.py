from pathlib import Path

import numpy as np
import pytest

from analyzer import variables as registry
from analyzer import variables_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_matches_registry():
    assert variables_table.main(["--check", str(README)]) == 0
    assert variables_table.readme_table(README.read_text()) == variables_table.markdown_table()


def test_every_variable_is_declared_once_with_units_and_known_dims():
    for name, var in registry.VARIABLES.items():
        assert name == var.name and var.units and var.description
        assert set(var.dims) <= set(registry.DIMS), name
        np.dtype(var.dtype)


def test_a_variable_declared_twice_is_refused():
    """The registry is built by declare(), which refuses a second declaration of a name (a
    dict literal would keep the last one silently)."""
    var = registry.VARIABLES["gini"]
    with pytest.raises(ValueError, match="'gini' is declared twice"):
        registry.declare([var, registry.VARIABLES["lr"], var])
    assert list(registry.declare(list(registry.VARIABLES.values()))) == list(registry.VARIABLES)


def test_stack_layers_pads_with_the_registry_fill():
    sizes = {"channel": 4, "label": 2, "k": 1, "bin_size": 3, "beta": 2}
    layer = {
        v.name: np.ones(registry.shape_of(v, sizes, skip=2)) for v in registry.of_stage("layer")
    }
    narrow = {k: (v[:2] if v.ndim and v.shape[0] == 4 else v) for k, v in layer.items()}
    out = registry.stack_layers([layer, narrow], sizes)
    clm = out["channel_label_mi"]
    assert clm.shape == (2, 4) and clm.dtype == np.float32
    assert np.isnan(clm[1, 2:]).all() and (clm[1, :2] == 1).all()
    assert out["class_channel_mi"].shape == (2, 4, 2)
    assert out["nonfinite_channels"].dtype == np.int32
    del narrow["gini"]
    with pytest.raises(KeyError, match="gini"):
        registry.stack_layers([narrow], sizes)
