import pytest


@pytest.fixture(scope="module")
def tiny_result(tiny_reproduction):
    """The tiny preset of this paper through ``discern reproduce`` (run once per test session and
    shared with the conformance test); returns the run folder."""
    return tiny_reproduction("diffusion_classifier")
