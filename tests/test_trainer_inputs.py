"""Bad trainer inputs are one line (issue 27 items 5 and 6, trainer parts)."""

from trainer import cli


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_out_at_an_existing_file_is_one_line(tmp_path, capsys):
    out = tmp_path / "R"
    out.write_text("keep")
    assert cli.main(["train.epochs=1", "--out", str(out)]) != 0
    line = _one_line(capsys)
    assert line.startswith("trainer: error: --out") and str(out) in line and "is a file" in line
    assert out.read_text() == "keep"


def test_zero_epochs_is_refused(tmp_path, capsys):
    assert cli.main(["train.epochs=0", "--out", str(tmp_path / "R")]) != 0
    assert "train.epochs=0" in _one_line(capsys)
    assert not (tmp_path / "R" / "done.json").exists()


def test_image_folder_with_one_class_is_refused(tmp_path, capsys):
    from tests.test_datasets_extra import make_image_folder

    make_image_folder(tmp_path / "data", classes=("cat",))
    argv = ["dataset.name=imagefolder", f"dataset.root={tmp_path / 'data'}", "train.epochs=1"]
    assert cli.main([*argv, "arch=vgg16", "--out", str(tmp_path / "R")]) != 0
    line = _one_line(capsys)
    assert "1 class (cat)" in line and "at least 2" in line
    assert not (tmp_path / "R" / "done.json").exists()


def test_missing_weights_file_is_one_line(tmp_path):
    import pytest

    from trainer.zoo import build_torchvision

    missing = str(tmp_path / "pretrained.pth")
    for width in (1.0, 0.5):
        with pytest.raises(ValueError, match=r"weights=.*pretrained.pth.*no such file"):
            build_torchvision("mobilenet_v3_small", 3, width=width, weights=missing)
    build_torchvision("mobilenet_v3_small", 3, weights=None)  # no weights: fine
