"""read_json: every way a user's JSON file can be wrong ends in one line naming the file."""

import pytest

from discern.core import ConfigError, DataError
from discern.core.config import load_config_file
from discern.core.files import read_json


def test_reads_objects_and_lists(tmp_path):
    f = tmp_path / "a.json"
    f.write_text('{"x": [1, 2.5, "é"]}', encoding="utf-8")
    assert read_json(f) == {"x": [1, 2.5, "é"]}
    assert read_json(f, expect=dict) == {"x": [1, 2.5, "é"]}
    f.write_text("[1]")
    assert read_json(f, expect=list) == [1]


@pytest.mark.parametrize("data,expect,message", [
    (b'{"a": 1,\n "b": }', None, "invalid JSON at line 2, column 7: Expecting value"),
    (b"", None, "invalid JSON at line 1, column 1: Expecting value"),
    (b'{"a": "\xff"}', None, "not UTF-8 text (byte 7)"),
    (b"[1, 2]", dict, "expected a JSON object at the top level, got list"),
    (b"null", list, "expected a JSON list at the top level, got null"),
    (b"true", int, "expected a JSON integer at the top level, got bool"),
    (b"[" * 100_000 + b"]" * 100_000, None, "JSON nested too deeply"),
])
def test_bad_files_give_one_line(tmp_path, data, expect, message):
    f = tmp_path / "bad.json"
    f.write_bytes(data)
    with pytest.raises(DataError) as e:
        read_json(f, expect=expect)
    assert str(e.value) == f"{f}: {message}"


def test_missing_file_label_and_error_class(tmp_path):
    with pytest.raises(DataError) as e:
        read_json(tmp_path / "none.json", label="none.json", missing="run: discern x")
    assert str(e.value) == "none.json: no such file (run: discern x)"
    with pytest.raises(DataError) as e:
        read_json(tmp_path)  # a folder is not a file
    assert str(e.value) == f"{tmp_path}: no such file"
    f = tmp_path / "c.json"
    f.write_text("[]")
    with pytest.raises(ConfigError) as e:
        load_config_file(f)
    assert str(e.value) == f"config file {f}: expected a JSON object at the top level, got list"
