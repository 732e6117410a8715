import os

import pytest
import torch

from discern.core import CheckpointError, Run, atomic_write_text, load_checkpoint, save_checkpoint


def test_atomic_checkpoint_round_trip(tmp_path):
    p = tmp_path / "ck" / "last.pt"
    state = {"w": torch.arange(5.0), "step": 3}
    save_checkpoint(p, state)
    got = load_checkpoint(p)
    assert torch.equal(got["w"], state["w"]) and got["step"] == 3
    assert os.listdir(p.parent) == ["last.pt"]  # no temporary file left behind


def test_truncated_checkpoint_is_one_line_error(tmp_path):
    p = tmp_path / "last.pt"
    save_checkpoint(p, {"w": torch.randn(1000)})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last.pt is truncated or corrupt") as e:
        load_checkpoint(p)
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_failed_atomic_write_leaves_old_file(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "old")

    class Boom(str):
        def encode(self, *a, **k):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write_text(p, Boom("new"))
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_run_folder_layout(tmp_path):
    run = Run.create("electra", "x", {"a": 1}, root=tmp_path)
    assert run.path.parent == tmp_path / "electra" and run.path.name.endswith("-x")
    assert (run.path / "config.json").is_file() and run.checkpoints.is_dir() and run.plots.is_dir()
    for s in range(1, 5):
        run.log({"step": s, "loss": float(s)})
    run.truncate_metrics(2)
    assert [r["step"] for r in run.metrics()] == [1, 2]


def test_atomic_writes_get_the_mode_a_plain_write_gets(tmp_path):
    import os
    import stat

    from discern.core import atomic_write_text

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode) and mode & 0o044 == 0o044 & ~_umask()


def _umask():
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("text, message", [
    ("not json", "config.json: invalid JSON at line 1, column 1: Expecting value"),
    ("[1, 2]", "config.json: expected a JSON object at the top level, got list"),
    ("<b>=1+1</b>", "config.json: invalid JSON at line 1, column 1: Expecting value"),
])
def test_a_malformed_run_config_or_stage_result_is_a_one_line_error(tmp_path, text, message):
    from discern.core import ConfigError, DataError

    run = Run.create("paper", "x", config={"seed": 0}, root=tmp_path)
    assert run.load_config() == {"seed": 0}
    (run.path / "config.json").write_text(text)
    with pytest.raises(ConfigError) as e:
        Run.open(run.path).load_config()
    assert str(e.value) == f"{run.path}/{message}"
    (run.path / "stage-a.json").write_text(text)
    if text == "[1, 2]":  # a stage may return any JSON value
        assert run.stage("stage-a", lambda: {"never": "run"}) == [1, 2]
        return
    with pytest.raises(DataError) as e:
        run.stage("stage-a", lambda: {"never": "run"})
    assert str(e.value) == f"{run.path}/stage-a.json: invalid JSON at line 1, column 1: Expecting value"


def test_metrics_skip_a_cut_last_line_and_name_any_other_bad_one(tmp_path):
    from discern.core import DataError

    run = Run.create("paper", "x", root=tmp_path)
    run.log({"step": 2, "loss": 1.5})
    run.log({"step": 4, "loss": 1.0})
    p = run.path / "metrics.jsonl"
    good = p.read_text()
    p.write_text(good + '{"step": 6, "lo')  # a process killed while writing its record
    assert [r["step"] for r in run.metrics()] == [2, 4]
    run.truncate_metrics(after_step=4)  # what a resume does: the file is whole again
    assert p.read_text().count("\n") == 2 and [r["step"] for r in run.metrics()] == [2, 4]
    for bad, why in [("garbage", "invalid JSON at line 1, column 1: Expecting value"),
                     ("[1]", "expected a JSON object per line, got list"),
                     ('{"step": "x"}', "\"step\" must be an integer, got 'x'"),
                     ('{"step": true}', "\"step\" must be an integer, got True")]:
        p.write_text(good.replace("\n", "\n" + bad + "\n", 1))
        with pytest.raises(DataError) as e:
            run.metrics()
        assert str(e.value) == f"{p}:2: {why}"
