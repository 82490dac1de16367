"""The model client against the fake OpenAI-compatible server over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pydantic import BaseModel

from evalkit.core.errors import ConfigError
from evalkit.llm import LLMClient, ModelCallError, ModelRoles, ModelSettings, ResponseCache, load_prices
from evalkit.llm.errors import scrub
from evalkit.testing.fake_openai import Failure, FakeOpenAIServer, Reply, Rule

KEY = "sk-fake-test-key"
MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture
def srv():
    with FakeOpenAIServer(hang_s=3) as server:
        yield server


def run(coro_fn, client):
    async def go():
        try:
            return await coro_fn()
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["429", "500", "503", "drop", "invalid_json"])
def test_transient_failures_are_retried(srv, kind):
    srv.fail_on = {1: Failure(kind)}
    c = LLMClient(srv.settings(max_retries=2))
    r = run(lambda: c.chat(MSG), c)
    assert r.content == "fake reply to: hello"
    assert r.attempts == 2
    assert len(srv.chat_requests) == 2
    assert c.totals.retries == 1


def test_retry_after_is_honoured(srv):
    srv.fail_on = {1: Failure("429", retry_after=0.4)}
    c = LLMClient(srv.settings(max_retries=2, backoff_s=0.0, max_backoff_s=0.0))
    t0 = time.monotonic()
    run(lambda: c.chat(MSG), c)
    assert time.monotonic() - t0 >= 0.38
    gap = srv.chat_requests[1].at - srv.chat_requests[0].at
    assert gap >= 0.38


def test_timeouts_are_retried_then_fail_bounded(srv):
    srv.fail_on = {1: "hang", 2: "hang"}
    c = LLMClient(srv.settings(max_retries=1, timeout=0.3))
    with pytest.raises(ModelCallError) as err:
        run(lambda: c.chat(MSG), c)
    assert err.value.kind == "timeout"
    assert err.value.attempts == 2
    assert len(srv.chat_requests) == 2  # bounded: no third attempt
    assert c.totals.failed_calls == 1


def test_non_retryable_status_fails_at_once_without_the_key(srv):
    srv.fail_on = {1: "401"}
    c = LLMClient(srv.settings(max_retries=3))
    with pytest.raises(ModelCallError) as err:
        run(lambda: c.chat(MSG), c)
    assert err.value.kind == "auth" and err.value.attempts == 1
    assert len(srv.chat_requests) == 1
    assert KEY not in str(err.value) and "\n" not in str(err.value)
    # the key was sent, as a bearer token
    assert srv.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_seeded_failure_rate_is_reproducible_and_survived():
    outcomes = []
    for _ in range(2):
        with FakeOpenAIServer(failure_rate=0.4, seed=7) as s:
            c = LLMClient(s.settings(max_retries=6))

            async def many(c=c):
                return [await c.chat([{"role": "user", "content": f"m{i}"}]) for i in range(8)]

            results = run(many, c)
            assert all(r.content.startswith("fake reply") for r in results)
            outcomes.append([r.attempts for r in results])
    assert outcomes[0] == outcomes[1]
    assert sum(outcomes[0]) > 8  # some calls really were retried


def test_concurrency_limit(srv):
    srv.latency_s = 0.15
    c = LLMClient(srv.settings(max_concurrency=2))

    async def many():
        return await asyncio.gather(*(c.chat([{"role": "user", "content": str(i)}]) for i in range(6)))

    t0 = time.monotonic()
    run(many, c)
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.4  # 6 calls, 2 at a time, 0.15 s each: at least 3 waves
    # never more than 2 requests in flight: arrival times come in pairs
    arrivals = sorted(r.at for r in srv.chat_requests)
    assert arrivals[2] - arrivals[0] >= 0.12


def test_requests_per_minute_limit(srv):
    c = LLMClient(srv.settings(rpm=240))  # 4 a second, burst of 4

    async def many():
        for i in range(8):
            await c.chat([{"role": "user", "content": str(i)}])

    t0 = time.monotonic()
    run(many, c)
    assert time.monotonic() - t0 >= 0.9  # 4 immediately, 4 more at 0.25 s intervals


def test_usage_and_cost(srv, tmp_path):
    srv.add_rule(Reply("priced", usage=(1000, 500)))
    prices = tmp_path / "prices.yaml"
    prices.write_text("fake-model: {input: 2.0, output: 10.0}\n")
    c = LLMClient(srv.settings(), prices=load_prices(prices))

    async def two():
        await c.chat(MSG)
        return await c.chat(MSG, stream=True)

    r = run(two, c)
    assert (r.prompt_tokens, r.completion_tokens) == (1000, 500)
    assert r.cost_usd == pytest.approx((1000 * 2 + 500 * 10) / 1e6)
    assert c.totals.prompt_tokens == 2000 and c.totals.cost_usd == pytest.approx(2 * 0.007)
    # unknown model: tokens counted, cost unknown (never guessed)
    c2 = LLMClient(srv.settings(model="mystery"))
    r2 = run(lambda: c2.chat(MSG), c2)
    assert r2.cost_usd is None and c2.totals.unpriced_calls == 1


def test_price_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("m: {input: -1, output: 2}\n")
    with pytest.raises(ConfigError) as err:
        load_prices(bad)
    assert "p.yaml" in str(err.value) and "m.input" in str(err.value)
    assert load_prices(None).cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)


def test_streaming_ttft_and_tool_calls(srv):
    srv.stream_delay_s = 0.05
    srv.add_rule(Reply("a fairly long streamed answer", tool_calls=[{"name": "lookup", "arguments": {"id": 7}}]))
    seen = []
    c = LLMClient(srv.settings())
    r = run(lambda: c.chat(MSG, stream=True, on_first_token=lambda: seen.append(time.perf_counter())), c)
    assert r.content == "a fairly long streamed answer"
    assert r.parsed_tool_calls() == [("call_1_0", "lookup", {"id": 7}, None)]
    assert len(seen) == 1
    assert r.ttft_ms is not None and 40 <= r.ttft_ms < r.latency_ms
    assert srv.chat_requests[0].body["stream_options"] == {"include_usage": True}


class Answer(BaseModel):
    score: int
    reason: str


def test_structured_output_retries_malformed_then_fails(srv):
    srv.enqueue(Reply("not json"), Reply(json={"score": "high"}), Reply(json={"score": 4, "reason": "ok"}))
    c = LLMClient(srv.settings())
    value, r = run(lambda: c.structured(MSG, Answer, name="grade"), c)
    assert value == Answer(score=4, reason="ok") and r.parsed == {"score": 4, "reason": "ok"}
    rf = srv.chat_requests[0].body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "grade"
    assert rf["json_schema"]["schema"]["required"] == ["score", "reason"]
    assert "invalid" in srv.chat_requests[1].last_user  # the error is fed back
    assert c.totals.invalid_outputs == 2

    srv.enqueue("nope", "nope", "nope")
    c2 = LLMClient(srv.settings())
    with pytest.raises(ModelCallError) as err:
        run(lambda: c2.structured(MSG, Answer, retries=2), c2)
    assert err.value.kind == "invalid_output"


def test_cache_modes(srv, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    c = LLMClient(srv.settings(temperature=0.0), cache=cache)

    async def twice():
        a = await c.chat(MSG)
        b = await c.chat(MSG)
        d = await c.chat(MSG, seed=3)  # a parameter change is a different request
        return a, b, d

    a, b, d = run(twice, c)
    assert not a.cached and b.cached and not d.cached
    assert a.content == b.content
    assert len(srv.chat_requests) == 2
    assert cache.stats.as_dict() == {"hits": 1, "misses": 2, "writes": 2}
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 2
    for f in files:
        text = f.read_text()
        assert KEY not in text and srv.base_url not in text
        assert json.loads(text)["request"]["model"] == "fake-model"
    assert b.usage().cost_usd == 0.0

    ro = ResponseCache(tmp_path / "cache", mode="read-only")
    c2 = LLMClient(srv.settings(temperature=0.0), cache=ro)
    r = run(lambda: c2.chat([{"role": "user", "content": "new"}]), c2)
    assert not r.cached and len(list((tmp_path / "cache").rglob("*.json"))) == 2  # nothing written
    r = run(lambda: c2.chat(MSG), c2)
    assert r.cached

    off = ResponseCache(tmp_path / "cache", mode="off")
    c3 = LLMClient(srv.settings(temperature=0.0), cache=off)
    assert not run(lambda: c3.chat(MSG), c3).cached

    agent = LLMClient(srv.settings(temperature=0.0), cache=ResponseCache(tmp_path / "cache"), role="agent",
                      cache_reads=False)
    n = len(srv.chat_requests)
    assert not run(lambda: agent.chat(MSG), agent).cached  # the agent really answers
    assert len(srv.chat_requests) == n + 1
    with pytest.raises(ConfigError):
        ResponseCache(tmp_path, mode="sometimes")


def test_settings_resolution_and_masking():
    env = {
        "OPENAI_API_KEY": KEY,
        "EVALKIT_MODEL": "base-model",
        "EVALKIT_JUDGE_MODEL": "strong",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "EVALKIT_SIMULATOR_BASE_URL": "http://127.0.0.1:8/v1",
    }
    roles = ModelRoles.resolve(env=env, agent_model="flagged")
    assert roles.judge.model == "strong" and roles.simulator.model == "base-model" and roles.agent.model == "flagged"
    assert roles.simulator.base_url == "http://127.0.0.1:8/v1" and roles.judge.base_url == "http://127.0.0.1:9/v1"
    for text in (repr(roles), str(roles), json.dumps(roles.model_dump(mode="json")), str(roles.model_dump())):
        assert KEY not in text
    assert roles.judge.key() == KEY
    assert ModelRoles.resolve(env={}).any is False
    with pytest.raises(ConfigError):
        ModelSettings.resolve("judge", model="m", base_url="localhost:8000", env={})


def test_scrub():
    text = "failed: Authorization: Bearer sk-abcdef123456 and api_key=hunter22 and sk-proj-zzzzzzzz"
    out = scrub(text, "hunter22")
    assert "sk-abcdef" not in out and "hunter22" not in out and "sk-proj" not in out


def test_fake_server_models_and_rules(srv):
    import urllib.request

    with urllib.request.urlopen(srv.base_url + "/models") as resp:
        assert json.load(resp)["data"][0]["id"] == "fake-model"
    srv.rules = [Rule("tooly", tools=True), Rule(lambda req: {"echo": req.last_user}, schema="s")]
    c = LLMClient(srv.settings())

    async def go():
        a = await c.chat(MSG, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
        b = await c.chat(MSG, response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {}}})
        return a, b

    a, b = run(go, c)
    assert a.content == "tooly" and json.loads(b.content) == {"echo": "hello"}


def test_client_options_from_env():
    roles = ModelRoles.resolve(env={"EVALKIT_MODEL": "m", "EVALKIT_RPM": "100", "EVALKIT_JUDGE_RPM": "7",
                                    "EVALKIT_TIMEOUT": "5"})
    assert (roles.judge.rpm, roles.simulator.rpm, roles.agent.timeout) == (7, 100, 5.0)
    with pytest.raises(ConfigError) as err:
        ModelRoles.resolve(env={"EVALKIT_MODEL": "m", "EVALKIT_RPM": "lots"})
    assert "rpm" in str(err.value) and "'lots'" in str(err.value)


def test_corrupt_cache_entry_is_a_miss_and_is_rewritten(srv, tmp_path):
    from evalkit.llm.cache import request_key

    cache = ResponseCache(tmp_path)
    c = LLMClient(srv.settings(temperature=0.0), cache=cache)
    run(lambda: c.chat(MSG), c)
    (entry,) = list(tmp_path.rglob("*.json"))
    entry.write_text("{torn")
    c2 = LLMClient(srv.settings(temperature=0.0), cache=cache)
    r = run(lambda: c2.chat(MSG), c2)
    assert not r.cached and len(srv.chat_requests) == 2
    assert json.loads(entry.read_text())["response"]["content"] == "fake reply to: hello"
    assert entry.stem == request_key({"model": "fake-model", "messages": MSG, "temperature": 0.0})
    assert not list(tmp_path.rglob(".tmp-*"))  # atomic writes leave no temporary files


def test_tokens_per_minute_limit_counts_real_usage(srv):
    srv.default = Reply("big", usage=(1500, 0))  # far more than the estimate
    c = LLMClient(srv.settings(tpm=60_000))  # 1000 tokens a second

    async def two():
        await c.chat(MSG)
        await c.chat(MSG)

    t0 = time.monotonic()
    run(two, c)
    # the first call overdrew the bucket by ~500 tokens: the second waits for the refill
    assert time.monotonic() - t0 >= 0.6


def test_a_users_own_openai_client_is_used_without_its_retries_and_left_open(srv):
    """Azure, proxies, custom TLS...: the caller's AsyncOpenAI (its URL, key, headers) carries
    every call; evalkit's retry policy is the only one, and the client stays the caller's."""
    import openai

    own = openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-own-key", max_retries=5,
                             default_headers={"X-Gateway": "team-a"})
    srv.fail_on = {1: Failure("500")}
    c = LLMClient(ModelSettings(model="fake-model", max_retries=0), openai_client=own)

    async def go():
        with pytest.raises(ModelCallError) as err:
            await c.chat(MSG)  # the SDK's own 5 retries are off: one attempt, as max_retries=0 says
        assert err.value.kind == "server_error" and len(srv.chat_requests) == 1
        r = await c.chat(MSG)
        await c.aclose()
        assert not own.is_closed()  # the caller's to close
        r2 = await own.chat.completions.create(model="fake-model", messages=MSG)  # type: ignore[arg-type]
        await own.close()
        return r, r2

    r, r2 = asyncio.run(go())
    assert c._scrub("echoed sk-own-key back") == "echoed *** back"  # its key never reaches an error
    assert r.content == "fake reply to: hello" and r2.choices[0].message.content == "fake reply to: hello"
    sent = srv.chat_requests[1].headers
    assert sent["authorization"] == "Bearer sk-own-key" and sent["x-gateway"] == "team-a"


def test_a_users_own_http_client_carries_the_calls_and_stays_open(srv):
    import httpx2

    seen: list[str] = []

    async def hook(request: httpx2.Request) -> None:
        seen.append(str(request.url))

    own = httpx2.AsyncClient(headers={"X-Proxy-Token": "t0ken"}, event_hooks={"request": [hook]})
    c = LLMClient(srv.settings(), http_client=own)

    async def go():
        r = await c.chat(MSG)
        s = await c.chat(MSG, stream=True)
        await c.aclose()
        assert not own.is_closed  # the caller's to close
        await own.aclose()
        return r, s

    r, s = asyncio.run(go())
    assert r.content == s.content == "fake reply to: hello" and s.ttft_ms is not None
    assert seen == [srv.base_url + "/chat/completions"] * 2
    assert all(q.headers["x-proxy-token"] == "t0ken" and q.headers["authorization"] == f"Bearer {KEY}"
               for q in srv.chat_requests)


def test_openai_client_and_http_client_together_is_a_config_error(srv):
    import httpx2
    import openai

    with pytest.raises(ConfigError, match="not both"):
        LLMClient(srv.settings(), openai_client=openai.AsyncOpenAI(api_key="k"), http_client=httpx2.AsyncClient())


def test_rate_limits_below_one_a_second_and_above_a_second_of_tokens():
    """aiolimiter refuses to take more than its bucket holds at once: an rpm under 60 and a
    token estimate above one second's budget still work (spread over the refill)."""
    from evalkit.llm._limits import RateLimits

    async def go():
        limits = RateLimits(rpm=30, tpm=6000)  # one request every 2 s; 100 tokens a second
        t0 = time.monotonic()
        await limits.acquire(150)  # 100 now, 50 more after half a second
        return time.monotonic() - t0

    assert asyncio.run(go()) >= 0.45


