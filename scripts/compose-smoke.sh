#!/usr/bin/env bash
# Deploys docker-compose.yml for real (with the CI override's locally built images), sends an
# MCP session through it with the official Python SDK, and tears everything down, including
# the per-user gateway containers and networks the front door started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
compose=(docker-compose -p "mcpfd-smoke-$$" -f docker-compose.yml -f docker-compose.ci.yml)
# docker-compose.yml names the policed API's host directory after the instance
# (/run/mcp-frontdoor/<instance>): this run's own, never a real deployment's `default`.
instance=compose-ci

# shellcheck source=scripts/compose-lib.sh
source scripts/compose-lib.sh
compose_setup "$instance"

cleanup() {
  if [[ -n "$("${compose[@]}" ps -q frontdoor 2>/dev/null)" ]]; then
    "${compose[@]}" logs --no-color frontdoor > "${SMOKE_LOG:-/tmp/compose-smoke.log}" 2>&1 || true
  fi
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  instance_cleanup "$instance"
}
trap cleanup EXIT

echo "compose-smoke: the build context leaves out secrets, keys, data and build output" >&2
scripts/check-build-context.sh

echo "compose-smoke: validating docker-compose.yml" >&2
"${compose[@]}" config -q
echo "compose-smoke: up on port $FRONTDOOR_PORT" >&2
"${compose[@]}" up -d --no-build

wait_ready "$FRONTDOOR_PORT" \
  || { echo "compose-smoke: the front door did not become ready" >&2; "${compose[@]}" logs --no-color >&2; exit 1; }

token="$(FRONTDOOR_AUTH__HS256_SECRET_ENV=FRONTDOOR_JWT_SECRET "$fd" token --config config/compose.yaml --sub smoke-user --ttl 10m)"
echo "compose-smoke: MCP session through the deployed front door" >&2
"$venv/bin/python" tests/e2e/mcp_check.py --url "https://localhost:$FRONTDOOR_PORT" \
  --token "$token" --cafile certs/cert.pem --progress 3 --interval-ms 50
running="$(gateways_running "$instance")"
[[ "$running" -eq 1 ]] || { echo "compose-smoke: expected 1 gateway container, found $running" >&2; exit 1; }
[[ -n "$(docker image ls -q --filter "label=mcp-frontdoor.instance=$instance")" ]] \
  || { echo "compose-smoke: no derived gateway image of the instance" >&2; exit 1; }

# The documented teardown: nothing of the instance may be left (config/compose.yaml sets
# gateways.stop_on_shutdown, so the front door removes its gateways when compose stops it).
echo "compose-smoke: docker-compose down -v leaves nothing behind" >&2
"${compose[@]}" logs --no-color frontdoor > "${SMOKE_LOG:-/tmp/compose-smoke.log}" 2>&1 || true
"${compose[@]}" down -v
left="$(leftovers "$instance" "${compose[2]}")"
[[ -z "$left" ]] || { echo "compose-smoke: left behind after down: $left" >&2; exit 1; }
echo "compose-smoke: ok" >&2
