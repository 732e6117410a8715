"""``discern llm serve`` under hostile input, over real HTTP on 127.0.0.1: every invalid request is answered
with an exact 4xx status and an OpenAI-style error (never a 500) before the backend is called; bodies are
size-limited; an API key guards every /v1 route; the model is used by one request at a time, so a seed
reproduces its output under concurrency."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from discern.core.errors import DiscernError
from discern.core.serving import LocalServer
from discern.llm.client import OpenAIClient
from discern.llm.generation import GenParams, TransformersBackend
from discern.llm.server import make_app


class Counting:
    """Echoes ``prompt|sample|seed``; counts calls and the most calls ever in flight at once."""

    name = "counting"

    def __init__(self, delay: float = 0.0):
        self.delay, self.calls, self.params = delay, 0, []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def generate(self, prompts, n, params):
        with self._lock:
            self.calls += 1
            self.params.append(params)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            return [[f"{p}|{j}|{params.seed}" for j in range(n)] for p in prompts]
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def server():
    """``server(backend, **make_app_kwargs)`` -> base URL of a live server; all stop after the test."""
    live = []

    def start(backend, **kw):
        live.append(LocalServer(make_app(backend, **kw)))
        return live[-1].url

    yield start
    for s in live:
        s.stop()


@pytest.fixture
def http():
    with httpx.Client(timeout=30) as c:
        yield c


def assert_error(r, status, param=None, type="invalid_request_error", code=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    err = body["error"]
    assert isinstance(err["message"], str) and err["message"] and "\n" not in err["message"]
    assert (err["type"], err["param"], err["code"]) == (type, param, code), body


COMPLETION = {"model": "counting", "prompt": "hi"}
CHAT = {"model": "counting", "messages": [{"role": "user", "content": "hi"}]}
ROUTES = {"/v1/completions": COMPLETION, "/v1/chat/completions": CHAT}

# (field, value, param): each invalid for both POST routes; 422 naming ``param``
SAMPLING = [
    ("n", 0, "n"), ("n", -1, "n"), ("n", 17, "n"), ("n", 10**6, "n"), ("n", True, "n"), ("n", "2", "n"),
    ("n", 1.5, "n"), ("n", 2**63, "n"), ("n", [1], "n"),
    ("max_tokens", 0, "max_tokens"), ("max_tokens", 2049, "max_tokens"), ("max_tokens", 10**9, "max_tokens"),
    ("max_tokens", True, "max_tokens"), ("max_tokens", "16", "max_tokens"), ("max_tokens", 2**64, "max_tokens"),
    ("max_tokens", 16.0, "max_tokens"),
    ("temperature", -0.1, "temperature"), ("temperature", 2.5, "temperature"), ("temperature", "hot", "temperature"),
    ("temperature", True, "temperature"), ("temperature", 1e308 * 10, "temperature"),
    ("top_p", 0, "top_p"), ("top_p", 1.5, "top_p"), ("top_p", -1, "top_p"), ("top_p", False, "top_p"),
    ("seed", -1, "seed"), ("seed", 2**63, "seed"), ("seed", 2**70, "seed"), ("seed", True, "seed"),
    ("seed", 1.5, "seed"), ("seed", "1", "seed"),
    ("stop", ["a", "b", "c", "d", "e"], "stop"), ("stop", "x" * 101, "stop.0"), ("stop", ["ok", "y" * 101], "stop.1"),
    ("stop", [1], "stop.0"), ("stop", 5, "stop"), ("stop", {"a": 1}, "stop"),
    ("stream", "yes", "stream"), ("stream", 1, "stream"), ("stream_options", "usage", "stream_options"),
    ("stream_options", {"include_usage": "yes"}, "stream_options.include_usage"), ("model", 5, "model"), ("model", "m" * 300, "model"),
]
COMPLETION_ONLY = [
    ({"model": "m"}, "prompt"), ({"prompt": None}, "prompt"), ({"prompt": []}, "prompt"), ({"prompt": ""}, "prompt.0"),
    ({"prompt": ["a"] * 65}, "prompt"), ({"prompt": ["a"] * 5000}, "prompt"), ({"prompt": "x" * 32769}, "prompt.0"),
    ({"prompt": 5}, "prompt"), ({"prompt": [1.5, 2]}, "prompt.0"), ({"prompt": [["a"]]}, "prompt.0"),
    ({"prompt": [-1, 2]}, "prompt.0"), ({"prompt": [[1], [2**31]]}, "prompt.1"), ({"prompt": [[]]}, "prompt.0"),
    ({"prompt": [1, True]}, "prompt.0"), ({"prompt": "a", "logprobs": 6}, "logprobs"),
    ({"prompt": "a", "logprobs": True}, "logprobs"), ({"prompt": "a", "logprobs": -1}, "logprobs"),
    ({"prompt": "a", "echo": "yes"}, "echo"), ({"prompt": "a", "max_tokens": 0, "echo": False}, "max_tokens"),
    ({"prompt": ["a", None]}, "prompt.1"), ({"prompt": True}, "prompt"), ({"prompt": {"text": "a"}}, "prompt"),
]
CHAT_ONLY = [
    ({"model": "m"}, "messages"), ({"messages": []}, "messages"), ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user"}]}, "messages.0.content"),
    ({"messages": [{"content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": None}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}, "messages.0.content"),
    ({"messages": [{"role": True, "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": "x" * 32769}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": "x"}] * 257}, "messages"),
    ({"messages": ["hi"]}, "messages.0"),
    ({**CHAT, "max_completion_tokens": 0}, "max_completion_tokens"),
    ({**CHAT, "max_completion_tokens": 10**9}, "max_completion_tokens"),
    ({**CHAT, "logprobs": 1}, "logprobs"), ({**CHAT, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({**CHAT, "top_logprobs": 2}, "top_logprobs"), ({**CHAT, "logprobs": True, "top_logprobs": -1}, "top_logprobs"),
]
CASES = ([(route, {**base, f: v}, p, json.dumps(v)[:24]) for route, base in ROUTES.items() for f, v, p in SAMPLING]
         + [("/v1/completions", body, p, json.dumps(body)[:40]) for body, p in COMPLETION_ONLY]
         + [("/v1/chat/completions", body, p, json.dumps(body)[-40:]) for body, p in CHAT_ONLY])


def _id(case):
    route, _, param, value = case
    return f"{route.rsplit('/', 1)[-1]}-{param}-{value}"


@pytest.fixture(scope="module")
def shared():
    """One live server for the table-driven cases (its backend must never be called)."""
    be = Counting()
    srv = LocalServer(make_app(be))
    with httpx.Client(timeout=30) as c:
        yield srv.url, be, c
    srv.stop()


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_invalid_values_are_422_and_never_reach_the_backend(shared, case):
    url, be, http = shared
    route, body, param, _ = case
    r = http.post(url + route, content=json.dumps(body, allow_nan=True), headers={"content-type": "application/json"})
    assert_error(r, 422, param)
    assert be.calls == 0


RAW = [  # (raw body, status, param)
    (b"{", 400, None), (b"", 400, None), (b"not json", 400, None), (b"{'prompt': 'a'}", 400, None),
    (b"\xff\xfe\x00", 400, None), (b"[" * 100_000, 400, None), (b'{"prompt": "\\ud800"}', 400, None),
    (b"[]", 422, None), (b'"hi"', 422, None), (b"null", 422, None), (b"42", 422, None),
    (b'{"prompt": "a", "messages": [{"role": "user", "content": "a"}], "temperature": NaN}', 422, "temperature"),
    (b'{"prompt": "a", "messages": [{"role": "user", "content": "a"}], "top_p": Infinity}', 422, "top_p"),
]


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("raw,status,param", RAW, ids=[f"{r[:12]!r}" for r, _, _ in RAW])
def test_malformed_bodies(shared, route, raw, status, param):
    url, be, http = shared
    for content_type in ("application/json", "text/plain", None):
        headers = {"content-type": content_type} if content_type else {}
        assert_error(http.post(url + route, content=raw, headers=headers), status, param)
    assert be.calls == 0


def test_errors_do_not_echo_the_input(shared):
    url, be, http = shared
    for route, base in ROUTES.items():
        r = http.post(url + route, json={**base, "n": "<script>alert(1)</script>"})
        assert_error(r, 422, "n")
        assert "<script>" not in r.text
    assert be.calls == 0


def test_unknown_routes_and_methods_answer_in_openai_style(shared):
    url, be, http = shared
    assert_error(http.get(url + "/v1/nope"), 404)
    assert_error(http.post(url + "/v1/engines/x/completions", json=COMPLETION), 404)
    r = http.get(url + "/v1/completions")
    assert_error(r, 405)
    assert be.calls == 0


def test_valid_requests_ignore_unknown_fields_and_keep_html_as_plain_text(server, http):
    be = Counting()
    url = server(be)
    script = "<script>alert('x')</script><img src=x onerror=alert(1)> &amp; \u202e \x00"
    extras = {"frequency_penalty": 0.5, "presence_penalty": 0, "logit_bias": {"1": 2}, "user": "u", "echo": False,
              "logprobs": None, "response_format": {"type": "text"}, "stream": False, "suffix": None}
    r = http.post(url + "/v1/completions", json={"prompt": [script, "b"], "n": 2, "max_tokens": 2048, "seed": 2**63 - 1,
                                                 "temperature": 0, "top_p": 1, "stop": "\n", **extras})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    texts = [c["text"] for c in r.json()["choices"]]
    assert texts == [f"{script}|0|{2**63 - 1}", f"{script}|1|{2**63 - 1}", f"b|0|{2**63 - 1}", f"b|1|{2**63 - 1}"]
    assert be.params[-1] == GenParams(temperature=0.0, max_tokens=2048, top_p=1.0, stop=("\n",), seed=2**63 - 1)
    r = http.post(url + "/v1/chat/completions", json={"messages": [{"role": "system", "content": script, "name": "x"},
                                                                   {"role": "user", "content": "q"}],
                                                      "max_completion_tokens": 7, "seed": None, **extras})
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == f"system: {script}\nuser: q\nassistant:|0|0"
    assert be.params[-1] == GenParams(temperature=1.0, max_tokens=7, top_p=1.0, stop=(), seed=0)
    assert be.calls == 2


def test_limits_are_configurable(server, http):
    be = Counting()
    url = server(be, max_tokens_limit=100, max_n=2)
    assert http.post(url + "/v1/completions", json={"prompt": "a", "max_tokens": 100, "n": 2}).status_code == 200
    assert_error(http.post(url + "/v1/completions", json={"prompt": "a", "max_tokens": 101}), 422, "max_tokens")
    assert_error(http.post(url + "/v1/chat/completions", json={**CHAT, "n": 3}), 422, "n")
    assert be.calls == 1


def test_oversized_bodies_are_413_before_parsing(server, http):
    be = Counting()
    url = server(be, max_body_bytes=1 << 20)
    big = json.dumps({"prompt": "a", "pad": "x" * (1 << 20)}).encode()
    for route in ROUTES:
        r = http.post(url + route, content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413  # Content-Length says so: refused before a byte is read
        assert r.json() == {"error": {"message": f"request body too large: at most {1 << 20} bytes",
                                      "type": "invalid_request_error", "param": None, "code": None}}

        def chunks():
            for i in range(0, len(big), 64 << 10):
                yield big[i:i + (64 << 10)]

        r = http.post(url + route, content=chunks(), headers={"content-type": "application/json"})
        assert r.request.headers.get("transfer-encoding") == "chunked" and r.status_code == 413
    assert be.calls == 0
    assert http.post(url + "/v1/completions", json={"prompt": "a" * 30_000}).status_code == 200


@pytest.fixture
def keyed(server):
    be = Counting()
    return server(be, api_key="s3cret-key"), be


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Bearer s3cret-ke", "Bearer s3cret-keyy", "Basic s3cret-key",
                                  "s3cret-key", "Bearer", "bearer  s3cret-key x", "Bearer s3cr\u00e9t"])
def test_api_key_is_required_on_every_v1_route(keyed, http, auth):
    url, be = keyed
    headers = {"authorization": auth.encode("utf-8")} if auth else {}
    requests = [("GET", "/v1/models", None), ("POST", "/v1/completions", COMPLETION),
                ("POST", "/v1/chat/completions", CHAT), ("GET", "/v1/unknown", None),
                ("POST", "/v1/completions", {"n": True})]  # no validation before authentication
    for method, path, body in requests:
        r = http.request(method, url + path, json=body, headers=headers)
        assert_error(r, 401, code="invalid_api_key")
        assert r.headers["www-authenticate"] == "Bearer"
    assert be.calls == 0


def test_api_key_accepted_and_compared_in_constant_time(keyed, http, monkeypatch):
    import discern.llm.server as server_module

    url, be = keyed
    compared = []
    real = server_module.hmac.compare_digest
    monkeypatch.setattr(server_module.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    ok = {"authorization": "Bearer s3cret-key"}
    assert http.get(url + "/v1/models", headers=ok).status_code == 200
    assert http.post(url + "/v1/completions", json=COMPLETION, headers=ok).status_code == 200
    assert_error(http.post(url + "/v1/completions", json={"n": True}, headers=ok), 422, "n")
    assert len(compared) == 3 and be.calls == 1
    assert OpenAIClient(url, "counting", api_key="s3cret-key").generate(["q"], 1, GenParams(seed=3)) == [["q|0|3"]]
    with pytest.raises(DiscernError, match="401"):
        OpenAIClient(url, "counting", retries=0).generate(["q"], 1, GenParams())


def test_no_api_key_means_no_auth(server, http):
    url = server(Counting())
    assert http.get(url + "/v1/models").status_code == 200
    assert http.get(url + "/v1/models", headers={"authorization": "Bearer anything"}).status_code == 200


def test_backend_calls_never_overlap(server):
    be = Counting(delay=0.05)
    url = server(be)
    with ThreadPoolExecutor(8) as pool, httpx.Client(timeout=60) as http:
        replies = list(pool.map(lambda i: http.post(url + "/v1/completions", json={"prompt": str(i), "seed": i}),
                                range(8)))
    codes = [r.status_code for r in replies]
    assert codes == [200] * 8 and be.calls == 8 and be.max_in_flight == 1


def test_event_loop_answers_while_a_generation_runs(server):
    entered, release = threading.Event(), threading.Event()

    class Blocking(Counting):
        def generate(self, prompts, n, params):
            entered.set()
            assert release.wait(30)
            return super().generate(prompts, n, params)

    url = server(Blocking(), max_queue=1)
    with ThreadPoolExecutor(1) as pool, httpx.Client(timeout=30) as http:
        pending = pool.submit(http.post, url + "/v1/completions", json={"prompt": "slow"})
        try:
            assert entered.wait(10)
            # answered while the backend is blocked: the generation does not hold the event loop
            assert http.get(url + "/v1/models", timeout=5).status_code == 200
            # the queue holds one request: another is refused at once instead of piling up
            assert_error(http.post(url + "/v1/completions", json={"prompt": "x"}, timeout=5), 503, type="server_error")
        finally:
            release.set()
        assert pending.result().status_code == 200


def test_a_failing_backend_is_a_clean_500(server, http):
    class Broken(Counting):
        def generate(self, prompts, n, params):
            raise RuntimeError("CUDA out of memory at /secret/path")

    url = server(Broken())
    r = http.post(url + "/v1/completions", json=COMPLETION)
    assert_error(r, 500, type="server_error")
    assert "secret" not in r.text


def test_a_chat_template_that_refuses_the_messages_is_422(server, http):
    class Tok:
        chat_template = "{{ raise_exception('roles must alternate') }}"

        def apply_chat_template(self, *a, **kw):
            raise ValueError("Conversation roles must alternate user/assistant")

    be = Counting()
    be.tokenizer = Tok()
    url = server(be)
    r = http.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "a"}] * 2})
    assert_error(r, 422, "messages")
    assert be.calls == 0


class GlobalSeed(Counting):
    """Samples like the in-process backend: seeds torch's global RNG, then draws (after a pause)."""

    def generate(self, prompts, n, params):
        torch.manual_seed(params.seed)
        time.sleep(0.02)
        return [[str(torch.randint(0, 10**9, (1,)).item()) for _ in range(n)] for _ in prompts]


