#!/usr/bin/env bash
# What the tests need besides Rust and Docker, installed once and skipped when present:
# rustfmt/clippy, the musl target (static test images), promtool (Debian's `prometheus`
# package: checks /metrics and the alert rules), chromium (Debian's package: the page's browser
# tests), nft (Debian's nftables: the isolation tests' bridge guard), and the Python venv at .venv with
# tests/requirements.txt (schemathesis, the official MCP Python SDK, openapi-spec-validator, Playwright). scripts/test.sh runs it
# first, so the test command works on a fresh machine; .ci/run does the same through test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { echo "setup: $*" >&2; }

# A no-op without network when both are installed.
rustup component add rustfmt clippy >&2
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  log "rustup target add x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl >&2
fi

# Debian packages some tests need: from apt when we may use it (root, apt-get present); else
# say why and go on (those tests then skip outside CI and fail under CI=true).
# apt_tool COMMAND PACKAGE WHY
apt_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install $2 (for $3)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >&2
  else
    log "$1 missing and apt-get not usable here (not root?): install Debian's $2 package for $3"
  fi
}

# promtool checks /metrics and the alert rules. Only the tool is wanted: on a host with
# systemd the package also starts a server on :9090.
if ! command -v promtool >/dev/null 2>&1; then
  apt_tool promtool prometheus "the promtool tests"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >&2 || true
  fi
fi
# The page's browser tests (tests/e2e/test_ui.py) drive Debian's chromium with Playwright
# (`executable_path`), so no browser is downloaded.
apt_tool chromium chromium "the page's browser tests"
# nft installs scripts/bridge-guard.sh's table in the isolation tests.
apt_tool nft nftables "the bridge guard of the isolation tests"
# HAProxy is the TCP balancer of deploy/replicas/ (scripts/build-balancer-image.sh), built from
# the host binary like the front door image.
apt_tool haproxy haproxy "the balancer image of the replicas deployment test"
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet haproxy 2>/dev/null; then
  systemctl disable --now haproxy >&2 || true
fi

# The venv is current when it was made from this exact requirements file.
stamp=.venv/.requirements.sha256
want="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  log "Python venv .venv with tests/requirements.txt"
  if ! python3 -m venv .venv >/dev/null 2>&1; then
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    python3 -m venv .venv
  fi
  .venv/bin/pip install -q --upgrade pip >&2
  .venv/bin/pip install -q -r tests/requirements.txt >&2
  echo "$want" >"$stamp"
fi
