"""What the real-gateway tests (test_real_gateway.py) and the cold-start measurement
(scripts/realgw_cold_start.py) share: the two images, the catalog entry of the stdio test server,
test secrets, and reading the real gateway's own timings from its log.

The real gateway is docker/mcp-gateway built from source in `../shared/real-gateway/`
(`make-image.sh` makes the image offline); the stdio server is this repository's test gateway
in `stdio` mode (`test-gateway/build-image.sh` makes `mcp-test-stdio:dev`).
"""

import hashlib
import os
import random
import re
import string
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, docker_available, unavailable

REAL_GATEWAY_DIR = Path(os.environ.get("REAL_GATEWAY_DIR", ROOT.parent / "shared" / "real-gateway"))
STDIO_IMAGE = os.environ.get("E2E_STDIO_IMAGE", "mcp-test-stdio:dev")
# The `gateways.docker` keys a front door needs for the real gateway (beyond the image): the
# gateway runs its MCP servers through a Docker API, its own policed one (issue 11; the
# default, spelled out here).
ENGINE = {"engine_for_gateways": "policed"}
# The real gateway's dynamic management tools (an empty --servers= turns them on).
DYNAMIC_TOOLS = {"mcp-add", "mcp-find", "mcp-remove", "mcp-exec", "mcp-config-set", "code-mode",
                 "mcp-activate-profile", "mcp-create-profile"}
# The variable the stdio server's `secret_hash` reads; the catalog maps the secret onto it.
SECRET_ENV = "HASH_SECRET"

_images: tuple[str, str] | None = None


def real_images() -> tuple[str, str]:
    """(real gateway image, stdio server image), made once per process. Skips (fails under
    CI=true) when Docker, the real gateway's files or the stdio image are missing."""
    global _images
    if _images:
        return _images
    if not docker_available():
        unavailable("Docker is not reachable: the real-gateway tests need it")
    script = REAL_GATEWAY_DIR / "make-image.sh"
    if not script.exists():
        unavailable(f"{script} is missing: the real docker/mcp-gateway's files are not beside "
                    "this repository (set REAL_GATEWAY_DIR)")
    env = dict(os.environ)
    if os.environ.get("E2E_REAL_GATEWAY_IMAGE"):
        env["IMAGE"] = os.environ["E2E_REAL_GATEWAY_IMAGE"]
    # Idempotent: returns at once when the image already holds this binary.
    # Through bash: a copy of shared/ may come without execute bits.
    made = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    if made.returncode != 0:
        pytest.fail(f"{script} failed ({made.returncode}): {made.stderr[-2000:]}")
    gateway_image = made.stdout.strip().splitlines()[-1]
    if subprocess.run(["docker", "image", "inspect", STDIO_IMAGE], capture_output=True).returncode:
        unavailable(f"image {STDIO_IMAGE} is missing: run test-gateway/build-image.sh")
    _images = (gateway_image, STDIO_IMAGE)
    return _images


def stdio_server(name: str, *args: str, **fields) -> dict:
    """A catalog entry for the stdio test server; its secret `<name>.token` reaches it as
    $HASH_SECRET (the real gateway passes secrets as environment variables), which
    `secret_hash` reads. `args` follow `stdio` on its command line."""
    return {"title": f"stdio test server {name}", "type": "server", "image": STDIO_IMAGE,
            "command": [f"--secret-env={SECRET_ENV}", *args],
            "secrets": [{"name": f"{name}.token", "env": SECRET_ENV}], **fields}


def install_catalog(fd, servers: dict) -> None:
    """Replaces the seeded example catalogs with one base catalog of `servers`, so a run
    depends only on images it has."""
    admin = fd.token("rg-admin", admin=True)
    for c in fd.api("GET", "/catalogs/base?limit=1000", admin)["items"]:
        fd.api("DELETE", f"/catalogs/base/{c['name']}", admin)
    fd.api("PUT", "/catalogs/base/realgw", admin,
           {"name": "realgw", "displayName": "real gateway e2e", "registry": servers})


def new_secret() -> str:
    """24 characters in groups of upper, lower, digit and one of `~^`: every 4-character
    fragment then mixes classes no log line has by chance, so a hit in a log is a leak."""
    rnd = random.SystemRandom()
    return "".join(rnd.choice(string.ascii_uppercase) + rnd.choice(string.ascii_lowercase)
                   + rnd.choice(string.digits) + rnd.choice("~^") for _ in range(6))


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


_GO_UNITS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|µs|us|ms|s|m|h)")


def go_duration_ms(text: str) -> float:
    """Go's time.Duration text (`1.170565498s`, `7.99ms`, `1m2.5s`, `451.596µs`) in ms."""
    parts = _GO_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


# The real gateway's own step timings (pkg/gateway/run.go, pull.go, reload.go at 2bd20fe).
_TIMINGS = {
    "config_ms": re.compile(r"- Configuration read in (\S+)$"),
    "images_ms": re.compile(r"> Images pulled in (\S+)$"),  # inspect; pulls only when missing
    "tools_ms": re.compile(r"> \d+ tools listed in (\S+)$"),  # runs every server, lists tools
    "init_ms": re.compile(r"> Initialized in (\S+)$"),  # from its listen to ready
}


def gateway_timings(log: str) -> dict[str, float]:
    """The first of each timing line in a real gateway's log, in ms (absent ones left out)."""
    out: dict[str, float] = {}
    for line in log.splitlines():
        line = line.strip()
        for key, rx in _TIMINGS.items():
            m = rx.search(line)  # log lines may carry a timestamp prefix
            if m and key not in out:
                out[key] = go_duration_ms(m.group(1))
    return out
