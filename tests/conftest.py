import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _runs_outside_the_checkout(tmp_path_factory):
    """No test writes into the checkout's runs/ folder: the default runs root is a temporary one."""
    old = os.environ.get("DISCERN_RUNS")
    os.environ["DISCERN_RUNS"] = str(tmp_path_factory.mktemp("default-runs"))
    yield
    if old is None:
        os.environ.pop("DISCERN_RUNS", None)
    else:
        os.environ["DISCERN_RUNS"] = old


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
                mp.setenv("DISCERN_QUIET", "1")
                assert main(["reproduce", "--only", name, "--preset", "tiny"]) == 0
            (done[name],) = [p for p in (root / name).iterdir() if p.is_dir() and not p.name.endswith("-cache")]
        return done[name]

    return run


@pytest.fixture
def quick_result(tmp_path, monkeypatch):
    """``quick_result(NAME)``: the ``results.json`` entry of ``discern reproduce --only NAME
    --preset quick`` run into a fresh runs folder (for the slow tests)."""
    import json

    from discern.cli import main

    def run(name: str) -> dict:
        monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
        assert main(["reproduce", "--only", name, "--preset", "quick", "--report", str(tmp_path / "r")]) == 0
        (res,) = json.loads((tmp_path / "r" / "results.json").read_text())
        return res

    return run


@pytest.fixture
def serve():
    from discern.core.serving import LocalServer

    servers = []

    def start(backend, fail_first=0):
        from discern.llm.server import make_app

        app = make_app(backend)
        state = {"left": fail_first}

        @app.middleware("http")
        async def flaky(request, call_next):
            from fastapi.responses import JSONResponse

            if state["left"] > 0:
                state["left"] -= 1
                return JSONResponse({"error": "busy"}, status_code=503)
            return await call_next(request)

        servers.append(LocalServer(app))
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def random_image_folder():
    """``random_image_folder(folder)`` writes 3 random 20 x 20 grey PNGs per class (circle, square) and
    returns ``folder``: an image-folder dataset for the diffusion commands."""
    def write(folder):
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        for name in ("circle", "square"):
            (folder / name).mkdir(parents=True)
            for k in range(3):
                Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / name / f"{k}.png")
        return folder

    return write
