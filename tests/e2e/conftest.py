"""Fixtures for the end-to-end tests: a real front door process (TLS, Docker runtime, the test
gateway image) on free loopback ports, tokens minted by its own CLI, and clean-up of every
container, network and volume it started (by its unique instance label), even when a test fails."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# FRONTDOOR_BIN picks another build (the measurement scripts use a release binary).
BIN = Path(os.environ.get("FRONTDOOR_BIN")
           or Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "mcp-frontdoor")
IMAGE = os.environ.get("E2E_GATEWAY_IMAGE", "mcp-test-gateway:dev")


def docker_available() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True
    ).returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable(reason: str):
    """A prerequisite is missing: fail under CI=true, else skip and say why."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} and CI=true")
    pytest.skip(reason)


def docker_lines(docker: dict[str, str]) -> str:
    """Extra `gateways.docker` keys (values already YAML), one indented line each."""
    return "".join(f"    {k}: {v}\n" for k, v in docker.items())


class FrontDoor:
    def __init__(self, tmp: Path, idle_timeout: str, *, image: str = IMAGE,
                 spawn_timeout: str = "60s", docker: dict[str, str] | None = None,
                 replica_of: "FrontDoor | None" = None, ports: tuple[int, int] | None = None,
                 replicas: str = ""):
        """`docker`: extra `gateways.docker` keys; the default runs the test gateway non-root.
        `replica_of`: a second front door process on the same instance, data dir, TLS pair and
        keys as that one; `ports` (public, metrics) chosen beforehand, so a peer can be told
        them; `replicas`: the `replicas:` section (YAML flow mapping)."""
        if docker is None:
            # The test gateway runs no containers: no Docker API.
            docker = {"user": '"65532:65532"', "engine_for_gateways": "none"}
        self.tmp = tmp
        self.port, self.mport = ports or (free_port(), free_port())
        self.instance = replica_of.instance if replica_of else f"e2e-{os.getpid()}-{self.port}"
        self.url = f"https://localhost:{self.port}"
        base = replica_of.tmp if replica_of else tmp
        if replica_of is None:
            subprocess.run([BIN, "certs", "generate", "--out", tmp / "tls", "--host", "localhost"],
                           check=True, capture_output=True)
        self.cafile = str(base / "tls" / "cert.pem")
        (tmp / "hs").write_text("e2e-hs256-secret-that-is-long-enough-0123456789")
        (tmp / "mk").write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        self.config = tmp / "frontdoor.yaml"
        self.config.write_text(f"""
server:
  listen: 127.0.0.1:{self.port}
  tls: {{ cert: {base}/tls/cert.pem, key: {base}/tls/key.pem }}
  sse_keepalive: 5s
metrics: {{ listen: 127.0.0.1:{self.mport} }}
data_dir: {base}/data
auth: {{ issuer: e2e, audience: [e2e], hs256_secret_file: {tmp}/hs }}
secrets: {{ master_key_file: {tmp}/mk }}
{f"replicas: {replicas}" if replicas else ""}
gateways:
  idle_timeout: {idle_timeout}
  spawn_timeout: {spawn_timeout}
  docker:
    image: {image}
    instance: {self.instance}
{docker_lines(docker)}catalogs:
  # The users of these tests add servers of their own (the test gateway runs none of them).
  user_policy: {{ custom_servers: true, images: ["example/*"] }}
""")
        self.log = open(tmp / "frontdoor.log", "wb")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "RUST_LOG": os.environ.get("E2E_RUST_LOG", "info")})
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.get("/readyz")
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"front door exited: {(tmp / 'frontdoor.log').read_text()}")
                time.sleep(0.1)
        raise RuntimeError("front door not ready in 30 s")

    def get(self, path: str, token: str | None = None):
        req = urllib.request.Request(self.url + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        ctx = ssl.create_default_context(cafile=self.cafile)
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def request(self, method: str, path: str, token: str, body: dict | None = None,
                timeout: float = 60) -> tuple[int, bytes]:
        """Any status, no exception: (status, body bytes)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Content-Type", "application/json")
        ctx = ssl.create_default_context(cafile=self.cafile)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def api(self, method: str, path: str, token: str, body: dict | None = None):
        """A REST call that must succeed; its JSON body (None when empty)."""
        status, raw = self.request(method, "/api/v1" + path, token, body)
        assert 200 <= status < 300, f"{method} {path}: {status} {raw[:500]!r}"
        return json.loads(raw) if raw else None

    def api_text(self, path: str, token: str) -> str:
        status, raw = self.request("GET", "/api/v1" + path, token)
        assert status == 200, f"GET {path}: {status} {raw[:500]!r}"
        return raw.decode()

    def token(self, sub: str, teams=(), admin=False, ttl="1h") -> str:
        args = [BIN, "token", "--config", self.config, "--sub", sub, "--ttl", ttl]
        for t in teams:
            args += ["--team", t]
        if admin:
            args += ["--role", "admin"]
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()

    def containers(self) -> list[str]:
        out = subprocess.run(["docker", "ps", "-q", "--filter",
                              f"label=mcp-frontdoor.instance={self.instance}"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        label = f"label=mcp-frontdoor.instance={self.instance}"
        # Containers first: a network or volume in use cannot be removed. Containers a gateway
        # started itself (docker/mcp-gateway's MCP servers) carry no label of ours: they are
        # found by the instance's networks they are attached to.
        networks = subprocess.run(["docker", "network", "ls", "-q", "--filter", label],
                                  capture_output=True, text=True).stdout.split()
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", label],
                             capture_output=True, text=True).stdout.split()
        for net in networks:
            ids += subprocess.run(["docker", "ps", "-aq", "--filter", f"network={net}"],
                                  capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", "-v"] + sorted(set(ids)), capture_output=True)
        # Images too: the gateway image the front door derives (init layer) is the instance's.
        for ls, rm in ((["docker", "network", "ls", "-q"], ["docker", "network", "rm"]),
                       (["docker", "volume", "ls", "-q"], ["docker", "volume", "rm"]),
                       (["docker", "image", "ls", "-q"], ["docker", "image", "rm", "-f"])):
            ids = subprocess.run(ls + ["--filter", label], capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run(rm + ids, capture_output=True)


def make_frontdoor(idle_timeout: str, **kw):
    if not docker_available():
        unavailable("Docker is not reachable: end-to-end tests need it")
    if not BIN.exists():
        pytest.fail(f"{BIN} missing: run `cargo build` first")
    tmp = Path(tempfile.mkdtemp(prefix="fd-e2e-"))
    fd = FrontDoor(tmp, idle_timeout, **kw)
    return fd, tmp


def running_frontdoor(idle_timeout: str, **kw):
    """A front door for a fixture's lifetime; stopped and cleaned up even when a test fails.
    `kw` goes to FrontDoor (image, spawn_timeout, docker keys)."""
    fd, tmp = make_frontdoor(idle_timeout, **kw)
    try:
        yield fd
    finally:
        fd.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def frontdoor():
    yield from running_frontdoor("10m")


@pytest.fixture
def short_idle_frontdoor():
    yield from running_frontdoor("4s")
