"""One MCP session (the official Python SDK) through the replicas deployment's balancer while
each replica in turn is killed: the session must go on through the other one.

    python scripts/replicas_check.py --url https://localhost:8443 --token T --cafile certs/cert.pem \
        --kill 'docker kill p_frontdoor-a_1' --revive 'docker start p_frontdoor-a_1' \
        --kill 'docker kill p_frontdoor-b_1'

After each --kill command the session calls a tool again; then the --revive that follows it,
if any, runs, and the next kill waits --settle seconds for the balancer to take the revived
replica back. Prints one JSON line; exits non-zero on any failure."""

import argparse
import asyncio
import json
import ssl
import subprocess
import time

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


class Recorder(httpx2.AsyncBaseTransport):
    """Keeps every Mcp-Session-Id the client sends, to prove it stayed one session."""

    def __init__(self, cafile: str):
        self.sessions: set[str] = set()
        self.inner = httpx2.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=cafile))

    async def handle_async_request(self, request):
        if sid := request.headers.get("mcp-session-id"):
            self.sessions.add(sid)
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


def text(result) -> str:
    if result.is_error:
        raise RuntimeError(f"tool error: {result.content}")
    return result.content[0].text


async def until_answered(session: ClientSession, what: str, limit: float = 20.0) -> str:
    """The balancer needs a moment to see a replica gone (health checks every second); a call
    cut with its replica is tried again, as a client would."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return text(await asyncio.wait_for(session.call_tool("echo", {"text": what}), 10))
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run(args) -> dict:
    rec = Recorder(args.cafile)
    hc = httpx2.AsyncClient(headers={"Authorization": f"Bearer {args.token}"}, transport=rec,
                            timeout=httpx2.Timeout(30.0, read=60.0))
    out = {"echoes": []}
    async with hc:
        async with streamable_http_client(args.url + "/mcp", http_client=hc) as (r, w, *_):
            async with ClientSession(r, w) as s:
                await s.initialize()
                out["gateway"] = json.loads(text(await s.call_tool("whoami", {})))["instance"]
                out["echoes"].append(await until_answered(s, "before"))
                revives = list(args.revive)
                for i, kill in enumerate(args.kill):
                    subprocess.run(kill, shell=True, check=True, capture_output=True)
                    out["echoes"].append(await until_answered(s, f"after kill {i}"))
                    if revives:
                        subprocess.run(revives.pop(0), shell=True, check=True, capture_output=True)
                        # The balancer takes a revived replica back after two good health
                        # checks a second apart (haproxy.cfg: rise 2, inter 1s); a kill before
                        # that would leave it no replica at all.
                        await asyncio.sleep(args.settle)
                out["gateway_after"] = json.loads(text(await s.call_tool("whoami", {})))["instance"]
    out["session_ids"] = sorted(rec.sessions)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--kill", action="append", default=[])
    p.add_argument("--revive", action="append", default=[])
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds to wait after a revive before the next kill")
    args = p.parse_args()
    out = asyncio.run(run(args))
    print(json.dumps(out))
    assert out["echoes"] == ["before"] + [f"after kill {i}" for i in range(len(args.kill))], out
    assert out["gateway"] == out["gateway_after"], "one gateway behind every replica"
    assert len(out["session_ids"]) == 1 and out["session_ids"][0].startswith("fd1."), out


if __name__ == "__main__":
    main()
