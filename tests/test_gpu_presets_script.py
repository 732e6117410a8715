"""scripts/gpu-presets.sh: the kit for running ELECTRA's and Electric's gpu presets on a GPU machine
without network (packing the data here, clear errors there)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-presets.sh"
DATASETS = ["brown", "sotu", "moby-dick", "austen", "spam-assassin", "tasks"]


def run(args, cwd, **env):
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_pack_holds_exactly_the_datasets_of_both_presets(tmp_path):
    data = tmp_path / "data"
    for name in DATASETS + ["qwen2.5-0.5b"]:  # a model folder that must not travel
        (data / name).mkdir(parents=True)
        (data / name / "file.txt").write_text(name)
    repo = tmp_path / "repo"
    repo.mkdir()
    r = run(["pack"], repo, DISCERN_DATA=str(data))
    assert r.returncode == 0, r.stderr
    with tarfile.open(repo / ".gpu-kit" / "data.tar.xz") as tar:
        files = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert files == sorted(f"{name}/file.txt" for name in DATASETS)


def test_pack_without_the_data_is_an_error(tmp_path):
    r = run(["pack"], tmp_path, DISCERN_DATA=str(tmp_path / "missing"))
    assert r.returncode == 1
    assert "install the data first" in r.stdout


def test_run_without_a_kit_or_out_dir_is_an_error(tmp_path):
    assert run([], tmp_path).returncode == 2
    assert run(["run"], tmp_path).returncode == 2
    r = run(["run", str(tmp_path / "out")], tmp_path, WORK=str(tmp_path / "work"))
    assert r.returncode == 1
    assert "run '" in r.stdout and "pack' first" in r.stdout


def test_gitignore_keeps_the_kit_out_of_commits():
    assert ".gpu-kit/" in (ROOT / ".gitignore").read_text().split()
