"""The layer rule of DESIGN.md: imports point down only; paper packages never import each other."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "discern"

LAYERS = {
    "core": 0,
    "data": 1, "metrics": 1, "nn": 1, "diffusion": 1, "llm": 1,
    "train": 2, "tasks": 2,
    "electra": 3, "electric": 3, "bam": 3, "attention": 3, "fwl": 3, "diffusion_classifier": 3,
    "psychophysics": 3, "draft": 3, "medqa": 3, "nureality": 3,
    "reproduce": 4, "cli": 4, "__main__": 4, "__init__": 4,
}


def package_of(path: Path, src: Path) -> str:
    rel = path.relative_to(src)
    return rel.parts[0].removesuffix(".py")


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:
            raise AssertionError(f"{path}: use absolute imports across packages (from {'.' * node.level}{node.module})")
        else:
            continue
        for n in names:
            parts = n.split(".")
            if parts[0] == "discern" and len(parts) > 1:
                out.add(parts[1])
    return out


def violations(root: Path = SRC) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        src = package_of(path, root)
        assert src in LAYERS, f"{path}: package '{src}' has no layer in DESIGN.md; add it to LAYERS"
        for dst in imported_packages(path):
            if dst == src:
                continue
            assert dst in LAYERS, f"{path}: imports unknown package discern.{dst}"
            ls, ld = LAYERS[src], LAYERS[dst]
            ok = (ld < ls
                  or (ls == 1 and dst == "data")  # any L1 package may use data
                  or (src == "tasks" and dst == "train")  # fine-tuning runs on the one training loop
                  or ls == 4)  # L4 may import everything
            if not ok:
                bad.append(f"{path.relative_to(root)} (L{ls}) imports discern.{dst} (L{ld})")
    return bad


def test_imports_point_down_only():
    assert violations() == []


def test_checker_catches_a_violation(tmp_path):
    pkg = tmp_path / "discern"
    (pkg / "core").mkdir(parents=True)
    (pkg / "electra").mkdir()
    (pkg / "core" / "x.py").write_text("from discern.train import fit\n")
    (pkg / "electra" / "y.py").write_text("import discern.bam.model\n")
    assert violations(pkg) == ["core/x.py (L0) imports discern.train (L2)",
                               "electra/y.py (L3) imports discern.bam (L3)"]
