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