# -- the non-streaming body, read once with json.loads (no pydantic ChatCompletion) ---------------


def _mock_client(body: bytes, status: int = 200, **settings):
    """An LLMClient whose HTTP client answers every request with ``body`` (httpx2's MockTransport:
    any bytes at all, which the fake server cannot be made to send)."""
    import httpx2

    sent: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(status, content=body, headers={"content-type": "application/json"})

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    s = ModelSettings(model="fake-model", base_url="http://model.test/v1", api_key=KEY, backoff_s=0.0,
                      max_backoff_s=0.0, **settings)
    return LLMClient(s, http_client=http), sent


@pytest.mark.parametrize("body, problem", [
    (b"<html><body>502 Bad Gateway</body></html>", "JSONDecodeError"),
    (b'{"id": "chatcmpl-1", "choices": [', "JSONDecodeError"),
    (b'{"error": {"message": "overloaded"}}', "response has no choices"),
    (b'{"choices": [{"index": 0, "finish_reason": "stop"}]}', "response choice has no message"),
    (b'{"choices": [{"message": {"role": "assistant", "content": 42}}]}', "message content is not a string"),
    (b'{"choices": [{"message": {"content": null, "tool_calls": [{"id": "c1"}]}}]}', "malformed tool call"),
])
def test_a_200_that_is_not_a_chat_completion_is_an_invalid_response_retried_then_typed(body, problem):
    c, sent = _mock_client(body, max_retries=1)
    with pytest.raises(ModelCallError) as err:
        run(lambda: c.chat(MSG), c)
    assert err.value.kind == "invalid_response" and err.value.attempts == 2 and len(sent) == 2
    assert problem in str(err.value) and "unparseable response" in str(err.value)
    assert c.totals.failed_calls == 1


