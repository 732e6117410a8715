import pytest


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    """The tiny preset of this paper run through its descriptor (presets and run target, as
    ``discern reproduce`` loads them); returns the run folder."""
    from discern.core import Run, build_config
    from discern.reproduce.registry import get

    paper = get("psychophysics")
    root = tmp_path_factory.mktemp("runs")
    cfg = build_config(paper.presets_dict(), "tiny")
    run = Run.create(paper.name, "reproduce-tiny", cfg, root=root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISCERN_RUNS", str(root))
        mp.setenv("DISCERN_QUIET", "1")
        paper.load(paper.run)(cfg, run)
    return run.path
