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
