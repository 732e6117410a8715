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
