"""The OpenAI-compatible client against a real ``discern llm serve`` app on 127.0.0.1."""

import pytest

from discern.core.errors import DiscernError
from discern.llm.client import OpenAIClient
from discern.llm.generation import GenParams


class _Echo:
    """completion = prompt | sample index | seed; ``ignore_n`` returns one choice like some servers."""

    name = "echo"

    def __init__(self, ignore_n=False):
        self.ignore_n, self.calls = ignore_n, []

    def generate(self, prompts, n, params):
        self.calls.append((list(prompts), n, params))
        k = 1 if self.ignore_n else n
        return [[f"{p}|{j}|{params.seed}" for j in range(k)] for p in prompts]


def test_client_gets_n_completions_per_prompt_from_the_server(serve):
    be = _Echo()
    client = OpenAIClient(serve(be), "echo", max_concurrency=2)
    params = GenParams(temperature=0.7, max_tokens=5, stop=("\n",), seed=4)
    out = client.generate(["a", "b", "c"], 3, params)
    assert out == [[f"{p}|{j}|4" for j in range(3)] for p in "abc"]
    sent = sorted(c[0][0] for c in be.calls)
    assert sent == ["a", "b", "c"] and all(c[1] == 3 and c[2] == params for c in be.calls)


def test_client_emulates_n_when_the_server_ignores_it(serve):
    client = OpenAIClient(serve(_Echo(ignore_n=True)), "echo")
    out = client.generate(["q"], 3, GenParams(seed=10))
    assert out == [["q|0|10", "q|0|11", "q|0|12"]]  # one choice per request, distinct seeds
    assert client.requests == 3


def test_client_retries_with_backoff_and_gives_up_clearly(serve):
    client = OpenAIClient(serve(_Echo(), fail_first=2), "echo", retries=3, backoff=0.01)
    assert client.generate(["q"], 1, GenParams()) == [["q|0|0"]]
    assert client.requests == 3  # two 503s, then success
    down = OpenAIClient(serve(_Echo(), fail_first=10), "echo", retries=1, backoff=0.01)
    with pytest.raises(DiscernError, match="failed after 2 attempts"):
        down.generate(["q"], 1, GenParams())


def test_chat_endpoint(serve):
    be = _Echo()
    client = OpenAIClient(serve(be), "echo", chat=True)
    out = client.generate(["hello"], 2, GenParams(seed=1))
    assert out == [["user: hello\nassistant:|0|1", "user: hello\nassistant:|1|1"]]