def test_the_body_read_once_gives_content_tool_calls_refusal_and_usage():
    body = {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
            "role": "assistant", "content": None, "refusal": None, "audio": None,
            "tool_calls": [{"id": "call_9", "type": "function",
                            "function": {"name": "lookup_order", "arguments": '{"order_id": "ORD-1"}'}}],
        }}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
    c, _ = _mock_client(json.dumps(body).encode())
    r = run(lambda: c.chat(MSG, tools=[{"type": "function", "function": {"name": "lookup_order"}}]), c)
    assert r.content is None and r.refusal is None and r.finish_reason == "tool_calls"
    # None-valued keys dropped, as the SDK's model dump gave them
    assert r.tool_calls == [{"id": "call_9", "type": "function",
                             "function": {"name": "lookup_order", "arguments": '{"order_id": "ORD-1"}'}}]
    assert r.parsed_tool_calls() == [("call_9", "lookup_order", {"order_id": "ORD-1"}, None)]
    assert (r.prompt_tokens, r.completion_tokens, r.usage_estimated) == (11, 7, False)
    assert r.message() == {"role": "assistant", "content": None, "tool_calls": r.tool_calls}


def test_a_non_streamed_refusal_and_a_missing_usage(srv):
    srv.enqueue(Reply(refusal="I can't help with that."), Reply("   "))
    c = LLMClient(srv.settings())

    async def both():
        return await c.chat(MSG), await c.chat(MSG)

    refused, blank = run(both, c)
    assert refused.refusal == "I can't help with that." and refused.content is None
    assert blank.refusal is None and blank.content == "   "
    c2, _ = _mock_client(b'{"choices": [{"message": {"content": "hello there"}, "finish_reason": "stop"}]}')
    r = run(lambda: c2.chat(MSG), c2)
    assert r.content == "hello there" and r.usage_estimated and r.prompt_tokens > 0 and r.completion_tokens > 0


