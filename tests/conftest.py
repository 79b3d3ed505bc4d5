import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A 3-epoch ResNet-18 (width 1/8) run on synthetic data: its run directory."""
    from tests.helpers import tiny_config
    from trainer.train import run

    run_dir = tmp_path_factory.mktemp("runs") / "resnet18-relu-none-s0"
    run(tiny_config("train.epochs=3", "dataset.noise=0.3"), run_dir)
    return run_dir
