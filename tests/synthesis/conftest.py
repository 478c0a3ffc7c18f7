"""Fixtures of the synthesis tests: loopback servers and a switch that lets huggingface_hub reach loopback URLs."""

from __future__ import annotations

import pytest
from synthesis_helpers import TESTS_DIR  # noqa: F401 - puts tests/ on sys.path for tgi_server
from tgi_server import LoopbackTGIServer


@pytest.fixture
def online_hub(monkeypatch):
    """Let ``huggingface_hub`` send requests during one test.

    tests/conftest.py sets ``HF_HUB_OFFLINE=1`` before ``huggingface_hub`` is imported, and in offline mode its HTTP
    event hook refuses every URL, loopback included. The hook reads ``huggingface_hub.constants.HF_HUB_OFFLINE`` at
    request time, so patching that attribute for the test (monkeypatch restores it) is enough; the servers these
    tests talk to are all on 127.0.0.1.
    """
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield


@pytest.fixture
def loopback_server():
    """A factory of started :class:`LoopbackTGIServer` instances, all stopped at the end of the test."""
    servers = []

    def start(**kwargs) -> LoopbackTGIServer:
        server = LoopbackTGIServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
