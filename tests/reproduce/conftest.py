"""Fixtures of the ``discern reproduce`` tests: fake paper packages in place of the real registry."""

import sys
import textwrap

import pytest

from discern.core import Paper
from discern.reproduce import registry

EXPERIMENT = '''
from discern.core import Claim, Result


def run(cfg, run):
    if cfg.fail:
        raise RuntimeError("boom <b>&")
    run.save_config(cfg)
    c = Claim(statement="A <beats> B", paper="1", ours="2", test="paired bootstrap", ci=(0.1, 0.3),
              p_value=0.01, verdict="held")
    return Result(paper=cfg.name, title=cfg.name.upper(), claims=[c], details={"x": 1})
'''


@pytest.fixture
def fake_papers(tmp_path, monkeypatch):
    """Three fake paper packages (the second fails) in place of the real registry."""
    for name, fail in (("pa", False), ("pb", True), ("pc", False)):
        pkg = tmp_path / "pkgs" / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "config.py").write_text(textwrap.dedent(f'''
            from dataclasses import dataclass

            @dataclass
            class Config:
                name: str = "{name}"
                fail: bool = {fail}
                seed: int = 0

            PRESETS = {{"tiny": Config, "quick": Config}}
            '''))
        (pkg / "experiment.py").write_text(EXPERIMENT)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    fakes = {n: Paper(n, title=f"Paper {n}", package=n, number=i, cli=None, bench=None)
             for i, n in enumerate(("pa", "pb", "pc"), 1)}
    monkeypatch.setattr(registry, "_registry", lambda: fakes)
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    yield tmp_path
    for n in ("pa", "pb", "pc"):
        for m in (n, f"{n}.config", f"{n}.experiment"):
            sys.modules.pop(m, None)