def test_the_sdk_telemetry_headers_are_not_sent_and_the_url_is_the_sdks(srv):
    import openai

    c = LLMClient(srv.settings())
    own = openai.AsyncOpenAI(base_url=srv.base_url, api_key=KEY)  # a caller's client too
    theirs = LLMClient(ModelSettings(model="fake-model"), openai_client=own)

    async def three():
        await theirs.chat(MSG)
        await theirs.aclose()
        await own.close()
        return await c.chat(MSG), await c.chat(MSG, stream=True)

    run(three, c)
    assert len(srv.chat_requests) == 3
    for req in srv.chat_requests:
        sent = {k.lower(): v for k, v in req.headers.items()}
        assert not [k for k in sent if k.startswith("x-stainless")], sent
        assert sent["authorization"] == f"Bearer {KEY}" and sent["content-type"] == "application/json"
        assert sent["user-agent"].startswith("AsyncOpenAI/Python")
    # A base URL with a path and a trailing slash is merged as the SDK merges it.
    c2, sent2 = _mock_client(b'{"choices": [{"message": {"content": "ok"}}]}')
    c2.settings = c2.settings.model_copy(update={"base_url": "http://model.test/openai/v1/"})
    run(lambda: c2.chat(MSG), c2)
    assert str(sent2[0].url) == "http://model.test/openai/v1/chat/completions"


