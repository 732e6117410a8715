"""Conformance of every registered paper to the one contract (DESIGN.md, "One paper, one package").

For each paper found by the registry: its files are used the same way (config.py holds the
presets, cli.py and the method modules never import experiment.py), its CLI module registers and
dispatches, its ``tiny`` reproduction writes a ``results.json`` that validates against the typed
``Result`` / ``Claim``, and its benchmark prints the ``{"bench", "ratios", "goals", "details"}``
convention.
"""

import ast
import dataclasses
import importlib
import json
from pathlib import Path

import pytest

from discern.core import VERDICTS, Result
from discern.reproduce import registry

PAPERS = registry.names()


def test_the_registry_finds_ten_papers():
    assert len(PAPERS) == 10


def _relative_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                out.add(node.module.split(".")[0])
            elif node.level == 1:
                out.update(a.name for a in node.names)
            elif node.level == 0 and node.module and node.module.startswith("discern."):
                parts = node.module.split(".")
                if len(parts) > 2:
                    out.add(f"{parts[1]}.{parts[2]}")
    return out


@pytest.mark.parametrize("name", PAPERS)
def test_files_are_used_the_same_way(name):
    paper = registry.get(name)
    folder = Path(importlib.import_module(paper.package).__file__).parent
    for f in ("config.py", "experiment.py", "cli.py", "README.md") + (("bench.py",) if paper.bench else ()):
        assert (folder / f).is_file(), f"{name}: missing {f}"
    assert paper.presets == "config:PRESETS", f"{name}: presets live in config.py"
    presets = paper.presets_dict()
    assert {"tiny", "quick"} <= set(presets), f"{name}: needs tiny and quick presets"
    for preset, make in presets.items():
        assert dataclasses.is_dataclass(make()), f"{name}: preset {preset} does not build a config dataclass"
    # experiment.py is only the paper's numbers, claims and plots: nothing else in the package imports it
    for py in folder.rglob("*.py"):
        if py.name == "experiment.py":
            continue
        imports = _relative_imports(py)
        assert "experiment" not in imports and f"{name}.experiment" not in imports, \
            f"{py.relative_to(folder.parent)} imports experiment.py: move the shared code into a method module"
    # cli.py is parsing and printing: it calls method modules, never the experiment
    assert "cli" not in _relative_imports(folder / "experiment.py"), f"{name}: experiment.py imports cli.py"


@pytest.mark.parametrize("name", PAPERS)
def test_cli_module_registers_and_dispatches(name):
    import argparse

    paper = registry.get(name)
    mod = paper.cli_module()
    assert callable(mod.add_commands) and callable(mod.run_command)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    mod.add_commands(sub)
    assert paper.cli_command in sub.choices


@pytest.mark.parametrize("name", PAPERS)
def test_tiny_reproduction_validates(name, tiny_reproduction):
    run_dir = tiny_reproduction(name)
    data = json.loads((run_dir / "results.json").read_text())
    res = Result.from_dict(data)
    assert res.paper == name
    for c in data["claims"]:
        assert {"statement", "paper", "ours", "test", "verdict"} <= set(c) and ("p_value" in c or "ci" in c)
        assert c["verdict"] in VERDICTS
    for p in res.plots:
        assert (run_dir / p).is_file(), f"{name}: plot {p} listed but not written"


@pytest.mark.parametrize("name", [p.name for p in registry.papers() if p.bench])
def test_bench_prints_the_json_convention(name, capsys):
    """``discern bench NAME --quick --json`` prints one object with the four keys, finite ratios and
    goals that name ratios (``registry.check_bench`` raises otherwise)."""
    from discern.cli import main

    assert main(["bench", registry.get(name).cli_command, "--quick", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    data = json.loads(out[-1])
    registry.check_bench(data, name)
    assert data["bench"].replace("-", "_") == name


def _lazy_tables(package: str) -> dict[str, str]:
    """The ``{"Name": "module"}`` tables a package's ``__init__`` hands to ``lazy_names``."""
    tree = ast.parse((Path(importlib.import_module(package).__file__)).read_text())
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and all(
                isinstance(k, ast.Constant) and isinstance(v, ast.Constant) for k, v in zip(node.value.keys,
                                                                                         node.value.values)):
            out.update({k.value: v.value for k, v in zip(node.value.keys, node.value.values)})
    return out


@pytest.mark.parametrize("package", [f"discern.{n}" for n in PAPERS] + ["discern.tasks", "discern.metrics"])
def test_a_lazy_public_name_is_never_shadowed_by_its_submodule(package):
    # importing discern.x.pretrain binds the attribute discern.x.pretrain to the module, so a lazy
    # name equal to its module's name would give users the module, not the function
    mod = importlib.import_module(package)
    table = _lazy_tables(package)
    assert [n for n, m in table.items() if n == m] == []
    for name, module in table.items():
        importlib.import_module(f"{package}.{module}")
        assert not isinstance(getattr(mod, name), type(importlib)), f"{package}.{name} is a module"
