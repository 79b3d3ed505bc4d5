"""imagefolder and cifar10 on generated files in their on-disk layouts, via torchvision."""

import hashlib
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from trainer.config import resolve_config
from trainer.datasets import load_dataset
from trainer.datasets_extra import CIFAR10_MEAN, CIFAR10_STD


def make_image_folder(root, classes=("cat", "ant", "bee"), per_class=3):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{c}{i}.png")


def test_imagefolder_loads_sorted_classes_with_fixed_val_order(tmp_path):
    make_image_folder(tmp_path)
    cfg = resolve_config(
        None, ["dataset.name=imagefolder", f"dataset.root={tmp_path}", "dataset.image_size=24"]
    )["dataset"]
    data = load_dataset(cfg)
    assert data.classes == ["ant", "bee", "cat"] and data.n_classes == 3
    assert len(data.train) == 9 and len(data.val) == 9
    labels = [data.val[i][1] for i in range(len(data.val))]
    assert labels == sorted(labels)  # class by class, files sorted: a fixed order
    img, _ = data.val[4]
    assert img.shape == (3, 24, 24)
    torch.testing.assert_close(load_dataset(cfg).val[4][0], img)  # deterministic val transform
    assert data.train[0][0].shape == (3, 24, 24)


def test_imagefolder_faults_name_the_culprit(tmp_path):
    cfg = resolve_config(None, ["dataset.name=imagefolder", f"dataset.root={tmp_path}"])["dataset"]
    with pytest.raises(FileNotFoundError, match="train not found"):
        load_dataset(cfg)
    make_image_folder(tmp_path)
    (tmp_path / "val" / "dog").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "val" / "dog" / "d.png")
    with pytest.raises(ValueError, match="class folders differ: dog"):
        load_dataset(cfg)


def make_cifar10(root, n_per_batch=6, seed=0):
    """CIFAR-10's python layout: pickled dicts of uint8 rows (N, 3072) and labels."""
    base = root / datasets.CIFAR10.base_folder
    base.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        batches[name] = (data, labels)
        with open(base / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)
    label_names = ["airplane", "automobile", "bird", "cat", "deer"]
    label_names += ["dog", "frog", "horse", "ship", "truck"]
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": label_names}, f)
    return base, batches


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10_loads_generated_batches_through_torchvision(tmp_path, monkeypatch):
    base, batches = make_cifar10(tmp_path)
    # torchvision checks every file's md5: point its lists at the generated files
    cls = datasets.CIFAR10
    train_md5 = [[n, _md5(base / n)] for n, _ in cls.train_list]
    monkeypatch.setattr(cls, "train_list", train_md5)
    monkeypatch.setattr(cls, "test_list", [["test_batch", _md5(base / "test_batch")]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(base / "batches.meta")})
    cfg = resolve_config(None, ["dataset.name=cifar10", f"dataset.root={tmp_path}"])["dataset"]
    data = load_dataset(cfg)
    assert data.classes[:3] == ["airplane", "automobile", "bird"]
    assert len(data.train) == 30 and len(data.val) == 6
    raw, labels = batches["test_batch"]
    for i in (0, 5):
        img, label = data.val[i]
        expect = torch.from_numpy(raw[i].reshape(3, 32, 32).astype(np.float32) / 255)
        mean, std = (
            torch.tensor(CIFAR10_MEAN)[:, None, None],
            torch.tensor(CIFAR10_STD)[:, None, None],
        )
        torch.testing.assert_close(img, (expect - mean) / std)
        assert label == labels[i]
    assert data.train[0][0].shape == (3, 32, 32)
    resized = load_dataset({**cfg, "image_size": 48})
    assert resized.val[0][0].shape == (3, 48, 48)


def test_missing_cifar10_names_the_path(tmp_path):
    cfg = resolve_config(None, ["dataset.name=cifar10", f"dataset.root={tmp_path}"])["dataset"]
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_dataset(cfg)
