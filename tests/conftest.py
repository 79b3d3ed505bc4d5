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


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@pytest.fixture(autouse=True)
def _thread_variables_restored():
    """dask.distributed's nanny sets the BLAS/OpenMP thread variables to 1 in the test
    process and leaves them: every later subprocess would inherit them."""
    before = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
