"""End to end: two front door *processes* on one engine instance and one data dir (DESIGN.md
§8), the official MCP Python SDK as the client. Its HTTP client sends each request to whichever
replica the test points it at, as an L4 balancer may: the session opened on A goes on on B, and
when A is killed (SIGKILL) in the middle of a stream, B keeps serving the same session."""

import asyncio
import json
import shutil
import signal
import ssl
import sys
import tempfile
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, FrontDoor, docker_available, free_port, unavailable  # noqa: E402


class Switch(httpx2.AsyncBaseTransport):
    """Sends every request to the port in `self.port` (the replica the test chose)."""

    def __init__(self, port: int, cafile: str):
        self.port = port
        self.seen: list[int] = []
        self.sessions: list[str] = []
        self.inner = httpx2.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=cafile))

    async def handle_async_request(self, request):
        request.url = request.url.copy_with(port=self.port)
        self.seen.append(self.port)
        if sid := request.headers.get("mcp-session-id"):
            self.sessions.append(sid)
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


@pytest.fixture
def replicas():
    if not docker_available():
        unavailable("Docker is not reachable: end-to-end tests need it")
    if not BIN.exists():
        pytest.fail(f"{BIN} missing: run `cargo build` first")
    ta = Path(tempfile.mkdtemp(prefix="fd-e2e-a-"))
    tb = Path(tempfile.mkdtemp(prefix="fd-e2e-b-"))
    pa, pb = (free_port(), free_port()), (free_port(), free_port())
    a = b = None
    try:
        a = FrontDoor(ta, "10m", ports=pa,
                      replicas=f'{{ id: a, peers: ["127.0.0.1:{pb[1]}"] }}')
        b = FrontDoor(tb, "10m", ports=pb, replica_of=a,
                      replicas=f'{{ id: b, peers: ["127.0.0.1:{pa[1]}"] }}')
        yield a, b
    finally:
        for fd in (b, a):
            if fd is not None:
                fd.close()
        shutil.rmtree(ta, ignore_errors=True)
        shutil.rmtree(tb, ignore_errors=True)


def text(result) -> str:
    assert not result.is_error, result.content
    return result.content[0].text


def test_a_session_moves_between_replicas_and_outlives_a_killed_one(replicas):
    a, b = replicas
    token = a.token("roam")

    async def scenario():
        switch = Switch(a.port, a.cafile)
        hc = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, transport=switch,
                                timeout=httpx2.Timeout(30.0, read=60.0))
        out = {}
        async with hc:
            async with streamable_http_client(a.url + "/mcp", http_client=hc) as (r, w, *_):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    out["whoami_a"] = json.loads(text(await s.call_tool("whoami", {})))["instance"]
                    # The same session, through the other process.
                    switch.port = b.port
                    out["echo_b"] = text(await s.call_tool("echo", {"text": "via b"}))
                    out["whoami_b"] = json.loads(text(await s.call_tool("whoami", {})))["instance"]
                    # A stream through A; A is killed in its middle.
                    switch.port = a.port
                    got = []

                    async def on_progress(progress, total, message):
                        got.append(progress)

                    stream = asyncio.create_task(s.call_tool(
                        "stream_progress", {"count": 20, "interval_ms": 250},
                        progress_callback=on_progress))
                    for _ in range(100):
                        if got:
                            break
                        await asyncio.sleep(0.05)
                    out["progress_before_kill"] = len(got)
                    a.proc.send_signal(signal.SIGKILL)
                    a.proc.wait(timeout=10)
                    switch.port = b.port
                    try:
                        await asyncio.wait_for(stream, timeout=20)
                        out["stream_on_a"] = "completed"
                    except BaseException as e:  # the cut stream; what the SDK makes of it
                        out["stream_on_a"] = type(e).__name__
                    # B serves the same session on.
                    after = []

                    async def on_after(progress, total, message):
                        after.append(progress)

                    await s.call_tool("stream_progress", {"count": 3, "interval_ms": 100},
                                      progress_callback=on_after)
                    out["progress_on_b"] = len(after)
                    out["echo_after_kill"] = text(await s.call_tool("echo", {"text": "still"}))
        out["ports"] = sorted(set(switch.seen))
        out["first_id"], out["last_id"] = switch.sessions[0], switch.sessions[-1]
        out["session_ids"] = len(set(switch.sessions))
        return out

    out = asyncio.run(scenario())
    assert out["first_id"].startswith("fd1."), out
    assert out["echo_b"] == "via b"
    assert out["whoami_a"] == out["whoami_b"], "one gateway behind both replicas"
    assert out["progress_before_kill"] >= 1, out
    assert out["progress_on_b"] == 3, out
    assert out["echo_after_kill"] == "still"
    assert out["session_ids"] == 1, "the same session throughout"
    assert out["ports"] == sorted([a.port, b.port]), out
    print(json.dumps(out))
