"""End to end: the official MCP Python SDK, over TLS with a JWT, through the front door, to
lazily started test-gateway containers."""

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import mcp_check  # noqa: E402


class Args:
    def __init__(self, fd, token, transport="streamable", http2=False, progress=5, interval_ms=100):
        self.url, self.token, self.cafile = fd.url, token, fd.cafile
        self.transport, self.http2 = transport, http2
        self.progress, self.interval_ms = progress, interval_ms


@pytest.mark.parametrize("transport,http2", [("streamable", False), ("streamable", True), ("sse", False)])
def test_full_session_over_each_transport(frontdoor, transport, http2):
    out = asyncio.run(mcp_check.run(Args(frontdoor, frontdoor.token("carol"), transport, http2)))
    assert out["echo"] == "through the front door"
    assert {"echo", "stream_progress", "list_servers", "list_secret_names"} <= set(out["tools"])
    assert out["progress_events"] == 5
    # Progress notifications stream while the tool runs (4 gaps of 100 ms), not batched at the
    # end: batching would put them all within a few ms. Single gaps jitter on a loaded machine.
    assert sum(out["progress_gaps_ms"]) >= 200, out["progress_gaps_ms"]
    assert len(frontdoor.containers()) >= 1


def test_three_users_see_only_their_own_catalog_and_secrets(frontdoor):
    users = ["u-amber", "u-basil", "u-cedar"]
    tokens = {u: frontdoor.token(u) for u in users}
    for u in users:
        frontdoor.api("PUT", "/users/me/catalogs", tokens[u], {
            "custom": {"registry": {f"own-{u}": {"image": f"example/{u}:1", "title": u}}}})
        frontdoor.api("PUT", "/users/me/secrets", tokens[u], {f"own-{u}.token": f"value-{u}"})

    async def all_users():
        return await asyncio.gather(*(mcp_check.run(Args(frontdoor, tokens[u])) for u in users))

    results = dict(zip(users, asyncio.run(all_users())))
    for u, out in results.items():
        own = [s for s in out["servers"] if s.startswith("own-")]
        assert own == [f"own-{u}"], (u, out["servers"])
        assert f"own-{u}.token" in out["secret_names"], (u, out["secret_names"])
        others = [n for n in out["secret_names"] if n.startswith("own-") and n != f"own-{u}.token"]
        assert others == [], (u, out["secret_names"])
    assert len({out["whoami"] for out in results.values()}) == 3, "three distinct gateways"


def test_a_session_spanning_an_idle_stop_fails_cleanly_or_recovers(short_idle_frontdoor):
    fd = short_idle_frontdoor
    token = fd.token("idle-user")

    async def scenario():
        import httpx2
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        async with mcp_check.http_client(token, fd.cafile, False) as hc:
            async with streamable_http_client(fd.url + "/mcp", http_client=hc) as (r, w, *_):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    await s.call_tool("echo", {"text": "before"})
                    deadline = time.time() + 60
                    while fd.containers() and time.time() < deadline:
                        await asyncio.sleep(0.5)
                    assert not fd.containers(), "gateway was not stopped when idle"
                    try:
                        r2 = await asyncio.wait_for(s.call_tool("echo", {"text": "after"}), 30)
                        return ("recovered", r2)
                    except asyncio.TimeoutError:
                        return ("hang", None)
                    except Exception as e:  # an MCP-level or HTTP error is the clean outcome
                        return ("error", repr(e))

    try:
        outcome, detail = asyncio.run(scenario())
    except Exception as e:  # the SDK may surface the error when the session context closes
        outcome, detail = "error", repr(e)
    assert outcome != "hang", "the client hung after its gateway stopped"
    # Either way, a new session works at once (a fresh gateway is started).
    out = asyncio.run(mcp_check.run(Args(fd, token, progress=2)))
    assert out["echo"] == "through the front door", (outcome, detail)


def test_a_long_stream_is_not_cut_by_the_proxy(frontdoor):
    seconds = int(os.environ.get("E2E_LONG_STREAM_SECONDS", "60"))
    out = asyncio.run(mcp_check.run(Args(frontdoor, frontdoor.token("longrunner"),
                                         progress=seconds, interval_ms=1000)))
    assert out["progress_events"] == seconds
    assert max(out["progress_gaps_ms"]) < 2500, "a gap suggests buffering"
