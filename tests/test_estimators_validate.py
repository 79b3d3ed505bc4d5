"""Ground-truth tasks: quadrature truth vs Monte Carlo; the suite runs on a tiny size."""

import numpy as np
import pytest

from analyzer.validate.__main__ import main
from analyzer.validate.tasks import FAMILIES, true_mi_monte_carlo, true_mi_quadrature


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("n_classes,sep", [(2, 0.5), (10, 1.0), (2, 3.0)])
def test_quadrature_equals_monte_carlo(family, n_classes, sep):
    truth = true_mi_quadrature(family, n_classes, sep)
    mc, se = true_mi_monte_carlo(family, n_classes, sep, 200_000, np.random.default_rng(0))
    assert abs(truth - mc) < 4 * se + 1e-9
    assert 0 <= truth <= np.log(n_classes) + 1e-9


def test_zero_separation_is_zero_and_disjoint_uniforms_are_h_y():
    assert abs(true_mi_quadrature("gaussian", 10, 0.0)) < 1e-9
    assert np.isclose(true_mi_quadrature("uniform", 10, 1.0), np.log(10), atol=1e-8)


def test_suite_prints_a_table(capsys):
    main(["--sizes", "60", "--seeds", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| task | N | true MI | histogram")
    assert len(lines) == 2 + 24
