#!/usr/bin/env python3
"""Tool-call overhead of the policed Docker API (issue 11), paired: two front doors run the real
docker/mcp-gateway with one stdio MCP server, one handing its gateways the host's engine socket
(`engine_for_gateways: host`, `allow_host_engine: true`), the other each gateway's own policed
endpoint. On one open MCP session per front door, every round calls `secret_hash` once on each
(order alternating), and each call makes the real gateway start a server container with
`docker run --rm -i` (create, attach, start, wait through the API), call the tool and stop it.
The paired difference (policed - host) per round is what the policed API adds per such call.

A container start costs hundreds of milliseconds and varies by tens, so the script also times
the API calls themselves, without starting anything: per round, on the policed user's own
socket and on the engine's socket directly (alternating), `HEAD /_ping`, `POST
/containers/create` (the body the gateway's docker CLI sends, captured in
tests/fixtures/dockerapi/gateway_stdio_server.json), `GET /containers/{id}/json` and `DELETE
/containers/{id}`: what the policed endpoint adds per call, by call.

    .venv/bin/python scripts/realgw_tool_call.py [--rounds 40] [--api-rounds 200]
        [--jsonl target/bench/realgw-tool-call.jsonl]
    # the release build (what users run):
    cargo build --release --bin mcp-frontdoor &&
      FRONTDOOR_BIN=target/release/mcp-frontdoor .venv/bin/python scripts/realgw_tool_call.py

Needs Docker, `cargo build` (the front door binary), `test-gateway/build-image.sh` (the stdio
image) and `../shared/real-gateway/` (the real gateway image is made from it when missing).
Everything it creates is labelled and removed, also on failure.
"""

import argparse
import asyncio
import http.client
import json
import socket
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

import mcp_check  # noqa: E402
from conftest import make_frontdoor  # noqa: E402
from realgw import install_catalog, new_secret, real_images, stdio_server  # noqa: E402

