"""Fixtures for the data package: an empty data root, toy datasets, the shared local copies."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from discern.data import registry
from discern.data.registry import DatasetSpec

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"  # tests only: a local copy beside the checkout


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no local data copy at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails as it would without internet access."""
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.delenv("DISCERN_OFFLINE", raising=False)


@pytest.fixture
def tmp_root(tmp_path, monkeypatch, no_network) -> Path:
    root = tmp_path / "discern-data"
    monkeypatch.setenv("DISCERN_DATA", str(root))
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


TOY_FILES = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n"}


@pytest.fixture
def toy(monkeypatch, tmp_path) -> tuple[str, Path]:
    """A registered local-route dataset 'toy' and a parent folder holding a copy of it."""
    copies = tmp_path / "copies"
    for rel, data in TOY_FILES.items():
        p = copies / "toy-copy" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (copies / "toy-copy" / "LICENSE").write_text("toy licence\n")
    (copies / "toy-copy" / "unrelated.bin").write_bytes(b"\0")
    spec = DatasetSpec(
        name="toy", description="a toy", licence="CC0", source_url="https://example.org/toy",
        papers=("fwl",), route="local", local_dir_name="toy-copy",
        files=tuple(TOY_FILES), include=("LICENSE*",),
        sha256={"a.txt": sha(TOY_FILES["a.txt"])},
        urls=(("a.txt", "https://example.org/toy/a.txt"), ("sub/b.txt", "https://example.org/toy/b.txt")),
    )
    monkeypatch.setitem(registry.REGISTRY, "toy", spec)
    return "toy", copies
