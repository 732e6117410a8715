"""The data preflight of ``discern reproduce``: each paper names the registry entries it reads, a
missing one stops the run in its first seconds with one line, and ``--skip-missing`` runs the rest."""

import json
import subprocess
import urllib.request
from collections.abc import Mapping
from dataclasses import replace

import pytest

from discern.cli import main
from discern.core import Claim, DiscernError, Paper, Result
from discern.data import registry as data_registry
from discern.data.models import registry_models
from discern.reproduce import registry, reproduce
from discern.reproduce.preflight import fetch_command, missing_by_paper, missing_data

# What each reproduction reads from the data registry, read off its config.py and experiment.py:
# the quick preset (and the larger ones), and the tiny preset where it differs.
QUICK = {
    "electra": ("brown", "sotu", "moby-dick", "spam-assassin"),  # pre-training corpora + the 4 tasks
    "electric": ("austen", "brown", "sotu", "pocketsphinx-testdata"),  # corpora + LibriVox utterances
    "bam": ("brown", "spam-assassin", "sotu"),  # the 4 tasks (MiniLM comes from a wheel)
    "attention": ("ud-english-ewt", "gap-coreference", "glove-6b-50d"),  # MiniLM from a wheel
    "fwl": ("wikitext-2", "moby-dick"),  # SmolLM2 from a wheel
    "diffusion_classifier": ("fashion-mnist",),
    "psychophysics": (),  # drawn shape x texture images
    "draft": ("fashion-mnist",),
    "nureality": (),  # simulated pedestrians
}
TINY = {
    "electra": ("brown", "spam-assassin", "sotu"),
    "electric": ("brown", "pocketsphinx-testdata"),
    "bam": ("spam-assassin", "sotu"),
    "fwl": ("wikitext-2", "moby-dick", "gpt2-bpe"),  # the scratch model's GPT-2 BPE
}
# every entry the quick presets of those nine papers name, in paper order
QUICK_FETCH = ("discern data fetch brown sotu moby-dick spam-assassin austen pocketsphinx-testdata ud-english-ewt "
               "gap-coreference glove-6b-50d wikitext-2 fashion-mnist")


def _install_marker(root, name: str) -> None:
    """What ``registry.is_installed`` looks at: the manifest a fetch writes last."""
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / data_registry.MANIFEST).write_text("{}")


