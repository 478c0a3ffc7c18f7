"""Issue 15: bad endpoints fail loudly with a one-line reason and a non-zero exit, never "done: 0 accepted".

The endpoint matrix runs ``gvendi synthesize`` in-process against a loopback server that answers an HTML page, a
JSON 404, random bytes, a permanent 429, or that answers the probe and then hangs; mistyped URLs are refused before
any request.
"""

from __future__ import annotations

import pytest
from synthesis_helpers import write_seed_subset

from gvendi.synthesis.cli import main


def _args(tmp_path, url: str, *extra: str) -> list[str]:
    seeds = write_seed_subset("math", tmp_path / "seeds.jsonl", 12)
    return [
        "synthesize", "--task", "math", "--seeds", str(seeds), "--generator", url, "--rounds", "1",
        "--per-round", "4", "--proxy", "tiny", "--dim", "16", "--out", str(tmp_path / "run"), "--no-progress",
        "--timeout", "2", "--max-retries", "1", *extra,
    ]  # fmt: skip


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("gvendi synthesize:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("behaviour", "backend", "code", "words"),
    [
        ("html", "tgi", 2, ["not as a tgi server", "<!DOCTYPE html"]),
        ("html", "openai", 2, ["not as a openai server"]),
        ("404", "tgi", 2, ["404", "--backend openai"]),
        ("404", "openai", 2, ["404"]),
        ("garbage", "tgi", 2, ["not as a tgi server", "malformed"]),
        ("always429", "tgi", 1, ["overloaded", "429"]),
        ("always429", "openai", 1, ["overloaded", "429"]),
    ],
)
def test_broken_endpoint_exits_non_zero_with_one_line(
    online_hub, loopback_server, tmp_path, capsys, behaviour, backend, code, words
):
    server = loopback_server(behaviour=behaviour)
    assert main(_args(tmp_path, server.url, "--backend", backend)) == code
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    for word in words:
        assert word in line
    assert "done:" not in captured.out
    assert server.stats["requests"] >= 1


def test_hang_after_probe_is_bounded_and_exits_one(online_hub, loopback_server, tmp_path, capsys):
    server = loopback_server(behaviour="hang_after_probe", timeout_delay=30)
    assert main(_args(tmp_path, server.url)) == 1
    line = _one_line(capsys.readouterr().err)
    assert "stalled" in line and "2s timeout" in line
    assert server.stats["probes"] >= 1 and server.stats["behaviour_hang_after_probe"] >= 4


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("htp://127.0.0.1:9", "http://127.0.0.1:9"),
        ("http//127.0.0.1:9", "http://127.0.0.1:9"),
        ("127.0.0.1:9", "http://127.0.0.1:9"),
        ("http://127.0.0.1:9/v1", "--backend openai"),
    ],
)
def test_bad_url_is_refused_at_once(tmp_path, capsys, url, fix):
    assert main(_args(tmp_path, url)) == 2
    line = _one_line(capsys.readouterr().err)
    assert fix in line
    assert not (tmp_path / "run" / "requests.jsonl").exists()


def test_working_endpoint_still_passes_the_probe(online_hub, loopback_server):
    import asyncio

    from gvendi.synthesis import EndpointConfig, make_backend

    server = loopback_server()
    for backend in ("tgi", "openai"):
        client = make_backend(EndpointConfig(backend=backend, url=server.url, timeout=5))

        async def probe(client=client):
            try:
                await client.check_reachable()
            finally:
                await client.aclose()

        asyncio.run(probe())
    assert server.stats["probes"] == 2


def test_round_with_nothing_parsed_is_an_error(online_hub, loopback_server, tmp_path, capsys):
    server = loopback_server(unparsable_rate=1.0)
    assert main(_args(tmp_path, server.url)) == 1
    line = _one_line(capsys.readouterr().err)
    assert "none of the 4 candidates" in line and "unparsable" in line and "--allow-empty-rounds" in line
    assert main(["synthesize", "--resume", str(tmp_path / "run"), "--allow-empty-rounds", "--no-progress"]) == 0


def test_round_where_every_solver_request_failed_is_an_error(online_hub, loopback_server, tmp_path, capsys):
    generator, solver = loopback_server(), loopback_server(behaviour="reject_after_probe")
    assert main(_args(tmp_path, generator.url, "--solver", solver.url)) == 1
    line = _one_line(capsys.readouterr().err)
    assert "every solver request failed" in line and "422" in line and solver.url in line
