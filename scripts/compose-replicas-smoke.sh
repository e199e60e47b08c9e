#!/usr/bin/env bash
# Deploys deploy/replicas/docker-compose.yml for real (two front door replicas behind the
# HAProxy balancer, locally built images), runs one MCP session through the balancer with the
# official Python SDK while each replica in turn is killed, checks that one gateway served it
# all, and tears everything down.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
project="mcpfd-replicas-$$"
compose=(docker-compose --project-directory . -p "$project"
  -f deploy/replicas/docker-compose.yml -f deploy/replicas/docker-compose.ci.yml)
instance=compose-replicas-ci

# shellcheck source=scripts/compose-lib.sh
source scripts/compose-lib.sh
compose_setup "$instance"
export GATEWAY_IMAGE=mcp-test-gateway:dev
export BALANCER_IMAGE="$(scripts/build-balancer-image.sh)"

save_logs() {
  "${compose[@]}" logs --no-color > "${SMOKE_LOG:-/tmp/compose-replicas-smoke.log}" 2>&1 || true
}
cleanup() {
  [[ -n "$("${compose[@]}" ps -q 2>/dev/null)" ]] && save_logs
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  instance_cleanup "$instance"
}
trap cleanup EXIT

"${compose[@]}" config -q
echo "compose-replicas-smoke: two replicas and the balancer, on port $FRONTDOOR_PORT" >&2
"${compose[@]}" up -d --no-build
wait_ready "$FRONTDOOR_PORT" \
  || { echo "compose-replicas-smoke: not ready" >&2; "${compose[@]}" logs --no-color >&2; exit 1; }

token="$(FRONTDOOR_AUTH__HS256_SECRET_ENV=FRONTDOOR_JWT_SECRET "$fd" token --config deploy/replicas/frontdoor.yaml --sub roaming-user --ttl 10m)"
a="$("${compose[@]}" ps -q frontdoor-a)" b="$("${compose[@]}" ps -q frontdoor-b)"
echo "compose-replicas-smoke: one MCP session while A, then B, is killed" >&2
"$venv/bin/python" scripts/replicas_check.py --url "https://localhost:$FRONTDOOR_PORT" \
  --token "$token" --cafile certs/cert.pem \
  --kill "docker kill $a" --revive "docker start $a" --kill "docker kill $b"
running="$(gateways_running "$instance")"
[[ "$running" -eq 1 ]] || { echo "compose-replicas-smoke: expected 1 gateway container, found $running" >&2; exit 1; }

# stop_on_shutdown is refused with peers, so the gateways outlive the replicas: the
# documented teardown (README, Replicas) removes them with `gateways stop-all`.
echo "compose-replicas-smoke: down, then gateways stop-all, leaves nothing behind" >&2
save_logs
"${compose[@]}" stop
"${compose[@]}" run --rm --no-deps frontdoor-a gateways stop-all --config /etc/mcp-frontdoor/frontdoor.yaml >&2
"${compose[@]}" down -v
left="$(leftovers "$instance" "$project")"
[[ -z "$left" ]] || { echo "compose-replicas-smoke: left behind after down: $left" >&2; exit 1; }
echo "compose-replicas-smoke: ok" >&2
