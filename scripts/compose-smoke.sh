#!/usr/bin/env bash
# Deploys docker-compose.yml for real (with the CI override's locally built images), sends an
# MCP session through it with the official Python SDK, and tears everything down, including
# the per-user gateway containers and networks the front door started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
compose=(docker-compose -p "mcpfd-smoke-$$" -f docker-compose.yml -f docker-compose.ci.yml)
instance=compose-ci
# docker-compose.yml names the policed API's host directory after the instance
# (/run/mcp-frontdoor/<instance>): this run's own, never a real deployment's `default`.
export FRONTDOOR_INSTANCE="$instance"

test-gateway/build-image.sh >/dev/null
scripts/build-frontdoor-image.sh >/dev/null
cargo build -q --bin mcp-frontdoor
fd="${CARGO_TARGET_DIR:-$root/target}/debug/mcp-frontdoor"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export FRONTDOOR_PORT="$(free_port)" FRONTDOOR_METRICS_PORT="$(free_port)"
export FRONTDOOR_JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
export FRONTDOOR_MASTER_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
export FRONTDOOR_PUBLIC_URL="https://localhost:$FRONTDOOR_PORT"

mkdir -p certs
"$fd" certs generate --out certs --host localhost >/dev/null
# The front door in its container runs as uid 0 without capabilities, so it reads the 0600 key
# only when uid 0 owns it (README, Deployment): true when this runs as root, as in CI.
# Elsewhere the throwaway test key is opened to everyone instead of asking for sudo.
[[ "$(id -u)" == 0 ]] || chmod 0644 certs/key.pem

cleanup() {
  if [[ -n "$("${compose[@]}" ps -q frontdoor 2>/dev/null)" ]]; then
    "${compose[@]}" logs --no-color frontdoor > "${SMOKE_LOG:-/tmp/compose-smoke.log}" 2>&1 || true
  fi
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  # The (empty, once the gateways are gone) socket directory the engine made for the bind.
  rmdir "/run/mcp-frontdoor/$instance" 2>/dev/null || true
  ids="$(docker ps -aq --filter "label=mcp-frontdoor.instance=$instance")"
  [[ -n "$ids" ]] && docker rm -f $ids >/dev/null 2>&1 || true
  nets="$(docker network ls -q --filter "label=mcp-frontdoor.instance=$instance")"
  [[ -n "$nets" ]] && docker network rm $nets >/dev/null 2>&1 || true
  vols="$(docker volume ls -q --filter "label=mcp-frontdoor.instance=$instance")"
  [[ -n "$vols" ]] && docker volume rm $vols >/dev/null 2>&1 || true
  # The gateway image with the init that the front door made for this instance.
  imgs="$(docker image ls -q --filter "label=mcp-frontdoor.instance=$instance")"
  [[ -n "$imgs" ]] && docker image rm -f $imgs >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "compose-smoke: the build context leaves out secrets, keys, data and build output" >&2
scripts/check-build-context.sh

echo "compose-smoke: validating docker-compose.yml" >&2
"${compose[@]}" config -q
echo "compose-smoke: up on port $FRONTDOOR_PORT" >&2
"${compose[@]}" up -d --no-build

ok=""
for _ in $(seq 150); do
  if python3 - "$FRONTDOOR_PORT" <<'PY' 2>/dev/null; then ok=1; break; fi
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="certs/cert.pem")
urllib.request.urlopen(f"https://localhost:{sys.argv[1]}/readyz", context=ctx, timeout=2).read()
PY
  sleep 0.2
done
[[ -n "$ok" ]] || { echo "compose-smoke: the front door did not become ready" >&2; "${compose[@]}" logs --no-color >&2; exit 1; }

token="$(FRONTDOOR_AUTH__HS256_SECRET_ENV=FRONTDOOR_JWT_SECRET "$fd" token --config config/compose.yaml --sub smoke-user --ttl 10m)"
echo "compose-smoke: MCP session through the deployed front door" >&2
"$venv/bin/python" tests/e2e/mcp_check.py --url "https://localhost:$FRONTDOOR_PORT" \
  --token "$token" --cafile certs/cert.pem --progress 3 --interval-ms 50
running="$(docker ps -q --filter "label=mcp-frontdoor.instance=$instance" | wc -l)"
[[ "$running" -eq 1 ]] || { echo "compose-smoke: expected 1 gateway container, found $running" >&2; exit 1; }
[[ -n "$(docker image ls -q --filter "label=mcp-frontdoor.instance=$instance")" ]] \
  || { echo "compose-smoke: no derived gateway image of the instance" >&2; exit 1; }

# The documented teardown: nothing of the instance may be left (config/compose.yaml sets
# gateways.stop_on_shutdown, so the front door removes its gateways when compose stops it).
echo "compose-smoke: docker-compose down -v leaves nothing behind" >&2
"${compose[@]}" logs --no-color frontdoor > "${SMOKE_LOG:-/tmp/compose-smoke.log}" 2>&1 || true
"${compose[@]}" down -v
label="label=mcp-frontdoor.instance=$instance"
left="$(docker ps -aq --filter "$label"; docker network ls -q --filter "$label"; \
  docker image ls -q --filter "$label"; docker volume ls -q --filter "$label"; \
  docker volume ls -q --filter "name=^${compose[2]}_")"
[[ -z "$left" ]] || { echo "compose-smoke: left behind after down: $left" >&2; exit 1; }
echo "compose-smoke: ok" >&2
