"""``discern llm serve`` driven by the clients researchers use, over real HTTP on 127.0.0.1: the official
``openai`` Python SDK (completions and chat, streaming, logprobs, usage, finish reasons, API keys) and
lm-evaluation-harness's ``local-completions`` (a log-likelihood task through ``echo`` + ``logprobs``) and
``local-chat-completions`` (a generation task).  Every answer is checked against the model itself: greedy
text from an argmax loop, log-probabilities from one forward pass."""

import json
import time

import httpx
import lm_eval
import openai
import pytest
import torch

from discern.core.serving import LocalServer
from discern.llm.client import OpenAIClient
from discern.llm.generation import GenParams, TransformersBackend
from discern.llm.server import make_app, render_chat

KEY = "sk-test-0123"


@pytest.fixture(scope="module")
def live(tiny_lm_fused):
    model, tok = tiny_lm_fused
    backend = TransformersBackend(model, tok, "tiny")
    srv = LocalServer(make_app(backend, "tiny", api_key=KEY))
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    yield srv.url, backend, client
    srv.stop()


def greedy(model, ids: list[int], steps: int) -> list[int]:
    """The argmax continuation, one full forward pass per token (no cache, no generate())."""
    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            out.append(int(model(input_ids=torch.tensor([out])).logits[0, -1].argmax()))
    return out[len(ids):]


def logprobs_of(model, ids: list[int]) -> torch.Tensor:
    """log p(ids[i] | ids[:i]) for i >= 1, from one forward pass."""
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    return logp[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


def test_completion_is_the_models_greedy_text_with_id_usage_and_finish_reason(live):
    _, be, client = live
    ids = be.tokenizer("abc")["input_ids"]
    want = greedy(be.model, ids, 6)
    assert 0 not in want  # the test needs a prompt whose greedy continuation runs to max_tokens
    r = client.completions.create(model="tiny", prompt="abc", max_tokens=6, temperature=0)
    assert r.id.startswith("cmpl-") and r.object == "text_completion" and r.model == "tiny"
    assert abs(r.created - time.time()) < 120
    (c,) = r.choices
    assert c.text == be.tokenizer.decode(want) and c.finish_reason == "length" and c.index == 0
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 6, 9)
    # a stop string inside the greedy text: cut before it, finish "stop", tokens up to the one completing it
    text = be.tokenizer.decode(greedy(be.model, ids, 12))
    stop = text[6:9]
    assert text.find(stop) == 6
    r = client.completions.create(model="tiny", prompt="abc", max_tokens=12, temperature=0, stop=[stop])
    assert r.choices[0].text == text[:text.find(stop)] and r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == text.find(stop) + len(stop)
    # several prompts, prompt-major choices; a prompt given as token ids
    r = client.completions.create(model="tiny", prompt=["abc", "jj"], max_tokens=3, temperature=0, n=2)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert [c.text for c in r.choices] == [be.tokenizer.decode(greedy(be.model, ids, 3))] * 2 + \
        [be.tokenizer.decode(greedy(be.model, be.tokenizer("jj")["input_ids"], 3))] * 2
    r2 = client.completions.create(model="tiny", prompt=ids, max_tokens=3, temperature=0)
    assert r2.choices[0].text == r.choices[0].text


def test_echo_logprobs_are_the_models_log_probabilities(live):
    _, be, client = live
    ids = be.tokenizer("abcaj")["input_ids"]
    ref = logprobs_of(be.model, ids + greedy(be.model, ids, 1))
    r = client.completions.create(model="tiny", prompt="abcaj", max_tokens=1, temperature=0, echo=True, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(ids) + 1 and lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert lp.token_logprobs[1:] == pytest.approx(ref.tolist(), abs=1e-5)
    assert "".join(lp.tokens) == r.choices[0].text and r.choices[0].text.startswith("abcaj")
    assert lp.text_offset == [0, 1, 2, 3, 4, 5]
    for tok, v, top in zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:]):
        assert len(top) == 3 and max(top.values()) >= v - 1e-6
    assert lp.token_logprobs[-1] == max(lp.top_logprobs[-1].values())  # the greedy token is the top one
    # max_tokens 0 with echo: the prompt scored, nothing generated
    r = client.completions.create(model="tiny", prompt="abcaj", max_tokens=0, echo=True, logprobs=0)
    assert r.choices[0].text == "abcaj" and r.usage.completion_tokens == 0
    assert r.choices[0].logprobs.token_logprobs[1:] == pytest.approx(ref[:-1].tolist(), abs=1e-5)
    with pytest.raises(openai.UnprocessableEntityError, match="echo"):
        client.completions.create(model="tiny", prompt="abc", max_tokens=0)


