"""End to end against the real docker/mcp-gateway (issues 9 and 11): the front door binary with
`gateways.docker.image` = the image `../shared/real-gateway/make-image.sh` builds, each gateway
running its MCP servers through its own policed Docker API (`engine_for_gateways: policed`,
never the host's socket), a base catalog naming the stdio MCP server image built from this
repository (`mcp-test-stdio:dev`, `test-gateway/build-image.sh`), and the official MCP Python SDK.

Secrets are random per test and never printed: servers report a SHA-256 of the value they got
(`secret_hash`), and leak checks report counts and line numbers, not the text.

Outside CI the module skips, saying why, when Docker, the real gateway's files or the stdio
image are missing; under CI=true that is a failure.
"""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).parent))
import mcp_check  # noqa: E402
from conftest import running_frontdoor  # noqa: E402
from realgw import (DYNAMIC_TOOLS, ENGINE, SECRET_ENV, install_catalog, new_secret,  # noqa: E402
                    real_images, sha256, stdio_server)

# Server names unique to this run: leftovers are also searched for engine-wide by the label the
# real gateway gives its server containers (docker-mcp-name).
LINGERER, STALLER = f"lingerer-{os.getpid()}", f"staller-{os.getpid()}"
PARTIAL = f"partial-{os.getpid()}"
# An image no engine has and no registry serves (this run's own name, so nothing can pull it),
# and an unpinned Docker Hub `mcp/*` image, which the real gateway refuses by its own rule.
ABSENT_IMAGE = f"frontdoor-test/absent-{os.getpid()}-{uuid.uuid4().hex[:8]}:1"
REFUSED_IMAGE = "mcp/fetch:latest"


def assert_no_fragment(text: str, secret: str, where: str):
    """No substring of `secret` of 4 or more characters in `text`; the failure names line
    numbers only."""
    frags = {secret[i:i + 4] for i in range(len(secret) - 3)}
    lines = [n for n, line in enumerate(text.splitlines(), 1) if any(f in line for f in frags)]
    assert not lines, f"a fragment of a secret is in {where}, line(s) {lines[:20]}"