@pytest.fixture
def real_papers(tmp_path, monkeypatch):
    """The real registry of papers, an empty data root and a fresh runs folder."""
    registry._registry.cache_clear()
    monkeypatch.setenv("DISCERN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    yield tmp_path
    registry._registry.cache_clear()


def test_an_empty_data_root_stops_the_quick_reproduction_at_once(real_papers, monkeypatch, capsys):
    def forbidden(*args, **kwargs):
        raise AssertionError("the preflight must not download or start a process")

    for mod, attr in ((urllib.request, "urlopen"), (subprocess, "run"), (subprocess, "Popen")):
        monkeypatch.setattr(mod, attr, forbidden)
    lines = []
    with pytest.raises(DiscernError) as e:  # no download, no process, no experiment (forbidden above)
        reproduce(preset="quick", report_dir=str(real_papers / "report"), echo=lines.append)
    msg = str(e.value)
    needs = {p.name: p.data_for("quick") for p in registry.papers()}
    assert {k: v for k, v in needs.items() if k in QUICK} == QUICK
    missing = {k: v for k, v in needs.items() if v}
    names = QUICK_FETCH.split()[3:]
    names += [n for n in needs["medqa"] if n not in names]
    command = "discern data fetch " + " ".join(names)
    per_paper = "; ".join(f"{k.replace('_', '-')}: {', '.join(v)}" for k, v in missing.items())  # the CLI's spelling
    assert "\n" not in msg
    assert msg.startswith(f"data missing for {len(missing)} of 10 papers (quick preset) -- {per_paper}; "
                          f"install them with: {command} (offline, add --from DIR to take ud-english-ewt, gap-coreference, ")
    assert msg.endswith(f"; or add --skip-missing to run the other {10 - len(missing)}")
    assert missing_data(registry.papers(), "quick") == names
    # nothing ran, nothing was written, nothing was fetched
    assert lines == []
    assert not (real_papers / "report").exists() and not (real_papers / "runs").exists()
    assert not (real_papers / "data").exists()
    # the command line prints the same line and exits 2
    assert main(["reproduce", "--preset", "quick", "--report", str(real_papers / "report")]) == 2
    assert capsys.readouterr().err == f"error: {msg}\n"


@pytest.mark.parametrize("name", registry.names())
def test_each_paper_names_real_registry_entries(name):
    paper = registry.get(name)
    presets = paper.presets_dict()
    if isinstance(paper.data, Mapping):
        assert set(paper.data) <= set(presets) | {"*"}, f"{name}: data names an unknown preset"
    known = set(data_registry.REGISTRY) | set(registry_models())
    for preset in presets:
        names = paper.data_for(preset)
        assert isinstance(names, tuple) and len(set(names)) == len(names)
        assert set(names) <= known, f"{name} ({preset}): {sorted(set(names) - known)} are not registry entries"
    if name in QUICK:
        assert paper.data_for("quick") == QUICK[name]
        assert paper.data_for("tiny") == TINY.get(name, QUICK[name])


def test_data_for_reads_a_tuple_or_a_mapping():
    every = Paper("x", title="X", package="x", number=1, data=("brown",))
    assert every.data_for("tiny") == every.data_for("paper") == ("brown",)
    per = Paper("x", title="X", package="x", number=1, data={"tiny": ("sotu",), "*": ("brown", "austen")})
    assert per.data_for("tiny") == ("sotu",) and per.data_for("quick") == per.data_for("paper") == ("brown", "austen")
    assert Paper("x", title="X", package="x", number=1, data={"tiny": ("sotu",)}).data_for("quick") == ()
    assert Paper("x", title="X", package="x", number=1).data_for("quick") == ()
    hash(per)  # a descriptor stays hashable with a mapping
    assert fetch_command(["a", "b", "a"]) == "discern data fetch a b"


def test_the_message_names_each_paper_s_missing_entries(fake_papers, monkeypatch):
    fakes = {p.name: p for p in registry.papers()}
    fakes["pa"] = replace(fakes["pa"], data=("brown", "sotu"))
    fakes["pb"] = replace(fakes["pb"], data={"tiny": ("ud-english-ewt", "brown"), "*": ("sotu",)})
    monkeypatch.setattr(registry, "_registry", lambda: fakes)
    root = fake_papers / "data"
    monkeypatch.setenv("DISCERN_DATA", str(root))
    _install_marker(root, "sotu")
    out = fake_papers / "report"
    with pytest.raises(DiscernError) as e:
        reproduce(preset="tiny", report_dir=str(out), echo=lambda m: None)
    assert str(e.value) == (
        "data missing for 2 of 3 papers (tiny preset) -- pa: brown; pb: ud-english-ewt, brown; install them with: "
        "discern data fetch brown ud-english-ewt (offline, add --from DIR to take ud-english-ewt from a folder of local "
        "copies); or add --skip-missing to run the other 1")
    assert not out.exists() and not (fake_papers / "runs").exists()
    assert missing_by_paper(registry.papers(), "tiny") == {"pa": ["brown"], "pb": ["ud-english-ewt", "brown"]}
    assert missing_data(registry.papers(), "tiny") == ["brown", "ud-english-ewt"]
    assert missing_data(registry.papers(), "quick") == ["brown"]
    # the failing pb is skipped, so the run succeeds; pc (no data) and nothing else runs with pa
    lines = []
    assert reproduce(preset="tiny", report_dir=str(out), echo=lines.append, skip_missing=True) == out / "index.html"
    rows = {r["paper"]: r for r in json.loads((out / "results.json").read_text())}
    assert {k: r["status"] for k, r in rows.items()} == {"pa": "skipped", "pb": "skipped", "pc": "ok"}
    assert rows["pa"]["error"] == "data missing: brown (install: discern data fetch brown)"
    pb = "data missing: ud-english-ewt, brown (install: discern data fetch ud-english-ewt brown)"
    assert rows["pb"]["error"] == pb
    assert lines[:2] == ["skip pa: data missing: brown (install: discern data fetch brown)", f"skip pb: {pb}"]
    assert lines[2].startswith("[1/1] pc (tiny): elapsed")
    assert lines[-1] == "skipped 2 of 3 papers for missing data: pa, pb (see the report)"


def test_skip_missing_runs_only_the_papers_whose_data_is_installed(real_papers, monkeypatch, capsys):
    root = real_papers / "data"
    declared = dict.fromkeys(n for p in registry.papers() for n in p.data_for("quick"))
    for name in declared:
        if name not in ("moby-dick", "pocketsphinx-testdata"):
            _install_marker(root, name)
    ran = []
    real_load = Paper.load

    def load(self, target):
        if target != self.run:
            return real_load(self, target)

        def light(cfg, run):
            ran.append(self.name)
            return Result(paper=self.name, title=self.title, claims=[
                Claim(statement="s", paper="p", ours="o", test="t", verdict="self-test")])
        return light

    monkeypatch.setattr(Paper, "load", load)
    out = real_papers / "report"
    assert main(["reproduce", "--preset", "quick", "--report", str(out)]) == 2
    assert capsys.readouterr().err == (
        "error: data missing for 3 of 10 papers (quick preset) -- electra: moby-dick; electric: pocketsphinx-testdata; "
        "fwl: moby-dick; install them with: discern data fetch moby-dick pocketsphinx-testdata; or add --skip-missing "
        "to run the other 7\n")
    assert ran == [] and not out.exists()

    assert main(["reproduce", "--preset", "quick", "--skip-missing", "--report", str(out)]) == 0
    runnable = ["bam", "attention", "diffusion_classifier", "psychophysics", "draft", "medqa", "nureality"]
    assert ran == runnable
    rows = {r["paper"]: r for r in json.loads((out / "results.json").read_text())}
    assert list(rows) == registry.names()
    assert {k for k, r in rows.items() if r["status"] == "skipped"} == {"electra", "electric", "fwl"}
    assert {k for k, r in rows.items() if r["status"] == "ok"} == set(runnable)
    moby = "data missing: moby-dick (install: discern data fetch moby-dick)"
    assert rows["electra"]["error"] == rows["fwl"]["error"] == moby
    assert rows["electric"]["error"] == ("data missing: pocketsphinx-testdata "
                                         "(install: discern data fetch pocketsphinx-testdata)")
    assert rows["electra"]["meta"]["preset"] == "quick" and rows["electra"]["run"] == ""
    page = (out / "index.html").read_text()
    assert "3 experiment(s) skipped" in page and "experiment(s) failed" not in page
    assert page.count("this experiment was skipped: data missing:") == 3
    assert "this experiment was skipped: data missing: pocketsphinx-testdata (install: discern data fetch " in page
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[:3] == ["skip electra: data missing: moby-dick (install: discern data fetch moby-dick)",
                       "skip electric: data missing: pocketsphinx-testdata "
                       "(install: discern data fetch pocketsphinx-testdata)",
                       "skip fwl: data missing: moby-dick (install: discern data fetch moby-dick)"]
    assert err[3].startswith("[1/7] bam (quick): elapsed")
    assert err[-1] == "skipped 3 of 10 papers for missing data: electra, electric, fwl (see the report)"
    assert captured.out == f"report: {out / 'index.html'}\n"