def test_streaming_sends_the_same_text_token_by_token(live):
    _, be, client = live
    whole = client.completions.create(model="tiny", prompt="abc", max_tokens=8, temperature=0)
    chunks = list(client.completions.create(model="tiny", prompt="abc", max_tokens=8, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices and c.choices[0].text]
    assert "".join(texts) == whole.choices[0].text and len(texts) == 8  # one chunk per token as generated
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert len({c.id for c in chunks}) == 1
    # a stop string is never sent, not even its first characters
    text = be.tokenizer.decode(greedy(be.model, be.tokenizer("abc")["input_ids"], 12))
    stop = text[7:9]
    assert text.find(stop) == 7
    got = "".join(c.choices[0].text for c in client.completions.create(
        model="tiny", prompt="abc", max_tokens=12, temperature=0, stop=stop, stream=True) if c.choices)
    assert got == text[:text.find(stop)]
    # sampled, several choices: each arrives whole with its own index, equal to the non-streamed answer
    kw = dict(model="tiny", prompt="bad", max_tokens=5, temperature=1.0, n=3, seed=7)
    plain = [c.text for c in client.completions.create(**kw).choices]
    streamed = ["", "", ""]
    for c in client.completions.create(**kw, stream=True):
        for ch in c.choices:
            streamed[ch.index] += ch.text
    assert streamed == plain and len(set(plain)) > 1


def test_chat_through_the_template_with_limits_logprobs_and_streaming(live):
    _, be, client = live
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "<b>hi</b> =1+1"}]
    prompt = render_chat(be, messages)
    ids = be.tokenizer(prompt)["input_ids"]
    r = client.chat.completions.create(model="tiny", messages=messages, max_completion_tokens=4, temperature=0,
                                       logprobs=True, top_logprobs=2)
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    (c,) = r.choices
    want = greedy(be.model, ids, 4)
    k = want.index(0) + 1 if 0 in want else 4  # the end-of-sequence token ends it, counted, not shown
    want = want[:k]
    assert c.message.role == "assistant" and c.message.content == be.tokenizer.decode(want, skip_special_tokens=True)
    assert c.finish_reason == ("length" if 0 not in want else "stop")
    assert r.usage.prompt_tokens == len(ids) and r.usage.completion_tokens == k
    ref = logprobs_of(be.model, ids + want)[len(ids) - 1:]
    assert [t.logprob for t in c.logprobs.content] == pytest.approx(ref.tolist(), abs=1e-5)
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].logprob == t.logprob for t in c.logprobs.content)
    streamed = list(client.chat.completions.create(model="tiny", messages=messages, max_tokens=4, temperature=0,
                                                   stream=True, stream_options={"include_usage": True}))
    assert streamed[0].object == "chat.completion.chunk" and streamed[0].choices[0].delta.role == "assistant"
    assert "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices) == c.message.content
    assert streamed[-1].usage.completion_tokens == k


def test_sampling_reproduces_with_its_seed(live):
    _, _, client = live
    kw = dict(model="tiny", messages=[{"role": "user", "content": "abc"}], max_tokens=6, temperature=1.0, n=3)
    a = [c.message.content for c in client.chat.completions.create(**kw, seed=3).choices]
    b = [c.message.content for c in client.chat.completions.create(**kw, seed=3).choices]
    c = [c.message.content for c in client.chat.completions.create(**kw, seed=4).choices]
    assert a == b and a != c and len(a) == 3


