import pytest


@pytest.fixture(scope="module")
def tiny_result(tiny_reproduction):
    """The tiny preset of this paper through ``discern reproduce`` (run once per test session and
    shared with the conformance test); returns the run folder."""
    return tiny_reproduction("attention")


def _installed(name: str):
    """A registry model's folder; a missing asset fails the test with the install command (CI installs it)."""
    from discern.core import DataError
    from discern.data.models import model_path

    try:
        return model_path(name)
    except DataError as e:
        pytest.fail(f"{name} is required by these tests: {e}", pytrace=False)


@pytest.fixture(scope="session")
def mpnet_dir():
    return _installed("mpnet-base")


@pytest.fixture(scope="session")
def mpnet(mpnet_dir):
    """(model, tokenizer) of all-mpnet-base-v2, loaded once per session."""
    import torch

    from discern.attention.extract import load_encoder

    torch.manual_seed(0)
    return load_encoder(mpnet_dir)


@pytest.fixture(scope="session")
def glove():
    from discern.attention.glove import load_glove

    return load_glove(_installed("glove-6b-50d"))
