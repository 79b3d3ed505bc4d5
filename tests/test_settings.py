"""One declaration per setting: the schema, parsers, README tables, resume policy and run
identity all agree with latent_mi/settings/declarations.py, and bad values are one line."""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from latent_mi import settings
from latent_mi.settings import SETTINGS, Setting
from latent_mi.settings.__main__ import SCHEMA_FILE, schema_text
from latent_mi.settings.readme import replace_tables

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"mi": "analyzer", "interventions": "interventions", "robustness": "analyzer.sweep"}


def parser_of(section: str):
    """The parser of the command that takes ``section``'s settings."""
    from analyzer import cli, sweep
    from interventions import cli as interventions_cli

    modules = {"mi": cli, "interventions": interventions_cli, "robustness": sweep}
    return modules[section].build_parser()


def test_schema_file_is_generated_from_the_declarations():
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "run python -m latent_mi.settings --write-schema"
    )


def test_readme_tables_are_generated_from_the_declarations():
    text = (ROOT / "README.md").read_text()
    assert replace_tables(text) == text, "run python -m latent_mi.settings --write-readme README.md"
    assert "| `mi.pair_samples` | analysis |" in text


def test_every_config_file_validates_and_keeps_its_values():
    schema = yaml.safe_load(SCHEMA_FILE.read_text())
    for path in sorted((ROOT / "config").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        jsonschema.validate(config, schema)
    bad = {
        "grid": {"arch": ["alexnet"], "activation": ["relu"], "regularizer": ["none"], "seed": [0]}
    }
    with pytest.raises(jsonschema.ValidationError, match="'alexnet' is not one of"):
        jsonschema.validate(bad, schema)


def test_trainer_schema_and_defaults_come_from_the_table():
    from trainer import config as trainer_config

    assert trainer_config.DEFAULTS == settings.trainer_defaults()
    assert trainer_config.DEFAULTS["train"]["lr"] == SETTINGS["train.lr"].default
    assert "live" not in trainer_config.DEFAULTS["train"]  # not stored in a run's config
    cfg = trainer_config.resolve_config(None, ["train.lr=0.1"])
    assert cfg["train"]["lr"] == 0.1 and cfg["dump"]["clevel"] == SETTINGS["dump.clevel"].default
    with pytest.raises(trainer_config.ConfigError, match="config key train.lr"):
        trainer_config.resolve_config(None, ["train.lr=-1"])


def _option(parser, flag):
    return next(a for a in parser._actions if flag in a.option_strings)


@pytest.mark.parametrize("section", sorted(COMMANDS))
def test_parser_defaults_and_help_come_from_the_table(section):
    parser = parser_of(section)
    declared = [s for s in SETTINGS.values() if s.section == section and s.flag]
    assert declared
    for s in declared:
        action = _option(parser, s.flag)
        assert action.dest == s.name and action.default == s.command_default, s.key
    text = re.sub(r"\s+", " ", parser.format_help())
    assert "(default: None)" not in text
    formatter = parser._get_formatter()
    for action in parser._actions:
        shown = re.sub(r"\s+", " ", formatter._format_action(action))
        assert shown.count("(default") <= 1, shown  # said once
        if action.required or action.default is None:
            assert "(default" not in shown, shown
        elif action.option_strings and action.default not in (False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in shown, shown


def test_every_analysis_setting_reaches_the_analysis_options():
    """A declared mi option that nothing uses fails here (declaration + use, nothing lost)."""
    import dataclasses

    from analyzer import cli
    from analyzer.layer_info import LayerInfoOptions
    from analyzer.prepare import Options

    homes = {f.name for f in dataclasses.fields(Options)} | set(cli.LAYER_INFO)
    for s in SETTINGS.values():
        if s.section == "mi" and s.flag and s.kind != "runtime":
            assert s.name in homes, f"{s.key} is declared but never reaches Options"
    argv = ["s", "--out", "o", "--pair-samples", "7", "--noise-betas", "0.1", "--cc-layers", "a"]
    opts = cli.options_of(settings.parse(cli.build_parser(), argv, "mi"), Options, LayerInfoOptions)
    assert (opts.pair_samples, opts.layer_info.betas, opts.cc_layers) == (7, (0.1,), ["a"])
    default = cli.options_of(
        settings.parse(cli.build_parser(), ["s", "--out", "o"], "mi"), Options, LayerInfoOptions
    )
    assert default.key() == Options().key()  # the defaults of the analysis are the table's


def test_estimator_options_enter_the_reuse_key_only_when_their_estimator_runs():
    """Histogram-only MI Datasets keep their key (and are reused) when estimator options are
    added or changed; with an estimator listed, each of its options changes the key."""
    import dataclasses
    import json

    from analyzer.options import ESTIMATOR_ONLY, Options

    marked = {f.name for f in dataclasses.fields(Options) if f.metadata.get(ESTIMATOR_ONLY)}
    assert {"estimators", "knn_k", "estimator_dims"} <= marked
    assert not marked & set(json.loads(Options().key()))
    assert Options(knn_k=9).key() == Options().key()
    knn = Options(estimators=("histogram", "knn"))
    assert marked <= set(json.loads(knn.key()))
    assert dataclasses.replace(knn, knn_k=9).key() != knn.key()
    assert dataclasses.replace(knn, bins=9).key() != knn.key()


def _outside(s: Setting):
    """A value just outside the declared range of ``s`` (None: unbounded)."""
    v = s.value
    if "enum" in v:
        return "nonsense"
    if "minimum" in v:
        return v["minimum"] - 1
    if "exclusiveMinimum" in v:
        return v["exclusiveMinimum"] - (0 if v.get("type") == "number" else 1)
    if "maximum" in v:
        return v["maximum"] + 1
    return None


def _ranged():
    for s in SETTINGS.values():
        if s.flag and s.section in COMMANDS and s.value.get("type") != "boolean":
            if _outside(s) is not None:
                yield pytest.param(s, id=s.key)


@pytest.mark.parametrize("s", list(_ranged()))
def test_each_option_refuses_what_the_workflow_schema_refuses(s, capsys):
    """The command and the workflow schema refuse the same value, naming the option."""
    bad = _outside(s)
    parser = parser_of(s.section)
    argv = ["x", "--out", "o"] + (["--mi", "m"] if s.section == "interventions" else [])
    with pytest.raises(SystemExit) as exit_:
        settings.parse(parser, [*argv, s.flag, str(bad)], s.section)
    assert exit_.value.code == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith(f"{parser.tool}: error: {s.flag}"), line
    assert settings.range_text(s) in line, line
    item = settings.json_schema()["properties"][s.section]["properties"].get(s.name)
    if item is not None:  # also in the workflow config: its schema refuses it too
        value = [bad] if s.many else bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, {k: v for k, v in item.items() if k != "default"})


def test_settings_document_under_command_line_options(capsys):
    from analyzer.cli import build_parser

    doc = json.dumps({"pair_samples": 8, "topk": [5], "miller_madow": True})
    args = settings.parse(build_parser(), ["s", "--out", "o", "--settings-json", doc], "mi")
    assert (args.pair_samples, args.topk, args.miller_madow, args.bins) == (8, [5], True, 20)
    argv = ["s", "--out", "o", "--settings-json", doc, "--pair-samples", "3", "--no-miller-madow"]
    args = settings.parse(build_parser(), argv, "mi")
    assert (args.pair_samples, args.miller_madow) == (3, False)
    for doc, message in [
        ('{"pair_samples": 0}', "mi.pair_samples must be at least 1, got 0"),
        ('{"pear_samples": 8}', "unknown setting mi.pear_samples"),
        ("[8]", "must be a JSON object"),
    ]:
        with pytest.raises(SystemExit):
            settings.parse(build_parser(), ["s", "--out", "o", "--settings-json", doc], "mi")
        assert message in capsys.readouterr().err


def test_the_workflows_documents_are_what_the_commands_resolve():
    """command_document of config/config.yaml's sections, passed to the commands, gives the
    same values as the config (and defaults where it is silent); no runtime keys."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for section, extra in [("mi", []), ("interventions", ["--mi", "m"])]:
        doc = settings.command_document(config.get(section, {}), section)
        assert not any(SETTINGS[f"{section}.{n}"].kind == "runtime" for n in doc)
        argv = ["x", "--out", "o", *extra, "--settings-json", json.dumps(doc)]
        args = settings.parse(parser_of(section), argv, section)
        for name, value in doc.items():
            assert getattr(args, name) == config.get(section, {}).get(name, value), name
    assert settings.command_document({}, "interventions", only=("q",)) == {
        "q": SETTINGS["interventions.q"].default
    }


def test_resume_may_change_table_is_every_non_identity_trainer_setting():
    from trainer import resume

    expected = {k for k, s in SETTINGS.items() if s.trainer and s.kind != "identity"}
    assert set(resume.MAY_CHANGE) == expected == set(settings.may_change())
    assert {"train.progress", "train.device", "dataset.root", "dump.clevel"} <= expected
    assert "train.lr" not in expected
    saved = {"train": {"lr": 0.05, "progress": True}, "dump": {"clevel": 1}}
    new = {"train": {"lr": 0.05, "progress": False}, "dump": {"clevel": 3}}
    assert resume.config_changes(saved, new) == []
    new["train"]["lr"] = 0.1
    assert resume.config_changes(saved, new) == ["train.lr: 0.05 -> 0.1"]


def test_identity_settings_drop_every_runtime_and_non_training_key():
    from trainer.config import resolve_config

    run = resolve_config(None, ["train.progress=false", "train.device=cpu", "dataset.root=/x"])
    other = resolve_config(None, ["train.num_workers=3", "dump.clevel=5", "dataset.download=true"])
    assert settings.identity_settings(run) == settings.identity_settings(other)
    assert "progress" not in settings.identity_settings(run)["train"]
    changed = resolve_config(None, ["train.lr=0.1"])
    assert settings.identity_settings(changed) != settings.identity_settings(run)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    mine = {**config, "mi": {"bins": [30]}, "figures": {"formats": ["svg"]}}
    assert settings.identity_settings(mine) == settings.identity_settings(config)
    assert "mi" not in settings.identity_settings(config) and "grid" in settings.identity_settings(
        config
    )


def test_a_setting_or_option_declared_twice_is_refused():
    one = Setting("mi.x", "analysis", {"type": "integer"}, 1, "x", flag="--x")
    with pytest.raises(settings.DuplicateSettingError, match="mi.x is declared twice"):
        settings.declare([one, one])
    other = Setting("mi.y", "analysis", {"type": "integer"}, 1, "y", flag="--x")
    with pytest.raises(settings.DuplicateSettingError, match="option --x of mi"):
        settings.declare([one, other])
    assert list(settings.declare(list(SETTINGS.values()))) == list(SETTINGS)
    with pytest.raises(ValueError, match="kind"):
        Setting("mi.z", "colour", {"type": "integer"}, 1, "z")


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize(
    "module, args, message",
    [
        (
            "analyzer",
            ["s.zarr", "--out", "o", "--pca-components", "100000"],
            "--pca-components 100000",
        ),
        (
            "analyzer",
            ["s.zarr", "--out", "o", "--permutations", "-3"],
            "--permutations must be at least 0, got -3",
        ),
        ("analyzer", ["--bogus", "x"], "unrecognized arguments: --bogus"),
        (
            "interventions",
            ["r", "--mi", "m", "--out", "o", "--q", "1.5"],
            "--q values must be in (0, 1], got 1.5",
        ),
        (
            "interventions",
            ["r", "--mi", "m", "--out", "o", "--q", "-0.2"],
            "--q values must be in (0, 1], got -0.2",
        ),
        (
            "interventions",
            ["r", "--mi", "m", "--out", "o", "--draws", "0"],
            "--draws must be at least 1, got 0",
        ),
        ("interventions", ["r", "--out", "o", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(module, args, message):
    proc = _run(module, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr


def test_pca_components_beyond_the_widest_layer_is_refused(tmp_path):
    """In range (>= 1) but more than any layer has: one line naming the option (exit 2 in
    the CLI), where it used to give label_mi_pca 0."""
    from analyzer.prepare import OptionError, Options, prepare
    from tests.test_analyzer_scale import WIDTHS, make_store

    make_store(tmp_path / "s.zarr", 2)
    with pytest.raises(
        OptionError, match=rf"--pca-components 41 exceeds .* {max(WIDTHS)} channels"
    ):
        prepare(tmp_path / "s.zarr", Options(bins=2, pca_components=max(WIDTHS) + 1))
    assert prepare(tmp_path / "s.zarr", Options(bins=2, pca_components=max(WIDTHS))).plan


def test_interventions_help_imports_no_torch():
    code = (
        "import sys\nfrom interventions import cli\nassert cli.main(['--help']) == 0\n"
        "print('torch loaded:', 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "(default: [0.1, 0.25, 0.5, 0.75])" in re.sub(r"\s+", " ", proc.stdout)
    assert "torch loaded: False" in proc.stdout


def test_findings_report_help_is_plain_text():
    proc = _run("analyzer.report.findings_report", "--help")
    assert proc.returncode == 0
    assert "``" not in proc.stdout and ":func:" not in proc.stdout
    assert "OUT.json" in proc.stdout