def _seeded_requests(url, bodies, concurrent):
    def one(body):
        with httpx.Client(timeout=120) as http:
            r = http.post(url + "/v1/completions", json=body)
            assert r.status_code == 200, r.text
            return [c["text"] for c in r.json()["choices"]]

    if not concurrent:
        return [one(b) for b in bodies]
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_seed_reproduces_under_concurrency_with_a_global_rng_backend(server):
    url = server(GlobalSeed())
    bodies = [{"prompt": ["a", "b"], "n": 2, "seed": s, "temperature": 1.0} for s in range(8)]
    together = _seeded_requests(url, bodies, concurrent=True)
    alone = _seeded_requests(url, bodies, concurrent=False)
    assert together == alone and len({tuple(o) for o in alone}) == 8


def _tiny_backend(tiny_lm):
    model, tok = tiny_lm()
    return TransformersBackend(model, tok, "tiny", batch_size=2)

def test_seed_reproduces_under_concurrency_with_a_real_model(server, tiny_lm):
    url = server(_tiny_backend(tiny_lm))
    bodies = [{"prompt": ["abc", "de", "fghij"], "n": 2, "seed": s, "temperature": 1.0, "max_tokens": 8}
              for s in range(8)]
    together = _seeded_requests(url, bodies, concurrent=True)
    alone = _seeded_requests(url, bodies, concurrent=False)
    assert together == alone and len({tuple(o) for o in alone}) > 1


def test_the_in_process_backend_is_thread_safe(tiny_lm):
    be = _tiny_backend(tiny_lm)
    be.tokenizer.padding_side = "right"
    params = [GenParams(temperature=1.0, max_tokens=8, seed=s) for s in range(6)]
    prompts = ["abc", "d", "efghij"]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda p: be.generate(prompts, 2, p), params))
    assert together == [be.generate(prompts, 2, p) for p in params]
    assert be.tokenizer.padding_side == "right"
