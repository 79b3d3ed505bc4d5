import numpy as np
import pytest
import torch
from PIL import Image

from trainer.config import resolve_config
from trainer.data import INPUT_FEATURES, input_summary
from trainer.datasets import load_dataset


def make_imagenette_tree(root, size_dir="imagenette2-160", per_class=2):
    wnids = ["n01440764", "n02102040", "n02979186"]
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for w in wnids:
            d = root / size_dir / split / w
            d.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{w}_{i}.JPEG")
    return wnids


def test_generated_imagenette_tree_loads_through_torchvision(tmp_path):
    make_imagenette_tree(tmp_path)
    cfg = resolve_config(
        None, ["dataset.name=imagenette", f"dataset.root={tmp_path}", "dataset.image_size=32"]
    )
    data = load_dataset(cfg["dataset"])
    assert data.n_classes == 3 and data.classes[0] == "tench"
    assert len(data.train) == 6 and len(data.val) == 6
    img, label = data.val[0]
    assert img.shape == (3, 32, 32) and label == 0
    torch.testing.assert_close(data.val[3][0], data.val[3][0])  # val transforms are deterministic


def test_missing_imagenette_names_the_path(tmp_path):
    cfg = resolve_config(None, ["dataset.name=imagenette", f"dataset.root={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="imagenette2-160"):
        load_dataset(cfg["dataset"])


def test_digits_split_is_stratified_fixed_and_disjoint():
    cfg = resolve_config()["dataset"]
    a, b = load_dataset(cfg), load_dataset(cfg)
    assert a.n_classes == 10 and len(a.train) + len(a.val) == 1797
    assert torch.equal(a.val.images, b.val.images)
    counts = np.bincount(a.val.labels.numpy())
    assert counts.min() >= 30 and counts.max() <= 40
    assert a.val.images.shape[1:] == (3, 32, 32)


def test_input_summary_features():
    x = torch.randn(5, 3, 16, 16)
    s = input_summary(x)
    assert s.shape == (5, len(INPUT_FEATURES))
    torch.testing.assert_close(s[:, :3], x.mean(dim=(2, 3)))
    torch.testing.assert_close(s[:, 6], x.mean(dim=1)[:, :4, :4].mean(dim=(1, 2)))