def test_api_key_from_the_sdk_and_its_environment(live, monkeypatch):
    url, _, _ = live
    bad = openai.OpenAI(base_url=url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    env = openai.OpenAI(base_url=url + "/v1", max_retries=0)
    assert [m.id for m in env.models.list()] == ["tiny"]


def test_default_token_limits_follow_openai(server_with_counting):
    url, counting = server_with_counting
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    client.completions.create(model="m", prompt="x")
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], max_completion_tokens=7)
    assert [p.max_tokens for p in counting.params] == [16, 300, 7]  # chat: up to the server's limit
    with pytest.raises(openai.UnprocessableEntityError, match="logprobs"):  # a text-only backend says so
        client.completions.create(model="m", prompt="x", logprobs=1)


@pytest.fixture
def server_with_counting():
    class Counting:
        name, params = "counting", []

        def generate(self, prompts, n, params):
            self.params.append(params)
            return [["ok"] * n for _ in prompts]

    be = Counting()
    with LocalServer(make_app(be, max_tokens_limit=300)) as url:
        yield url, be


def test_our_client_takes_v1_urls_an_api_key_from_the_environment_and_a_concurrency(live, monkeypatch):
    url, be, _ = live
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    client = OpenAIClient(url + "/v1/", "tiny", max_concurrency=3)
    out = client.generate(["abc", "jj"], 1, GenParams(temperature=0, max_tokens=3))
    assert out == [[be.tokenizer.decode(greedy(be.model, be.tokenizer(p)["input_ids"], 3))] for p in ["abc", "jj"]]
    assert client.max_concurrency == 3 and client.base_url == url
    client.close()


def test_tokenizer_routes_and_their_hostile_input(live):
    url, be, _ = live
    with httpx.Client(base_url=url, timeout=30) as http:
        info = http.get("/tokenizer_info").json()
        assert info["eos_token"] == "<eos>" and info["vocab_size"] == len(be.tokenizer) == 13
        assert http.post("/tokenize", json={"prompt": "abc", "add_special_tokens": False}).json()["tokens"] == \
            be.tokenizer("abc")["input_ids"]
        assert http.post("/detokenize", json={"tokens": [1, 2, 3]}).json() == {"prompt": "abc"}
        for path, body, status in [("/tokenize", {"prompt": 5}, 422), ("/tokenize", "[", 400),
                                   ("/detokenize", {"tokens": [13]}, 422), ("/detokenize", {"tokens": [-1]}, 422),
                                   ("/detokenize", {"tokens": "abc"}, 422), ("/tokenize", {}, 422)]:
            r = http.post(path, content=body if isinstance(body, str) else json.dumps(body))
            assert r.status_code == status and set(r.json()["error"]) == {"message", "type", "param", "code"}
        r = http.post("/tokenize", content=b'{"prompt": "' + b"a" * (2 << 20) + b'"}')
        assert r.status_code == 413
        # token-id prompts outside the vocabulary are refused before the model sees them
        r = http.post("/v1/completions", json={"prompt": [1, 12], "max_tokens": 1},  # the model has 12 rows
                      headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 422 and r.json()["error"]["param"] == "prompt.0"


def test_a_disconnected_stream_ends_its_generation(live):
    _, be, _ = live
    calls = []
    done = be.complete("abc", 1, GenParams(temperature=0, max_tokens=40),
                       should_stop=lambda: calls.append(1) or len(calls) >= 3)
    assert len(done.choices[0].token_ids) == 3


# ---- lm-evaluation-harness ----------------------------------------------------------------------------

DOCS = [{"q": "abc", "choices": ["de", "fg", "hij"], "label": 1},
        {"q": "bad", "choices": ["cafe", "j", "ab"], "label": 0},
        {"q": "jj", "choices": ["a", "b"], "label": 1},
        {"q": "hh ab", "choices": ["cc", "dd", "ee", "ff"], "label": 3}]


def _task(tmp_path, **kw) -> dict:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    return {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(path)}}, "test_split": "test",
            "doc_to_text": "{{q}}", **kw}


