import pytest


@pytest.fixture(scope="session")
def tiny_reproduction(tmp_path_factory):
    """``tiny_reproduction(NAME)`` runs ``discern reproduce --only NAME --preset tiny`` once per session
    into a fresh runs folder and returns the run folder."""
    from discern.cli import main

    done = {}

    def run(name: str):
        if name not in done:
            root = tmp_path_factory.mktemp("runs")
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("DISCERN_RUNS", str(root))
                assert main(["reproduce", "--only", name, "--preset", "tiny"]) == 0
            (done[name],) = [p for p in (root / name).iterdir() if p.is_dir() and not p.name.endswith("-cache")]
        return done[name]

    return run
