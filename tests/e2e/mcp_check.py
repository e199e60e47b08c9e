"""Drives a front door with the official MCP Python SDK (`mcp` 2.x) as a real client would.

    python tests/e2e/mcp_check.py --url https://localhost:8443 --token T --cafile certs/cert.pem \
        [--transport streamable|sse] [--http2] [--expect-servers a,b]

Initializes a session, lists tools, calls `echo`, receives progress notifications from
`stream_progress`, reads the gateway's server and secret names, and ends the session. Prints
one JSON line with what it saw; exits non-zero on any failure.
"""

import argparse
import asyncio
import json
import ssl
import sys
import time

import httpx2
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


def text_of(result) -> str:
    if getattr(result, "is_error", False):
        raise RuntimeError(f"tool error: {result.content}")
    return result.content[0].text


async def exercise(session: ClientSession, progress_count: int, interval_ms: int) -> dict:
    init = await session.initialize()
    tools = sorted(t.name for t in (await session.list_tools()).tools)
    echo = text_of(await session.call_tool("echo", {"text": "through the front door"}))
    stamps: list[float] = []

    async def on_progress(progress, total, message):
        stamps.append(time.monotonic())

    t0 = time.monotonic()
    await session.call_tool(
        "stream_progress",
        {"count": progress_count, "interval_ms": interval_ms},
        progress_callback=on_progress,
    )
    gaps = [round((b - a) * 1000, 1) for a, b in zip(stamps, stamps[1:])]
    servers = json.loads(text_of(await session.call_tool("list_servers", {})))
    secrets = json.loads(text_of(await session.call_tool("list_secret_names", {})))
    whoami = text_of(await session.call_tool("whoami", {}))
    return {
        "protocol": init.protocol_version,
        "tools": tools,
        "echo": echo,
        "progress_events": len(stamps),
        "progress_gaps_ms": gaps,
        "progress_first_ms": round((stamps[0] - t0) * 1000, 1) if stamps else None,
        "servers": servers,
        "secret_names": secrets,
        "whoami": whoami,
    }


def http_client(token: str, cafile: str, http2: bool) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cafile=cafile),
        http2=http2,
        timeout=httpx2.Timeout(30.0, read=300.0),
    )


async def run(args) -> dict:
    if args.transport == "streamable":
        async with http_client(args.token, args.cafile, args.http2) as hc:
            async with streamable_http_client(args.url + "/mcp", http_client=hc) as (r, w, *_):
                async with ClientSession(r, w) as s:
                    out = await exercise(s, args.progress, args.interval_ms)
            out["http_version"] = "h2" if args.http2 else "http/1.1"
            return out

    def factory(headers=None, timeout=None, auth=None):
        c = http_client(args.token, args.cafile, args.http2)
        if headers:
            c.headers.update(headers)
        return c

    async with sse_client(args.url + "/sse", httpx_client_factory=factory) as (r, w):
        async with ClientSession(r, w) as s:
            return await exercise(s, args.progress, args.interval_ms)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--transport", choices=["streamable", "sse"], default="streamable")
    p.add_argument("--http2", action="store_true")
    p.add_argument("--progress", type=int, default=5)
    p.add_argument("--interval-ms", type=int, default=100)
    p.add_argument("--expect-servers", default=None)
    args = p.parse_args()
    out = asyncio.run(run(args))
    print(json.dumps(out))
    problems = []
    if out["echo"] != "through the front door":
        problems.append(f"echo returned {out['echo']!r}")
    if out["progress_events"] != args.progress:
        problems.append(f"{out['progress_events']} progress events, expected {args.progress}")
    if args.expect_servers is not None:
        want = sorted(s for s in args.expect_servers.split(",") if s)
        if sorted(out["servers"]) != want:
            problems.append(f"servers {out['servers']}, expected {want}")
    for p_ in problems:
        print(f"mcp_check: {p_}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
