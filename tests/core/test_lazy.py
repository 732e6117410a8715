"""``when_imported``: hooks that run once a module is imported (how discern.bam and discern.fwl register
their models with transformers' auto classes without importing transformers)."""

import sys

import pytest

from discern.core.lazy import when_imported


def _module(tmp_path, monkeypatch, name, body="VALUE = 1\n"):
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_a_hook_runs_after_a_later_import_and_at_once_for_a_loaded_module(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "discern_hook_probe_a")
    seen = []
    when_imported("discern_hook_probe_a", lambda m: seen.append(("later", m.VALUE)))
    assert seen == [] and "discern_hook_probe_a" not in sys.modules
    import discern_hook_probe_a

    assert seen == [("later", 1)] and discern_hook_probe_a.VALUE == 1
    when_imported("discern_hook_probe_a", lambda m: seen.append(("now", m.VALUE)))
    assert seen == [("later", 1), ("now", 1)]
    import importlib

    importlib.reload(discern_hook_probe_a)  # a hook runs once
    assert len(seen) == 2


def test_a_failing_hook_warns_and_the_import_still_succeeds(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "discern_hook_probe_b")

    def boom(module):
        raise RuntimeError("no")

    when_imported("discern_hook_probe_b", boom)
    with pytest.warns(UserWarning, match="after importing discern_hook_probe_b failed: RuntimeError: no"):
        import discern_hook_probe_b
    assert discern_hook_probe_b.VALUE == 1