def test_a_base_url_with_credentials_takes_the_httpx2_client(srv):
    url = srv.base_url.replace("http://", "http://team:pa55@")
    c = LLMClient(srv.settings().model_copy(update={"base_url": url}))
    r = run(lambda: c.chat(MSG), c)
    assert r.content == "fake reply to: hello"
    assert srv.chat_requests[0].headers["authorization"].startswith("Basic ")  # the URL's, as httpx2 sends it


def test_evalkit_built_clients_share_one_tls_context(monkeypatch, tmp_path):
    import ssl

    from evalkit.llm.client import tls_context

    first = tls_context()
    assert isinstance(first, ssl.SSLContext) and tls_context() is first
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    import certifi

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # httpx2 honours it: a new context
    assert tls_context() is not first


def _sse(*chunks: object) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def test_a_streamed_answer_is_put_together_from_plain_json_chunks():
    def choice(delta, finish=None):
        return {"id": "c", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}]}

    body = _sse(
        choice({"role": "assistant", "content": ""}),
        choice({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                "function": {"name": "lookup", "arguments": '{"id"'}}]}),
        choice({"tool_calls": [{"index": 0, "function": {"arguments": ": 7}"}}]}),
        choice({"refusal": "I won't "}), choice({"refusal": "do that."}),
        choice({}, "tool_calls"),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}},
    )
    c, _ = _mock_client(body)
    firsts: list[int] = []
    r = run(lambda: c.chat(MSG, stream=True, on_first_token=lambda: firsts.append(1)), c)
    assert firsts == [1] and r.ttft_ms is not None  # the first tool-call delta is the first token
    assert r.content is None and r.refusal == "I won't do that." and r.finish_reason == "tool_calls"
    assert r.parsed_tool_calls() == [("call_1", "lookup", {"id": 7}, None)]
    assert (r.prompt_tokens, r.completion_tokens, r.usage_estimated) == (5, 3, False)


@pytest.mark.parametrize("chunk, problem", [
    ([1, 2], "stream chunk is not a JSON object"),
    ({"choices": {"delta": {}}}, "choices is not a list"),
    ({"choices": [{"delta": "hi"}]}, "stream delta is not an object"),
    ({"choices": [{"delta": {"content": 7}}]}, "content is not a string"),
    ({"choices": [{"delta": {"tool_calls": [{"index": "0"}]}}]}, "malformed tool call in stream"),
])
def test_a_malformed_stream_chunk_is_an_invalid_response(chunk, problem):
    c, sent = _mock_client(_sse(chunk), max_retries=1)
    with pytest.raises(ModelCallError) as err:
        run(lambda: c.chat(MSG, stream=True), c)
    assert err.value.kind == "invalid_response" and err.value.attempts == 2 and len(sent) == 2
    assert problem in str(err.value)
