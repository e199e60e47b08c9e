#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document with schemathesis: every generated request,
# valid or not, must get a non-5xx answer that matches the document. Runs a real
# `serve --dev` front door (TLS, admin token) on free loopback ports with a throwaway data dir.
#
#   scripts/fuzz-api.sh                 # FUZZ_EXAMPLES=40 by default, FUZZ_MAX_TIME=180 s
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
st="$venv/bin/schemathesis"
[[ -x "$st" ]] || { echo "fuzz-api: $st missing; create the venv: python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt" >&2; exit 1; }

(cd "$root" && cargo build -q --bin mcp-frontdoor)
bin="${CARGO_TARGET_DIR:-$root/target}/debug/mcp-frontdoor"
tmp="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"; mport="$(free_port)"

# A fixed (dead) upstream: gateway control answers 409 instead of starting containers for
# thousands of generated user names.
FRONTDOOR_DATA_DIR="$tmp/data" \
FRONTDOOR_SERVER__LISTEN="127.0.0.1:$port" \
FRONTDOOR_METRICS__LISTEN="127.0.0.1:$mport" \
FRONTDOOR_GATEWAYS__UPSTREAM_URL="http://127.0.0.1:9" \
RUST_LOG=warn "$bin" serve --dev >"$tmp/out" 2>"$tmp/err" &
pid=$!

for _ in $(seq 100); do
  grep -q '^More tokens' "$tmp/out" 2>/dev/null && break
  sleep 0.1
done
token="$(awk '/^Token/{getline; print; exit}' "$tmp/out")"
[[ -n "$token" ]] || { echo "fuzz-api: the dev server printed no token" >&2; cat "$tmp/err" >&2; exit 1; }
base="https://localhost:$port"

# GET /events is an endless event stream (tests/it/events.rs covers it): a generated request
# there would wait for its end until the time limit.
# The server's own account is printed whatever schemathesis says (a dropped connection there
# is often a panic here).
status=0
"$st" run "$base/api/v1/openapi.json" \
  --url "$base/api/v1" \
  --header "Authorization: Bearer $token" \
  --tls-verify "$tmp/data/dev/tls/cert.pem" \
  --checks not_a_server_error \
  --exclude-path /events \
  --max-examples "${FUZZ_EXAMPLES:-40}" \
  --max-time "${FUZZ_MAX_TIME:-180}" \
  --workers 2 \
  --seed "${FUZZ_SEED:-42}" \
  --wait-for-schema 10 || status=$?

if grep -qE 'panicked|internal error' "$tmp/err"; then
  echo "fuzz-api: the server logged a panic or an internal error:" >&2
  grep -E -A3 'panicked|internal error' "$tmp/err" | head -60 >&2
  exit 1
fi
if ((status != 0)); then
  echo "fuzz-api: schemathesis failed ($status); the server's warnings and errors:" >&2
  grep -E 'WARN|ERROR' "$tmp/err" | tail -40 >&2 || true
  exit "$status"
fi
echo "fuzz-api: no 5xx, no panic"
