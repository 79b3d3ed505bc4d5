"""Command-line usability: defaults in --help, a run folder given for its store."""

import re

from analyzer import cli


def test_analyzer_help_shows_every_default():
    text = re.sub(r"\s+", " ", cli.build_parser().format_help())
    assert "(default: 20)" in text  # --bins
    assert "(default: [1, 5, 10, 20])" in text  # --topk
    for action in cli.build_parser()._actions:
        if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
            assert f"(default: {action.default})" in text, action.option_strings


def test_analyzer_given_a_run_folder_names_its_store(tmp_path, capsys):
    (tmp_path / "activations.zarr").mkdir()
    assert cli.main([str(tmp_path), "--out", str(tmp_path / "mi.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "run folder" in err
    assert str(tmp_path / "activations.zarr") in err
    assert not (tmp_path / "mi.zarr").exists()
