"""The command line's own behaviour: --version, and a bad folder is one line, exit 2."""

import pytest

from discern import __version__
from discern.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"discern {__version__}\n"


def test_psychophysics_humans_with_a_bad_folder_is_one_line(tmp_path, capsys):
    assert main(["psychophysics", "humans", "--raw", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {tmp_path / 'bad'}: no such folder (expected model-vs-human's raw-data folder, with one "
                   "sub-folder of decision CSVs per dataset)\n")
    (tmp_path / "raw").mkdir()
    assert main(["psychophysics", "humans", "--raw", str(tmp_path / "raw"), "--datasets", "edge"]) == 2
    assert capsys.readouterr().err == f"error: no decision CSVs in {tmp_path / 'raw' / 'edge'}\n"


@pytest.mark.parametrize("command", [["electra", "pretrain"], ["electric", "pretrain"], ["fwl", "train"],
                                     ["bam", "distill", "--teachers", "nowhere"], ["diffusion", "train"]])
def test_print_config_prints_the_resolved_config_and_runs_nothing(command, tmp_path, monkeypatch, capsys):
    import json

    from discern.core import config as config_module

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(config_module, "PRINT_AND_EXIT", [])
    with pytest.raises(SystemExit) as e:
        main(command + ["--preset", "tiny", "--set", "seed=7", "--print-config"])
    assert e.value.code == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["seed"] == 7 and not (tmp_path / "runs").exists()


def test_reproduce_print_config_prints_every_selected_paper(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    assert main(["reproduce", "--only", "attention,diffusion-classifier", "--preset", "tiny", "--set", "seed=3",
                 "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert sorted(cfg) == ["attention", "diffusion_classifier"] and cfg["attention"]["seed"] == 3
    assert not (tmp_path / "runs").exists()


def test_print_config_shows_what_command_flags_changed(tmp_path, monkeypatch, capsys):
    import json

    from discern.core import config as config_module

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(config_module, "PRINT_AND_EXIT", [])
    with pytest.raises(SystemExit) as e:
        main(["draft", "train", "--model", "nowhere", "--preset", "tiny", "--method", "refl", "--k", "3",
              "--set", "draft.seed=5", "--print-config"])
    assert e.value.code == 0
    cfg = json.loads(capsys.readouterr().out)["draft"]
    assert (cfg["method"], cfg["K"], cfg["seed"]) == ("refl", 3, 5) and not (tmp_path / "runs").exists()


def _commands(parser, path=("discern",)):
    """(command path, parser) for every command and sub-command of the tree."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases share one parser
                    seen.add(id(sub))
                    yield from _commands(sub, path + (name,))


def test_every_flag_has_help_and_shows_its_default():
    from discern.cli import build_parser

    commands = dict(_commands(build_parser()))
    bare, count = [], 0
    for path, parser in commands.items():
        for action in parser._actions:
            if action.option_strings and action.dest not in ("help", "version"):
                count += 1
                if not (action.help or "").strip():
                    bare.append(f"{' '.join(path)} {action.option_strings[0]}")
    assert bare == [] and count > 150
    # the formatter shows a default once, and none for None or False
    text = " ".join(commands[("discern", "llm", "serve")].format_help().split())
    assert "TCP port (default: 8000)" in text and "(default: None)" not in text and "(default: False)" not in text
    assert "the largest n a request may ask (default: 16)" in text


def test_papers_are_named_as_their_command_in_messages(capsys):
    assert main(["bench", "nureality-nope"]) == 2
    err = capsys.readouterr().err
    assert "diffusion-classifier" in err and "diffusion_classifier" not in err
