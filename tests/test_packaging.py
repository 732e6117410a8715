"""Packaging: each paper's extra (``pip install "discern[electra]"``) declares every third-party package
that the paper's code imports, directly or through the shared layers (found by walking the imports of
the source, lazy ones included); ``make setup`` installs from the constraints file, which pins every
package of the ``all`` and ``test`` extras."""

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "discern"
PAPERS = ["electra", "electric", "bam", "attention", "fwl", "diffusion_classifier", "psychophysics", "draft",
          "medqa", "nureality"]
# import name -> the distributions that provide it (a framework that ships it counts)
PROVIDED_BY = {"PIL": {"pillow"}, "sklearn": {"scikit-learn"}, "pydantic": {"pydantic", "fastapi"},
               "starlette": {"starlette", "fastapi"}, "yaml": {"pyyaml"}}
OPTIONAL = {"timm"}  # psychophysics reads timm folders only when timm is installed (one-line error otherwise)


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def _extras() -> tuple[set[str], dict[str, list[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in project["dependencies"]}, project["optional-dependencies"]


def resolve(extra: str, extras: dict[str, list[str]], seen=None) -> set[str]:
    """The distribution names an extra installs, following ``discern[a,b]`` self-references."""
    seen = seen if seen is not None else set()
    out = set()
    for req in extras[extra]:
        if (m := re.match(r"discern\[([^\]]+)\]", req)):
            for sub in m.group(1).split(","):
                if sub not in seen:
                    seen.add(sub)
                    out |= resolve(sub.strip(), extras, seen)
        else:
            out.add(_name(req))
    return out


def _modules() -> dict[str, Path]:
    out = {}
    for p in SRC.rglob("*.py"):
        parts = p.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def third_party_imports(paper: str) -> set[str]:
    """Top-level third-party modules imported by discern.<paper> and every discern module it reaches."""
    mods = _modules()
    todo = [m for m in mods if m == f"discern.{paper}" or m.startswith(f"discern.{paper}.")]
    seen, third = set(), set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        path = mods[m]
        pkg = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module
                names |= {mod} | {f"{mod}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and f"{pkg}.{node.value}" in mods:
                names.add(f"{pkg}.{node.value}")  # lazy_names targets: {"Name": "module"}
        for name in names:
            if name.startswith("discern"):
                todo += [k for k in (name, name.rsplit(".", 1)[0]) if k in mods and k not in seen]
            elif name.split(".")[0] not in sys.stdlib_module_names:
                third.add(name.split(".")[0])
    return third


@pytest.mark.parametrize("paper", PAPERS)
def test_each_papers_extra_declares_what_its_code_imports(paper):
    base, extras = _extras()
    extra = paper.replace("_", "-")
    declared = base | resolve(extra, extras)
    missing = sorted(m for m in third_party_imports(paper) - OPTIONAL
                     if not (PROVIDED_BY.get(m, {m.lower().replace("_", "-")}) & declared))
    assert missing == [], f"discern[{extra}] lacks {missing}"


def test_the_import_walk_finds_known_imports():
    # known answers: attention's syntax module imports spaCy, psychophysics reads pandas, medqa serves with fastapi
    assert {"spacy", "sklearn", "transformers"} <= third_party_imports("attention")
    assert {"pandas", "PIL", "diffusers"} <= third_party_imports("psychophysics")
    assert {"fastapi", "sqlalchemy", "uvicorn"} <= third_party_imports("medqa")
    assert "spacy" not in third_party_imports("electra")


def test_setup_installs_from_constraints_that_pin_every_declared_package():
    _, extras = _extras()
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), line
            pins[_name(name)] = version
    wanted = resolve("all", extras) | resolve("test", extras) | {_name(r) for r in _extras()[0]}
    wanted -= {"torch"}  # pinned by the Makefile's TORCH (its CPU build comes from its own index)
    assert sorted(wanted - set(pins)) == []
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"install .*-c constraints\.txt .*\.\[all,test\]", makefile)
    assert "torch" not in pins and re.search(r"^TORCH\s*:= \d+\.\d+\.\d+$", makefile, re.M)  # pinned once
