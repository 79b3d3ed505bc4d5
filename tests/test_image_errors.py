"""An unreadable image is one line naming it, also from a DataLoader worker (issue 27.6)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_datasets_extra import make_image_folder
from trainer.config import resolve_config
from trainer.loaders import ImageError
from trainer.train import run

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["dataset.image_size=16", "width=0.125", "train.epochs=1", "train.progress=false"]


def _damaged_folder(root: Path) -> Path:
    make_image_folder(root)
    bad = root / "train" / "bee" / "bee1.png"
    bad.write_bytes(b"this is not an image")
    return bad


def test_unreadable_image_in_process_is_one_line(tmp_path):
    bad = _damaged_folder(tmp_path / "images")
    cfg = resolve_config(
        None, ["dataset.name=imagefolder", f"dataset.root={tmp_path / 'images'}", *SMALL]
    )
    with pytest.raises(ImageError) as err:
        run(cfg, tmp_path / "run")
    line = str(err.value)
    assert "\n" not in line and f"image {bad} cannot be read (UnidentifiedImageError" in line


@pytest.mark.slow  # a spawned loader worker: ~40 s on a loaded 2-core machine
def test_unreadable_image_in_a_loader_worker_is_one_line_from_the_cli(tmp_path):
    bad = _damaged_folder(tmp_path / "images")
    cmd = [sys.executable, "-m", "trainer", "--out", str(tmp_path / "run"), "--workers", "1"]
    cmd += ["dataset.name=imagefolder", f"dataset.root={tmp_path / 'images'}", *SMALL]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "Error" in line or "error" in line]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert errors == [
        f"trainer: error: image {bad} cannot be read (UnidentifiedImageError: cannot identify "
        f"image file {str(bad)!r}): replace or remove it"
    ], errors