SERVER = "hashsrv"
CONTENDERS = {
    "host": {"engine_for_gateways": "host", "allow_host_engine": "true"},
    "policed": {"engine_for_gateways": "policed"},
}


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("docker", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def call(path: str, method: str, url: str, body: bytes | None = None) -> tuple[int, bytes, float]:
    """One call on a fresh connection (as the docker CLI makes them): status, body, ms."""
    t0 = time.perf_counter()
    c = UnixHTTPConnection(path)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, url, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data, (time.perf_counter() - t0) * 1e3


def api_round(path: str, create_body: bytes) -> dict[str, float]:
    out = {}
    status, _, out["ping"] = call(path, "HEAD", "/_ping")
    assert status == 200, status
    status, data, out["create"] = call(path, "POST", "/v1.41/containers/create", create_body)
    assert status == 201, (status, data[:300])
    cid = json.loads(data)["Id"]
    status, _, out["inspect"] = call(path, "GET", f"/v1.41/containers/{cid}/json")
    assert status == 200, status
    status, _, out["delete"] = call(path, "DELETE", f"/v1.41/containers/{cid}?force=1")
    assert status == 204, status
    return out


def api_overhead(fd, api_rounds: int) -> dict[str, list[float]]:
    """Paired per-call times on the policed user's socket and the engine's own."""
    slug = "toolcall-policed"
    policed = str(fd.tmp / "data" / "gateway-api" / slug / "docker.sock")
    engine = "/var/run/docker.sock"
    body = json.loads((ROOT / "tests/fixtures/dockerapi/gateway_stdio_server.json").read_text())
    network = f"mcp-fd-{fd.instance}-{slug}"
    body["HostConfig"]["NetworkMode"] = network
    body["HostConfig"]["AutoRemove"] = False
    # Both get what the policed endpoint would send, so the engine does the same work.
    body["HostConfig"].update({"Memory": 1 << 30, "MemorySwap": 1 << 30, "PidsLimit": 256,
                               "CapDrop": ["ALL"]})
    raw = json.dumps(body).encode()
    deltas: dict[str, list[float]] = {}
    for i in range(api_rounds):
        order = [policed, engine] if i % 2 == 0 else [engine, policed]
        got = {p: api_round(p, raw) for p in order}
        for k in got[policed]:
            deltas.setdefault(k, []).append(got[policed][k] - got[engine][k])
    return deltas


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


async def run(rounds: int, api_rounds: int, jsonl: Path):
    gateway_image, _ = real_images()
    fds = {}
    try:
        for name, docker in CONTENDERS.items():
            fd, tmp = make_frontdoor("10m", image=gateway_image, spawn_timeout="120s",
                                     docker=docker)
            fds[name] = (fd, tmp)
            install_catalog(fd, {SERVER: stdio_server(SERVER)})
        sessions = {}
        stack = []
        for name, (fd, _) in fds.items():
            token = fd.token(f"toolcall-{name}")
            fd.api("PUT", "/users/me/secrets", token, {f"{SERVER}.token": new_secret()})
            hc = mcp_check.http_client(token, fd.cafile, False)
            client = await hc.__aenter__()
            stack.append(hc)
            sh = streamable_http_client(fd.url + "/mcp", http_client=client)
            r, w, *_ = await sh.__aenter__()
            stack.append(sh)
            s = ClientSession(r, w)
            await s.__aenter__()
            stack.append(s)
            await s.initialize()
            await s.call_tool("secret_hash", {})  # warm-up: image cache, first attach
            sessions[name] = s
        results: dict[str, list[float]] = {n: [] for n in sessions}
        jsonl.parent.mkdir(parents=True, exist_ok=True)
        with open(jsonl, "w") as out:
            for i in range(rounds):
                order = list(sessions) if i % 2 == 0 else list(reversed(sessions))
                for name in order:
                    t0 = time.perf_counter()
                    res = await sessions[name].call_tool("secret_hash", {})
                    ms = (time.perf_counter() - t0) * 1e3
                    got = json.loads(mcp_check.text_of(res))
                    assert got.get("set") is True, (name, got)
                    results[name].append(ms)
                    out.write(json.dumps({"contender": name, "round": i, "ms": round(ms, 2)}) + "\n")
        api = api_overhead(fds["policed"][0], api_rounds) if api_rounds else {}
        for cm in reversed(stack):
            await cm.__aexit__(None, None, None)
        return results, api
    finally:
        for fd, tmp in fds.values():
            fd.close()
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--api-rounds", type=int, default=200)
    p.add_argument("--jsonl", default=str(ROOT / "target" / "bench" / "realgw-tool-call.jsonl"))
    args = p.parse_args()
    results, api = asyncio.run(run(args.rounds, args.api_rounds, Path(args.jsonl)))
    print(f"real gateway, one stdio server, {args.rounds} paired rounds of one tool call each "
          f"(a `docker run --rm -i` per call); load {open('/proc/loadavg').read().split()[0]}")
    print("| contender | median ms | p90 ms |")
    print("|---|---:|---:|")
    for name, v in results.items():
        print(f"| {name} | {statistics.median(v):.1f} | {percentile(v, 0.9):.1f} |")
    d = [p - h for p, h in zip(results["policed"], results["host"])]
    print(f"policed - host, paired per round: median {statistics.median(d):+.1f} ms, "
          f"p90 {percentile(d, 0.9):+.1f} ms, mean {statistics.mean(d):+.1f} ms "
          f"({min(d):+.1f} to {max(d):+.1f})")
    if api:
        print(f"\nper API call, policed socket - engine socket, {args.api_rounds} paired rounds:")
        print("| call | median ms | p90 ms |")
        print("|---|---:|---:|")
        for k, v in api.items():
            print(f"| {k} | {statistics.median(v):+.2f} | {percentile(v, 0.9):+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
