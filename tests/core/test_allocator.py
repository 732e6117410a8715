"""discern.core.allocator: the discern command runs under mimalloc, its children keep their malloc."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from discern.core import allocator
from discern.core.errors import ConfigError

LIB = allocator.library()
PROBE = "from discern.core.allocator import active; print(active())"


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", allocator.ENV, "DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE")}
    env.update(extra)
    return env


def test_the_library_of_the_installed_package_is_found_by_its_soname():
    assert LIB is not None and LIB.is_file()
    assert LIB.name == "libmimalloc.so.3"
    assert LIB.parent.name == "lib" and LIB.parent.parent.name == "cmeel.prefix"


@pytest.mark.parametrize("value,expected", [(None, "mimalloc"), ("", "mimalloc"), ("mimalloc", "mimalloc"),
                                            (" System ", "system"), ("system", "system")])
def test_choice_reads_the_variable(value, expected):
    assert allocator.choice({} if value is None else {allocator.ENV: value}) == expected


@pytest.mark.parametrize("value", ["jemalloc", "1", "<b>system</b>"])
def test_another_choice_is_a_one_line_error(value):
    with pytest.raises(ConfigError) as e:
        allocator.choice({allocator.ENV: value})
    assert str(e.value) == f"DISCERN_ALLOCATOR must be one of mimalloc, system, not {value.strip().lower()!r}"


def test_without_removes_only_mimalloc_entries():
    other = "/usr/lib/libfoo.so"
    assert allocator._without(f"{LIB}:{other}") == other
    assert allocator._without(f"{other} /opt/x/libmimalloc.so.2") == other
    assert allocator._without("") == ""
    assert allocator._without(f"{other}:/a/libbar.so") == f"{other}:/a/libbar.so"


def test_child_env_preloads_mimalloc_before_the_other_entries():
    env = allocator.child_env("mimalloc", {"LD_PRELOAD": "/usr/lib/libfoo.so", "PATH": "/bin",
                                           "DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE": ""})
    assert env == {"LD_PRELOAD": f"{LIB}:/usr/lib/libfoo.so", "PATH": "/bin", "MIMALLOC_PURGE_DELAY": "-1",
                   allocator.ENV: "mimalloc"}
    # a user's own purge delay is kept
    assert allocator.child_env("mimalloc", {"MIMALLOC_PURGE_DELAY": "10"})["MIMALLOC_PURGE_DELAY"] == "10"


def test_child_env_system_removes_mimalloc_and_keeps_the_rest():
    assert allocator.child_env("system", {"LD_PRELOAD": str(LIB), "PATH": "/bin"}) == {
        "PATH": "/bin", allocator.ENV: "system"}
    assert allocator.child_env("system", {"LD_PRELOAD": f"{LIB}:/usr/lib/libfoo.so"})["LD_PRELOAD"] == "/usr/lib/libfoo.so"
    with pytest.raises(ConfigError, match="allocator must be one of mimalloc, system, not 'tcmalloc'"):
        allocator.child_env("tcmalloc", {})


def test_reexec_plan_preloads_and_remembers_the_old_value(tmp_path):
    script = tmp_path / "discern"
    script.write_text("")
    plan = allocator.reexec_plan({"LD_PRELOAD": "/usr/lib/libfoo.so", "HOME": "/h"}, str(script), "system", LIB)
    assert plan == {"LD_PRELOAD": f"{LIB}:/usr/lib/libfoo.so", "HOME": "/h", "MIMALLOC_PURGE_DELAY": "-1",
                    allocator.ENV: "mimalloc", "DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE": "/usr/lib/libfoo.so"}
    assert allocator.reexec_plan({}, str(script), "system", LIB)["DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE"] == ""


@pytest.mark.parametrize("env,argv0,loaded,lib", [
    ({"DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE": ""}, "SCRIPT", "system", LIB),  # already re-executed once
    ({allocator.ENV: "system"}, "SCRIPT", "system", LIB),  # the user's choice
    ({}, "SCRIPT", "mimalloc", LIB),  # preloaded by the user
    ({}, "SCRIPT", "system", None),  # not installed
    ({}, "-c", "system", LIB),  # python -c: nothing to run again
    ({}, "", "system", LIB),
    ({}, "/no/such/script", "system", LIB),
])
def test_reexec_plan_goes_on_as_it_is(tmp_path, env, argv0, loaded, lib):
    script = tmp_path / "discern"
    script.write_text("")
    assert allocator.reexec_plan(env, str(script) if argv0 == "SCRIPT" else argv0, loaded, lib) is None


def test_settle_after_reexec_puts_ld_preload_back(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", f"{LIB}:/usr/lib/libfoo.so")
    monkeypatch.setenv("DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE", "/usr/lib/libfoo.so")
    allocator.settle_after_reexec()
    assert os.environ["LD_PRELOAD"] == "/usr/lib/libfoo.so"
    assert "DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE" not in os.environ
    monkeypatch.setenv("LD_PRELOAD", str(LIB))
    monkeypatch.setenv("DISCERN_ALLOCATOR_LD_PRELOAD_BEFORE", "")
    allocator.settle_after_reexec()
    assert "LD_PRELOAD" not in os.environ


@pytest.mark.parametrize("kind", ["mimalloc", "system"])
def test_a_child_runs_under_the_malloc_it_was_given(kind):
    out = subprocess.run([sys.executable, "-c", PROBE], env=allocator.child_env(kind, _clean_env()),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == kind


def _discern_env(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "discern", "env", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_command_reexecutes_itself_under_mimalloc():
    out = _discern_env(_clean_env(), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["allocator"] == "mimalloc"


def test_the_command_keeps_glibc_malloc_when_asked():
    out = _discern_env(_clean_env(DISCERN_ALLOCATOR="system"), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["allocator"] == "system"


def test_a_bad_choice_stops_the_command_with_one_line():
    out = _discern_env(_clean_env(DISCERN_ALLOCATOR="<script>x</script>"))
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == "error: DISCERN_ALLOCATOR must be one of mimalloc, system, not '<script>x</script>'\n"


def test_programs_the_command_starts_keep_their_own_malloc(tmp_path):
    """The re-executed process holds mimalloc; LD_PRELOAD is back as it was for what it runs."""
    code = ("import os, subprocess, sys; from discern.core import allocator; allocator.use_mimalloc(); "
            "child = subprocess.run([sys.executable, '-c', " + repr(PROBE) + "], capture_output=True, text=True); "
            "print(allocator.active(), child.stdout.strip(), os.environ.get('LD_PRELOAD', '-'))")
    script = tmp_path / "probe.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], env=_clean_env(LD_PRELOAD=""), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["mimalloc", "system", "-"]
    out = subprocess.run([sys.executable, str(script)], env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["mimalloc", "system", "-"]
