"""Backends against the loopback TGI server: both routes, every fault kind, retries, timeouts, fail-fast."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from gvendi.synthesis import EndpointConfig, EndpointUnreachableError, GenerationParams, classify_error, make_backend
from gvendi.synthesis.backends import Backend, MalformedResponseError, render_messages

MESSAGES = [{"role": "user", "content": "Say hi."}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _many(backend, n: int, offset: int = 0):
    try:
        return await asyncio.gather(
            *(backend.generate([{"role": "user", "content": f"q{i}"}], GenerationParams(seed=i)) for i in range(n))
        )
    finally:
        await backend.aclose()


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_both_routes_answer(online_hub, loopback_server, backend):
    server = loopback_server(mode="scripted")
    endpoint = EndpointConfig(backend=backend, url=server.url, timeout=5)
    results = asyncio.run(_many(make_backend(endpoint), 4))
    assert all(r.ok and r.text == "ok" and r.attempts == 1 for r in results)


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_faults_end_as_succeeded_or_recorded_failed(online_hub, loopback_server, backend):
    """20% 429/503 and 5% timeouts (plus malformed bodies and resets): each request ends ok or failed with a reason."""
    server = loopback_server(
        mode="scripted",
        seed=3,
        rate_429=0.1,
        rate_503=0.1,
        rate_timeout=0.05,
        rate_malformed=0.03,
        rate_reset=0.02,
        retry_after=0,
        timeout_delay=1.0,
    )
    endpoint = EndpointConfig(backend=backend, url=server.url, timeout=0.4, max_retries=1, max_concurrency=32)
    results = asyncio.run(_many(make_backend(endpoint, backoff_base=0.01), 120))
    assert len(results) == 120
    failed = [r for r in results if not r.ok]
    assert all(r.ok == (r.text is not None) for r in results)
    assert all(r.error and r.attempts == 2 for r in failed)
    assert sum(r.ok for r in results) > 90
    kinds = " ".join(e for r in results for e in r.errors)
    for expected in ("429", "503", "timeout"):
        assert expected in kinds, f"no {expected} seen among {kinds[:400]}"
    assert server.stats["timeout"] > 0 and server.stats["429"] > 0 and server.stats["503"] > 0


def test_generate_route_error_types(online_hub, loopback_server):
    """On the generate route a 429 arrives as OverloadedError (no HTTP status attribute), classified as retryable."""
    from huggingface_hub import AsyncInferenceClient
    from huggingface_hub.errors import OverloadedError

    server = loopback_server(mode="scripted", rate_429=1.0)

    async def call():
        async with AsyncInferenceClient(base_url=server.url) as client:
            await client.text_generation("x", max_new_tokens=2)

    with pytest.raises(OverloadedError) as info:
        asyncio.run(call())
    kind = classify_error(info.value)
    assert kind.retryable and kind.status == 429


def test_malformed_body_and_reset_are_retried(online_hub, loopback_server):
    server = loopback_server(mode="scripted", rate_malformed=0.5, rate_reset=0.3, seed=1)
    endpoint = EndpointConfig(backend="tgi", url=server.url, timeout=5, max_retries=8)
    results = asyncio.run(_many(make_backend(endpoint, backoff_base=0.01), 20))
    assert all(r.ok for r in results)
    errors = " ".join(e for r in results for e in r.errors)
    assert "malformed" in errors and "transport" in errors


def test_retry_after_is_honoured(online_hub, loopback_server):
    server = loopback_server(mode="scripted", rate_503=1.0, retry_after=1)
    endpoint = EndpointConfig(backend="openai", url=server.url, timeout=5, max_retries=1)
    start = time.monotonic()
    (result,) = asyncio.run(_many(make_backend(endpoint, backoff_base=0.01), 1))
    assert not result.ok and "503" in result.error and result.attempts == 2
    assert time.monotonic() - start >= 1.0


def test_requests_per_minute_cap(online_hub, loopback_server):
    server = loopback_server(mode="scripted")
    endpoint = EndpointConfig(backend="tgi", url=server.url, requests_per_minute=600)  # one start every 0.1 s
    start = time.monotonic()
    results = asyncio.run(_many(make_backend(endpoint), 6))
    assert all(r.ok for r in results)
    assert time.monotonic() - start >= 0.45


def test_validation_error_is_not_retried(online_hub, loopback_server):
    server = loopback_server(mode="scripted")
    backend = make_backend(EndpointConfig(backend="tgi", url=server.url + "/generate-nowhere", max_retries=5))
    (result,) = asyncio.run(_many(backend, 1))
    assert not result.ok and result.attempts == 1 and "404" in result.error


def test_unreachable_endpoint_fails_fast_naming_url(online_hub):
    url = f"http://127.0.0.1:{_free_port()}"
    backend = make_backend(EndpointConfig(backend="openai", url=url))
    start = time.monotonic()
    with pytest.raises(EndpointUnreachableError, match=rf"127\.0\.0\.1:{url.rsplit(':', 1)[1]}/v1/chat/completions"):
        asyncio.run(backend.check_reachable(attempts=2, interval=0.1))
    assert time.monotonic() - start < 5


def test_offline_mode_is_reported_not_retried(loopback_server, monkeypatch):
    """With HF_HUB_OFFLINE=1 (as in this test session) huggingface_hub refuses loopback URLs: say so, once."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    server = loopback_server(mode="scripted")
    backend = make_backend(EndpointConfig(backend="tgi", url=server.url))
    with pytest.raises(EndpointUnreachableError, match="HF_HUB_OFFLINE"):
        asyncio.run(_many(backend, 1))
    assert server.stats["requests"] == 0


def test_render_messages_chatml_and_plain():
    assert render_messages(MESSAGES) == "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
    assert render_messages(MESSAGES, "plain") == "Say hi.\n\n"
    assert render_messages("raw", "chatml") == "raw"


class _BuggyBackend(Backend):
    """A backend whose attempt raises ``exc`` (its own code, not the HTTP client's)."""

    name = "buggy"

    def __init__(self, exc: BaseException):
        super().__init__(EndpointConfig(backend="local", max_retries=3), backoff_base=0.0)
        self.exc, self.calls = exc, 0

    async def _generate_once(self, prompt, params):
        self.calls += 1
        raise self.exc


@pytest.mark.parametrize("exc", [TypeError("unexpected keyword 'sead'"), KeyError("choices"), AttributeError("x")])
def test_a_programming_error_is_raised_not_retried(exc):
    backend = _BuggyBackend(exc)
    with pytest.raises(type(exc)):
        asyncio.run(backend.generate(MESSAGES, GenerationParams()))
    assert backend.calls == 1 and classify_error(exc).kind == "bug" and not classify_error(exc).retryable


def test_malformed_responses_are_retried():
    backend = _BuggyBackend(MalformedResponseError("chat completion has no message content"))
    result = asyncio.run(backend.generate(MESSAGES, GenerationParams()))
    assert not result.ok and backend.calls == 4 and "malformed" in result.error
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads('[{"generated_text": ')  # what a truncated body raises inside the client
    assert classify_error(info.value).kind == "malformed" and classify_error(info.value).retryable
    from huggingface_hub.utils import parse_datetime

    with pytest.raises(ValueError) as raised:
        parse_datetime("not a date")  # raised inside the HTTP client's package, as a body it cannot read is
    assert classify_error(raised.value).kind == "malformed"
