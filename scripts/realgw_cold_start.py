#!/usr/bin/env python3
"""Cold start with the real docker/mcp-gateway and one stdio MCP server (issue 9), paired:

  bare       `docker network create` + `docker run` of the real gateway image (host Docker
             socket, the catalog and secrets bind-mounted, `--servers=hashsrv --verbose=false`),
             poll `/health` every 5 ms, then the first MCP response (initialize).
  frontdoor  the front door (TLS, JWT, `engine_for_gateways: policed`, same image, same catalog
             server) receives a user's first MCP request (initialize) and answers it: network,
             container, init delivery, the gateway's own init, health probe, proxy.

Both contenders alternate round by round (A B, B A, ...) after one warm-up round each, and the
medians are printed. Each round also reads the gateway's own step timings from its log (config
read, image inspection, tool listing = running the server once, and its whole init), so the
gateway's init is separated from ours: `outside` = first response - the gateway's init.

    .venv/bin/python scripts/realgw_cold_start.py [--rounds 7] [--contenders bare,frontdoor]
        [--jsonl target/bench/realgw-cold-start.jsonl] [--fd-docker KEY=YAML]...

Needs Docker, `cargo build` (the front door binary), `test-gateway/build-image.sh` (the stdio
image) and `../shared/real-gateway/` (the real gateway image is made from it when missing).
Everything it creates is labelled and removed, also on failure.
"""

import argparse
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from conftest import make_frontdoor  # noqa: E402
from realgw import (ENGINE, gateway_timings, install_catalog, new_secret,  # noqa: E402
                    real_images, stdio_server)

PORT = 8811
INIT_BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "realgw-cold-start", "version": "0"}}}).encode()
SERVER = "hashsrv"


def first_response(conn: http.client.HTTPConnection, token: str) -> int:
    """POSTs initialize on `conn` and reads until the result arrives; returns the status."""
    conn.request("POST", "/mcp", body=INIT_BODY, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"})
    r = conn.getresponse()
    if r.status != 200:
        r.read()
        return r.status
    if r.getheader("Content-Type", "").startswith("text/event-stream"):
        while line := r.readline():
            if line.startswith(b"data:") and b'"result"' in line:
                break
    else:
        r.read()
    r.close()
    return r.status


def health_ok(ip: str) -> bool:
    try:
        c = http.client.HTTPConnection(ip, PORT, timeout=0.5)
        c.request("GET", "/health")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def docker(*args: str, check=True) -> str:
    p = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and p.returncode:
        raise RuntimeError(f"docker {' '.join(args[:2])}: {p.stderr.strip()}")
    return p.stdout.strip()


class Bare:
    """The real gateway started by hand: what a user of docker/mcp-gateway would run."""

    name = "bare"

    def __init__(self, gateway_image: str, work: Path):
        self.image, self.work = gateway_image, work
        self.label = f"realgw-cold-start={os.getpid()}"
        (work / "catalogs").mkdir()
        (work / "catalogs" / "bare.yaml").write_text(json.dumps(
            {"name": "bare", "displayName": "bare", "registry": {SERVER: stdio_server(SERVER)}}))
        (work / "secrets.env").write_text(f"{SERVER}.token={new_secret()}\n")

    def round(self, i: int) -> dict:
        name = f"realgw-cold-{os.getpid()}-{i}"
        t0 = time.perf_counter()
        docker("network", "create", "--label", self.label, name)
        t_net = time.perf_counter()
        docker("run", "-d", "--name", name, "--label", self.label, "--network", name,
               "-v", "/var/run/docker.sock:/var/run/docker.sock",
               "-v", f"{self.work}/catalogs:/root/.docker/mcp/catalogs:ro",
               "-v", f"{self.work}/secrets.env:/run/secrets.env:ro",
               "-e", "MCP_GATEWAY_AUTH_TOKEN=cold-start-token", self.image,
               "--transport=streaming", f"--port={PORT}",
               "--catalog=/root/.docker/mcp/catalogs/bare.yaml", f"--servers={SERVER}",
               "--secrets=/run/secrets.env", "--verbose=false")
        t_run = time.perf_counter()
        ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    name)
        deadline = t0 + 120
        while not health_ok(ip):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"bare gateway not healthy in 120 s: {docker('logs', name)}")
            time.sleep(0.005)
        t_health = time.perf_counter()
        conn = http.client.HTTPConnection(ip, PORT, timeout=30)
        status = first_response(conn, "cold-start-token")
        t_first = time.perf_counter()
        conn.close()
        assert status == 200, f"bare initialize: {status}"
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        out = {"first_ms": (t_first - t0) * 1e3, "network_ms": (t_net - t0) * 1e3,
               "docker_run_ms": (t_run - t_net) * 1e3, "health_ms": (t_health - t0) * 1e3,
               **gateway_timings(logs.stdout + logs.stderr)}
        self.remove(name)
        return out

    def remove(self, name: str):
        docker("rm", "-f", "-v", name, check=False)
        # The server containers it ran exit when their stdin closes (--rm): wait for them, or
        # the network is still in use.
        for n in range(100):
            left = docker("ps", "-aq", "--filter", f"network={name}", check=False).split()
            if not left:
                break
            if n == 50:
                docker("rm", "-f", *left, check=False)
            time.sleep(0.1)
        docker("network", "rm", name, check=False)

    def close(self):
        for c in docker("ps", "-aq", "--filter", f"label={self.label}", check=False).split():
            docker("rm", "-f", "-v", c, check=False)
        for n in docker("network", "ls", "-q", "--filter", f"label={self.label}",
                        check=False).split():
            self.remove(n)