def docker_ids(*args: str) -> list[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
    return out.split()


def exists(kind: str, ident: str) -> bool:
    return subprocess.run(["docker", kind, "inspect", ident], capture_output=True).returncode == 0


class Remains:
    """Everything of one front door instance that should be gone once its only gateway is
    (containers, networks, volumes; the derived gateway image stays for the next start): found
    by the instance label, the network name, and the objects seen while the gateway lived (its
    anonymous volumes, e.g. the real image's `VOLUME /misc`)."""

    def __init__(self, fd, server_name: str):
        self.fd, self.server_name = fd, server_name
        self.label = f"label=mcp-frontdoor.instance={fd.instance}"
        self.containers: set[str] = set()
        self.servers: set[str] = set()
        self.networks: set[str] = set()
        self.volumes: set[str] = set()

    def record(self):
        """Notes the instance's gateway containers, their anonymous volumes, their networks and
        the MCP server containers on those networks (the real gateway labels them docker-mcp)."""
        for c in docker_ids("ps", "-aq", "--filter", self.label):
            self.containers.add(c)
            fmt = '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}'
            out = subprocess.run(["docker", "inspect", "-f", fmt, c], capture_output=True, text=True)
            self.volumes.update(out.stdout.split())
        for n in docker_ids("network", "ls", "--filter", self.label, "--format", "{{.Name}}"):
            self.networks.add(n)
            self.servers.update(docker_ids("ps", "-aq", "--filter", f"network={n}",
                                           "--filter", "label=docker-mcp=true"))

    def left(self) -> list[str]:
        prefix = f"mcp-fd-{self.fd.instance}-"
        left = [f"container {c}" for c in docker_ids("ps", "-aq", "--filter", self.label)]
        left += [f"network {n}" for n in docker_ids("network", "ls", "--format", "{{.Name}}",
                                                     "--filter", f"name={prefix}")]
        left += [f"network {n}" for n in self.networks if exists("network", n)]
        left += [f"server container {c}" for c in self.servers if exists("container", c)]
        left += [f"server container {c}" for c in docker_ids(
            "ps", "-aq", "--filter", "label=docker-mcp=true",
            "--filter", f"label=docker-mcp-name={self.server_name}")]
        left += [f"volume {v}" for v in self.volumes if exists("volume", v)]
        left += [f"volume {v}" for v in docker_ids("volume", "ls", "-q", "--filter", self.label)]
        return sorted(set(left))

    def purge(self):
        """Removes the server containers this test saw or named, whatever the outcome (the
        fixture's clean-up finds only those still on the instance's networks)."""
        ids = self.servers | set(docker_ids("ps", "-aq", "--filter", "label=docker-mcp=true",
                                             "--filter", f"label=docker-mcp-name={self.server_name}"))
        if ids:
            subprocess.run(["docker", "rm", "-f", "-v", *sorted(ids)], capture_output=True)

    def wait_gone(self, seconds: float) -> list[str]:
        deadline = time.time() + seconds
        while (left := self.left()) and time.time() < deadline:
            time.sleep(0.5)
        return left


async def session(fd, token: str, *, calls=("secret_hash",), terminate=True) -> dict:
    """One MCP session through the front door: tool names, then each call's text."""
    async with mcp_check.http_client(token, fd.cafile, False) as hc:
        async with streamable_http_client(fd.url + "/mcp", http_client=hc,
                                          terminate_on_close=terminate) as (r, w, *_):
            async with ClientSession(r, w) as s:
                await s.initialize()
                out = {"tools": sorted(t.name for t in (await s.list_tools()).tools)}
                for name in calls:
                    out[name] = mcp_check.text_of(await s.call_tool(name, {}))
                return out


def realgw_frontdoor(idle_timeout: str, spawn_timeout: str, servers: dict,
                     docker: dict[str, str] | None = None):
    """A front door running the real gateway with a base catalog of `servers`; `docker`: more
    `gateways.docker` keys (values already YAML) beside ENGINE."""
    gateway_image, _ = real_images()
    fds = running_frontdoor(idle_timeout, image=gateway_image, spawn_timeout=spawn_timeout,
                            docker={**ENGINE, **(docker or {})})
    fd = next(fds)
    try:
        install_catalog(fd, servers)
        yield fd
    finally:
        fds.close()


@pytest.fixture(scope="module")
def realgw():
    yield from realgw_frontdoor("10m", "60s", {"hashsrv": stdio_server("hashsrv")})


# --- tests --------------------------------------------------------------------------------

def each_users_own_secret(fd, users):
    """Gives each user a fresh secret, opens all their sessions at once, and checks that each
    user's server hashed that user's own secret. Returns the users' tokens."""
    tokens = {u: fd.token(u) for u in users}
    hashes = {}
    for u in users:
        value = new_secret()
        hashes[u] = sha256(value)
        fd.api("PUT", "/users/me/secrets", tokens[u], {"hashsrv.token": value})

    async def all_at_once():
        return await asyncio.gather(*(session(fd, tokens[u]) for u in users))

    results = dict(zip(users, asyncio.run(all_at_once())))
    for u, out in results.items():
        assert out["tools"] == ["echo", "secret_hash", "whoami"], (u, out["tools"])
        got = json.loads(out["secret_hash"])
        assert got["env"] == SECRET_ENV and got["set"] is True, (u, got)
        assert got["sha256"] == hashes[u], f"{u}'s server did not get {u}'s secret"
    assert len(set(hashes.values())) == len(users)
    return tokens


def test_two_users_at_once_each_server_sees_its_own_users_secret(realgw):
    fd, users = realgw, ["rg-ann", "rg-bob"]
    tokens = each_users_own_secret(fd, users)
    # Each user has a gateway of their own.
    status = {u: fd.api("GET", "/users/me/gateway", tokens[u]) for u in users}
    assert all(st["state"] == "ready" for st in status.values()), status
    assert status["rg-ann"]["container"] != status["rg-bob"]["container"], status
    for u in users:
        # Its own socket directory at /var/run, never the host's engine socket.
        mounts = subprocess.run(["docker", "inspect", "-f",
                                 "{{range .Mounts}}{{.Source}}->{{.Destination}} {{end}}",
                                 status[u]["container"]], capture_output=True, text=True).stdout
        assert f"gateway-api/{u}->/var/run" in mounts and "docker.sock" not in mounts, (u, mounts)
    # The servers ran through the policed API: labelled as their user's by the front door.
    users_of_servers = docker_ids("ps", "-a", "--filter", f"label=mcp-frontdoor.instance={fd.instance}",
                                  "--filter", "label=mcp-frontdoor.role=server",
                                  "--format", '{{.Label "mcp-frontdoor.user"}}')
    assert set(users_of_servers) <= set(users), users_of_servers


def test_a_user_with_no_servers_sees_no_tools(realgw):
    fd = realgw
    token = fd.token("rg-empty")
    fd.api("PUT", "/users/me/catalogs", token, {"overrides": {"hashsrv": False}})
    merged = fd.api("GET", "/users/me/catalogs?include=merged", token)
    assert "hashsrv" not in json.dumps(merged["merged"]), merged
    # `origins` still lists the server it switched off: where it would come from.
    assert merged["origins"] == {"hashsrv": "base:realgw"}, merged

    out = asyncio.run(session(fd, token, calls=()))
    assert not set(out["tools"]) & DYNAMIC_TOOLS, f"dynamic management tools: {out['tools']}"
    assert out["tools"] == [], out["tools"]


def test_gateway_logs_hold_no_fragment_of_a_secret(realgw):
    fd = realgw
    token = fd.token("rg-logs")
    value = new_secret()
    fd.api("PUT", "/users/me/secrets", token, {"hashsrv.token": value})
    out = asyncio.run(session(fd, token))
    assert json.loads(out["secret_hash"])["sha256"] == sha256(value)

    logs = fd.api_text("/users/me/gateway/logs?tail=10000", token)
    # The real gateway's own lines, so an empty or foreign log cannot pass.
    assert "hashsrv" in logs and "tools listed" in logs, f"{len(logs)} bytes of logs"
    assert_no_fragment(logs, value, "GET /users/me/gateway/logs")
    assert_no_fragment((fd.tmp / "frontdoor.log").read_text(errors="replace"), value,
                       "the front door's own log")


@pytest.fixture
def realgw_idle():
    # A server that keeps running for 10 minutes after its stdin closes, as servers with open
    # handles do. `longLived`: the gateway keeps it for the session (else it stops it itself
    # 5 s after each call, SIGTERM through the docker CLI), so it is up when the gateway is
    # stopped, and only the front door removing it frees the user's network.
    yield from realgw_frontdoor("5s", "60s", {
        LINGERER: stdio_server(LINGERER, "--linger-ms=600000", longLived=True)})


def test_an_idle_stop_leaves_no_container_network_or_volume(realgw_idle):
    fd = realgw_idle
    token = fd.token("rg-idle")
    value = new_secret()
    fd.api("PUT", "/users/me/secrets", token, {f"{LINGERER}.token": value})
    remains = Remains(fd, LINGERER)
    try:
        # The client goes away without ending its session (no DELETE), as a closed laptop does.
        out = asyncio.run(session(fd, token, terminate=False))
        assert json.loads(out["secret_hash"])["sha256"] == sha256(value)
        remains.record()
        assert remains.containers and remains.networks, "no gateway seen"
        assert remains.volumes, "no anonymous volume seen (the image declares VOLUME /misc)"
        assert remains.servers, "no MCP server container seen on the user's network"

        deadline = time.time() + 60
        while fd.containers() and time.time() < deadline:
            time.sleep(0.5)
        assert not fd.containers(), "the gateway was not stopped when idle"
        left = remains.wait_gone(30)
        assert not left, f"left behind after the idle stop: {left}"
    finally:
        remains.purge()


@pytest.fixture
def realgw_stalling():
    # The gateway answers /health only after it has listed every server's tools; this server
    # never answers, so the start runs into spawn_timeout.
    yield from realgw_frontdoor("10m", "8s", {STALLER: stdio_server(STALLER, "--start-delay-ms=600000")})


def test_a_failed_start_leaves_no_container_network_or_volume(realgw_stalling):
    fd = realgw_stalling
    token = fd.token("rg-stall")
    remains = Remains(fd, STALLER)
    done = threading.Event()

    def watch():  # what the start makes, while it makes it
        while not done.is_set():
            remains.record()
            time.sleep(0.3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        try:
            t = time.time()
            status, body = fd.request("POST", "/api/v1/users/me/gateway", token, timeout=120)
        finally:
            done.set()
            watcher.join()
        assert status == 503, (status, body[:500])
        assert 7 <= time.time() - t < 60, "the start should fail at spawn_timeout (8 s)"
        assert json.loads(body)["error"], body
        assert remains.containers and remains.networks, "no gateway seen while it started"
        assert remains.servers, "no MCP server container seen on the user's network"

        left = remains.wait_gone(30)
        assert not left, f"left behind after the failed start: {left}"
    finally:
        remains.purge()


@pytest.fixture
def realgw_partial():
    # One server the gateway can run, one whose image is nowhere, one the gateway refuses.
    # `longLived`: the working server stays up for the session, so the status can show it.
    yield from realgw_frontdoor("10m", "60s", {
        PARTIAL: stdio_server(PARTIAL, longLived=True),
        "absent": {"title": "absent image", "type": "server", "image": ABSENT_IMAGE},
        "fetch": {"title": "unpinned mcp/fetch", "type": "server", "image": REFUSED_IMAGE},
    })


def test_servers_whose_image_is_missing_or_refused_are_left_out_and_the_rest_serve(realgw_partial):
    fd = realgw_partial
    if exists("image", ABSENT_IMAGE):
        pytest.fail(f"{ABSENT_IMAGE} exists on the engine: the test needs it absent")
    token = fd.token("rg-partial")
    value = new_secret()
    fd.api("PUT", "/users/me/secrets", token, {f"{PARTIAL}.token": value})
    remains = Remains(fd, PARTIAL)
    try:
        # Without the check the gateway would exit on the first image it cannot pull or verify,
        # and this session would fail with it.
        out = asyncio.run(session(fd, token, terminate=False))
        assert out["tools"] == ["echo", "secret_hash", "whoami"], out["tools"]
        assert json.loads(out["secret_hash"])["sha256"] == sha256(value)

        st = fd.api("GET", "/users/me/gateway", token)
        assert st["state"] == "ready", st
        reasons = {u["server"]: u["reason"] for u in st["unavailable_servers"]}
        assert set(reasons) == {"absent", "fetch"}, st["unavailable_servers"]
        assert ABSENT_IMAGE in reasons["absent"] and "pulled" in reasons["absent"], reasons
        assert REFUSED_IMAGE in reasons["fetch"] and "digest" in reasons["fetch"], reasons
        assert st["server_containers"], f"no server container in the status: {st}"
        # The working server runs (as a container the gateway started), the others do not.
        remains.record()
        assert remains.containers and remains.networks, "no gateway seen"
        assert remains.servers, "no MCP server container seen on the user's network"
        assert not exists("image", ABSENT_IMAGE), "the absent image appeared"

        # Stopped through the API: the front door removes the server container with it.
        fd.api("DELETE", "/users/me/gateway", token)
        left = remains.wait_gone(30)
        assert not left, f"left behind after the stop: {left}"
    finally:
        remains.purge()


@pytest.fixture(scope="module")
def realgw_nonroot():
    yield from realgw_frontdoor("10m", "60s", {"hashsrv": stdio_server("hashsrv")},
                                docker={"user": '"65532:65532"'})


def test_a_non_root_real_gateway_serves_each_users_own_secret(realgw_nonroot):
    fd = realgw_nonroot
    users = ["rg-nr-ann", "rg-nr-bob"]
    tokens = each_users_own_secret(fd, users)
    # The gateway's processes (the init and docker-mcp) really run as that user.
    for u in users:
        name = fd.api("GET", "/users/me/gateway", tokens[u])["container"]
        top = subprocess.run(["docker", "top", name, "-eo", "pid,uid,gid,args"],
                             capture_output=True, text=True, check=True).stdout.splitlines()[1:]
        procs = [line.split(None, 3) for line in top]
        assert any("/docker-mcp" in p[3] for p in procs), (u, top)
        assert all(p[1:3] == ["65532", "65532"] for p in procs), (u, top)
        logs = fd.api_text("/users/me/gateway/logs?tail=10000", tokens[u])
        assert "tools listed" in logs and "permission denied" not in logs.lower(), (u, logs[-2000:])
