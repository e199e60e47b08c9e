# Sourced by the compose deployment tests (compose-smoke.sh, compose-replicas-smoke.sh): what
# both do around `docker-compose up`. Expects $root (the repository) and set -euo pipefail.

# compose_setup INSTANCE: images built from this repository (nothing can be pulled in CI; a
# FRONTDOOR_IMAGE given beforehand is used as it is), the debug binary in $fd (tokens,
# certificates), free ports, fresh secrets and certificates.
compose_setup() {
  export FRONTDOOR_INSTANCE="$1"
  test-gateway/build-image.sh >/dev/null
  export FRONTDOOR_IMAGE="${FRONTDOOR_IMAGE:-$(scripts/build-frontdoor-image.sh)}"
  cargo build -q --bin mcp-frontdoor
  fd="${FRONTDOOR_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/mcp-frontdoor}"
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  export FRONTDOOR_PORT="$(free_port)" FRONTDOOR_METRICS_PORT="$(free_port)"
  export FRONTDOOR_JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
  export FRONTDOOR_MASTER_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
  export FRONTDOOR_PUBLIC_URL="https://localhost:$FRONTDOOR_PORT"
  mkdir -p certs
  "$fd" certs generate --out certs --host localhost >/dev/null
  # The front door in its container runs as uid 0 without capabilities, so it reads the 0600
  # key only when uid 0 owns it (README, Deployment): true when this runs as root, as in CI.
  # Elsewhere the throwaway test key is opened to everyone instead of asking for sudo.
  [[ "$(id -u)" == 0 ]] || chmod 0644 certs/key.pem
}

# instance_cleanup INSTANCE: removes every engine object labelled with the instance (and the
# socket directory the engine made for the policed API's bind), never anything else.
instance_cleanup() {
  local label="label=mcp-frontdoor.instance=$1" ids
  rmdir "/run/mcp-frontdoor/$1" 2>/dev/null || true
  ids="$(docker ps -aq --filter "$label")"
  [[ -n "$ids" ]] && docker rm -f $ids >/dev/null 2>&1 || true
  ids="$(docker network ls -q --filter "$label")"
  [[ -n "$ids" ]] && docker network rm $ids >/dev/null 2>&1 || true
  ids="$(docker volume ls -q --filter "$label")"
  [[ -n "$ids" ]] && docker volume rm $ids >/dev/null 2>&1 || true
  # The gateway image with the init that the front door made for this instance.
  ids="$(docker image ls -q --filter "$label")"
  [[ -n "$ids" ]] && docker image rm -f $ids >/dev/null 2>&1 || true
}

# leftovers INSTANCE PROJECT: what of the instance or the compose project is still there.
leftovers() {
  local label="label=mcp-frontdoor.instance=$1"
  docker ps -aq --filter "$label"; docker network ls -q --filter "$label"
  docker image ls -q --filter "$label"; docker volume ls -q --filter "$label"
  docker volume ls -q --filter "name=^${2}_"
}

# wait_ready PORT: the front door (or the balancer before it) answers /readyz over TLS.
wait_ready() {
  for _ in $(seq 150); do
    if python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="certs/cert.pem")
urllib.request.urlopen(f"https://localhost:{sys.argv[1]}/readyz", context=ctx, timeout=2).read()
PY
    sleep 0.2
  done
  return 1
}

# gateways_running INSTANCE: how many gateway containers of the instance run.
gateways_running() {
  docker ps -q --filter "label=mcp-frontdoor.instance=$1" | wc -l
}