def test_lm_eval_local_completions_log_likelihoods_equal_the_models(live, tmp_path, monkeypatch):
    from lm_eval.tasks import TaskManager

    url, be, _ = live
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    task = _task(tmp_path, task="tiny_mc", output_type="multiple_choice", doc_to_choice="{{choices}}",
                 doc_to_target="{{label}}", target_delimiter=" ",
                 metric_list=[{"metric": "acc", "aggregation": "mean", "higher_is_better": True}])
    res = lm_eval.simple_evaluate(model="local-completions", tasks=[task], task_manager=TaskManager(),
                                  model_args=f"base_url={url}/v1/completions,model=tiny,max_retries=1",
                                  log_samples=True)
    tok = be.tokenizer
    correct = []
    for s in sorted(res["samples"]["tiny_mc"], key=lambda s: s["doc_id"]):
        doc = DOCS[s["doc_id"]]
        ctx = tok(doc["q"], add_special_tokens=False)["input_ids"]
        want = []
        for choice in doc["choices"]:
            cont = tok(" " + choice, add_special_tokens=False)["input_ids"]
            want.append(float(logprobs_of(be.model, ctx + cont)[len(ctx) - 1:].sum()))
        got = [r[0][0] for r in s["resps"]]
        assert got == pytest.approx(want, abs=1e-4)
        correct.append(float(max(range(len(want)), key=want.__getitem__) == doc["label"]))
        assert s["acc"] == correct[-1]
    assert res["results"]["tiny_mc"]["acc,none"] == pytest.approx(sum(correct) / len(DOCS))


def test_lm_eval_local_chat_completions_generates_the_models_text(live, tmp_path, monkeypatch):
    from lm_eval.tasks import TaskManager

    url, be, _ = live
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    task = _task(tmp_path, task="tiny_gen", output_type="generate_until", doc_to_target="{{choices[0]}}",
                 generation_kwargs={"until": ["\n"], "max_gen_toks": 5, "temperature": 0.0, "do_sample": False},
                 metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}])
    res = lm_eval.simple_evaluate(model="local-chat-completions", tasks=[task], task_manager=TaskManager(),
                                  model_args=f"base_url={url}/v1/chat/completions,model=tiny,max_retries=1",
                                  apply_chat_template=True, log_samples=True)
    for s in res["samples"]["tiny_gen"]:
        prompt = render_chat(be, [{"role": "user", "content": DOCS[s["doc_id"]]["q"]}])
        gen = greedy(be.model, be.tokenizer(prompt)["input_ids"], 5)
        want = be.tokenizer.decode(gen[:gen.index(0)] if 0 in gen else gen).split("\n")[0]
        assert s["resps"] == [[want]]


def test_prompts_beyond_the_models_context_are_422_not_500(live):
    url, be, client = live  # the tiny model has 64 positions
    assert be.context_length == 64
    with pytest.raises(openai.UnprocessableEntityError, match="exceed the model's context of 64"):
        client.completions.create(model="tiny", prompt="a" * 60, max_tokens=10, temperature=0)
    with pytest.raises(openai.UnprocessableEntityError, match="context"):
        client.completions.create(model="tiny", prompt=[1] * 80, max_tokens=1, temperature=0)
    with pytest.raises(openai.UnprocessableEntityError, match="context"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "a" * 70}], max_tokens=2)
    # a chat that leaves max tokens to the server gets what the context has room for
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "abc"}], temperature=0)
    assert r.usage.prompt_tokens + r.usage.completion_tokens <= 64
    # inside a stream the refusal is an error event, then the end
    with httpx.Client(timeout=30) as http:
        r = http.post(url + "/v1/completions", headers={"Authorization": f"Bearer {KEY}"},
                      json={"prompt": "a" * 60, "max_tokens": 10, "stream": True})
    assert r.status_code == 200 and '"message":"the prompt\'s 60 tokens plus max_tokens 10 exceed' in r.text
    assert "[DONE]" not in r.text