class FrontDoorContender:
    """A user's first MCP request through the front door; each round a new user."""

    name = "frontdoor"

    def __init__(self, gateway_image: str, docker: dict[str, str]):
        self.fd, self.tmp = make_frontdoor("10m", image=gateway_image, spawn_timeout="120s",
                                           docker=docker)
        install_catalog(self.fd, {SERVER: stdio_server(SERVER)})
        self.ctx = ssl.create_default_context(cafile=self.fd.cafile)

    def round(self, i: int) -> dict:
        token = self.fd.token(f"cold-{i}")
        self.fd.api("PUT", "/users/me/secrets", token, {f"{SERVER}.token": new_secret()})
        conn = http.client.HTTPSConnection("localhost", self.fd.port, context=self.ctx,
                                           timeout=150)
        conn.connect()  # a client's TLS handshake is not the front door's cold start
        t0 = time.perf_counter()
        status = first_response(conn, token)
        t_first = time.perf_counter()
        conn.close()
        assert status == 200, f"front door initialize: {status}"
        logs = self.fd.api_text("/users/me/gateway/logs?tail=10000", token)
        out = {"first_ms": (t_first - t0) * 1e3, **gateway_timings(logs)}
        self.fd.api("DELETE", "/users/me/gateway", token)
        deadline = time.time() + 60
        while self.fd.containers() and time.time() < deadline:
            time.sleep(0.1)
        return out

    def close(self):
        self.fd.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def report(results: dict[str, list[dict]]) -> str:
    keys = ["first_ms", "init_ms", "outside_ms", "tools_ms", "images_ms", "config_ms",
            "health_ms", "network_ms", "docker_run_ms"]
    lines = ["| contender | n | " + " | ".join(k.removesuffix("_ms") for k in keys) + " |",
             "|---|---:|" + "---:|" * len(keys)]
    for name, rounds in results.items():
        for r in rounds:
            if "init_ms" in r:
                r["outside_ms"] = r["first_ms"] - r["init_ms"]
        cells = []
        for k in keys:
            vals = [r[k] for r in rounds if k in r]
            cells.append(f"{statistics.median(vals):.0f}" if vals else "")
        lines.append(f"| {name} | {len(rounds)} | " + " | ".join(cells) + " |")
    if {"bare", "frontdoor"} <= results.keys():
        # Paired per round: both ran back to back on the same engine, so their difference is
        # less noisy than the difference of the medians.
        lines.append("")
        for key in ("first_ms", "outside_ms"):
            d = [f[key] - b[key] for f, b in zip(results["frontdoor"], results["bare"])
                 if key in f and key in b]
            if d:
                lines.append(f"front door - bare, {key.removesuffix('_ms')}, paired per round: "
                             f"median {statistics.median(d):+.0f} ms ({min(d):+.0f} to {max(d):+.0f})")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--contenders", default="bare,frontdoor")
    p.add_argument("--jsonl", default=str(ROOT / "target" / "bench" / "realgw-cold-start.jsonl"))
    p.add_argument("--fd-docker", action="append", default=[], metavar="KEY=YAML",
                   help="a gateways.docker key of the front door (default: "
                        f"{', '.join(f'{k}={v}' for k, v in ENGINE.items())}); an empty value "
                        "drops the key")
    args = p.parse_args()
    fd_docker = dict(ENGINE)
    for kv in args.fd_docker:
        key, _, value = kv.partition("=")
        if value:
            fd_docker[key] = value
        else:
            fd_docker.pop(key, None)
    try:
        gateway_image, _ = real_images()
    except BaseException as e:  # pytest's skip/fail outcomes carry the reason
        if type(e).__name__ in ("Skipped", "Failed"):
            print(f"realgw_cold_start: {e}", file=sys.stderr)
            return 2
        raise
    work = Path(tempfile.mkdtemp(prefix="realgw-cold-"))
    contenders = []
    try:
        for name in args.contenders.split(","):
            contenders.append(Bare(gateway_image, work) if name == "bare"
                              else FrontDoorContender(gateway_image, fd_docker))
        for c in contenders:  # warm-up: init volume, page cache, first image inspection
            c.round(0)
        results: dict[str, list[dict]] = {c.name: [] for c in contenders}
        Path(args.jsonl).parent.mkdir(parents=True, exist_ok=True)
        with open(args.jsonl, "w") as out:
            for i in range(1, args.rounds + 1):
                order = contenders if i % 2 else list(reversed(contenders))
                for c in order:
                    r = c.round(i)
                    results[c.name].append(r)
                    line = {"contender": c.name, "round": i, **{k: round(v, 1) for k, v in r.items()}}
                    out.write(json.dumps(line) + "\n")
                    print(json.dumps(line), file=sys.stderr)
        print(f"real gateway {gateway_image}, one stdio server, {args.rounds} rounds, medians in ms "
              f"(load {open('/proc/loadavg').read().split()[0]}); front door gateways.docker: "
              f"{fd_docker}")
        print(report(results))
        return 0
    finally:
        for c in contenders:
            c.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
