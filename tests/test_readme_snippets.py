"""Every ```python block of the READMEs runs as written.

Each block is executed in-process (``exec``) in a fresh namespace, with a fresh temporary folder as the
working directory; one test case per block, named ``<README path>:block<k>`` (k counts the README's
```python blocks from 1).  A block passes when it runs without an exception; the snippets end with
``assert`` lines that state what a reader should see, so they are checks, not only smoke.

A block may be preceded, on the line just before its fence, by an HTML comment (invisible when the
README is rendered) whose Python runs first in the same namespace, e.g. to make a small input::

    <!-- setup: open("notes.txt", "w").write("he said so") -->
    ```python
    ...
    ```

A setup that makes a saved artifact (a fine-tuned model, a pipeline folder) calls a helper of
``tests/readme_setup.py`` (importable as ``readme_setup``), which writes in seconds, with the library's own
functions on a small model, the folder the README's command would write; the visible code uses only the
library's public API.

Tracebacks point at the README's own lines (the code is compiled under the README's path with its
line numbers).  Each block should run in under about 30 s on one CPU thread.

Every README with a ```python block is listed in ``SNIPPET_READMES``: the top-level one and those of the
ten paper packages and of the shared ``tasks`` and ``diffusion`` layers.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(Path(__file__).parent) not in sys.path:  # setup comments import readme_setup (tests/readme_setup.py)
    sys.path.insert(0, str(Path(__file__).parent))

# READMEs whose ```python blocks are executed (paths relative to the repository root)
SNIPPET_READMES = (
    "README.md",
    "src/discern/tasks/README.md",
    "src/discern/diffusion/README.md",
    "src/discern/electra/README.md",
    "src/discern/electric/README.md",
    "src/discern/bam/README.md",
    "src/discern/attention/README.md",
    "src/discern/fwl/README.md",
    "src/discern/diffusion_classifier/README.md",
    "src/discern/psychophysics/README.md",
    "src/discern/draft/README.md",
    "src/discern/medqa/README.md",
    "src/discern/nureality/README.md",
)

_SETUP = re.compile(r"<!--\s*setup:(.*?)-->\s*\Z", re.S)


@dataclass
class Snippet:
    readme: str  # path relative to the repository root
    index: int  # 1-based among the README's ```python blocks
    line: int  # 1-based line of the first code line
    code: str
    setup: str | None = None
    setup_line: int = 0  # 1-based line where the setup comment starts

    @property
    def id(self) -> str:
        return f"{self.readme}:block{self.index}"


def python_blocks(readme: str) -> list[Snippet]:
    """The ```python blocks of one README, each with its setup comment (if any)."""
    lines = (ROOT / readme).read_text(encoding="utf-8").splitlines()
    out: list[Snippet] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```python":
            i += 1
            continue
        start = i + 1
        end = next((j for j in range(start, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{readme}:{i + 1}: ```python block is never closed")
        snippet = Snippet(readme, len(out) + 1, start + 1, "\n".join(lines[start:end]) + "\n")
        # a setup comment ends on the line just before the fence (it may start a few lines above)
        if i > 0 and lines[i - 1].rstrip().endswith("-->"):
            first = i - 1
            while first > 0 and "<!--" not in lines[first]:
                first -= 1
            m = _SETUP.search("\n".join(lines[first:i]))
            if m:
                snippet.setup, snippet.setup_line = m.group(1).strip() + "\n", first + 1
        out.append(snippet)
        i = end + 1
    return out


def _collect() -> list[Snippet]:
    return [s for readme in SNIPPET_READMES for s in python_blocks(readme)]


SNIPPETS = _collect()


def _run(code: str, filename: str, first_line: int, namespace: dict) -> None:
    # pad with newlines so that tracebacks show the README's line numbers and text
    exec(compile("\n" * (first_line - 1) + code, filename, "exec"), namespace)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_readme_snippet_runs(snippet: Snippet, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DISCERN_QUIET", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__readme__"}
    filename = str(ROOT / snippet.readme)
    if snippet.setup:
        _run(snippet.setup, filename, snippet.setup_line, namespace)
    _run(snippet.code, filename, snippet.line, namespace)


@pytest.mark.parametrize("readme", SNIPPET_READMES)
def test_each_listed_readme_shows_python_use(readme):
    """Every listed README has a "Use it from Python" section with at least one runnable block."""
    text = (ROOT / readme).read_text(encoding="utf-8")
    assert "\n## Use it from Python\n" in text, f"{readme}: no '## Use it from Python' section"
    assert python_blocks(readme), f"{readme}: no ```python block"


def test_setup_comments_are_found(tmp_path, monkeypatch):
    """The parser: a setup comment on the line before the fence belongs to that block, not to others."""
    readme = tmp_path / "README.md"
    readme.write_text("text\n<!-- setup: x = 2 -->\n```python\nassert x == 2\n```\n\n```python\ny = 1\n```\n"
                      "<!-- setup: a = 1\nb = a + 1 -->\n```python\nassert b == 2\n```\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    blocks = python_blocks("README.md")
    assert [(b.index, b.line, b.setup) for b in blocks] == [
        (1, 4, "x = 2\n"), (2, 8, None), (3, 13, "a = 1\nb = a + 1\n")]
    assert blocks[2].setup_line == 10
