#!/usr/bin/env bash
# Warm-path A/B of two front door binaries (say, before and after an allocator change), both
# with TLS in front of the same test gateway on loopback, alternated round by round (A B A B)
# because the machine is shared: GET /health at saturation (wrk) and at a fixed rate (fd-load
# latency, 30% of the slower one's median req/s). Prints medians; writes nothing.
#
#   scripts/bench-ab.sh /tmp/mcp-frontdoor-before target/release/mcp-frontdoor
#   ROUNDS=5 DUR=10 scripts/bench-ab.sh A B
#
# Needs wrk and the release build of the workspace (fd-load, mcp-test-gateway), as
# scripts/bench.sh does.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
A="$(realpath "$1")" B="$(realpath "$2")"
ROUNDS="${ROUNDS:-3}" DUR="${DUR:-5}" CONNS="${CONNS:-64}"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
work="$(mktemp -d /tmp/fd-ab.XXXXXX)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sk -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; return 1; }

gw=$(free_port)
"$bin/mcp-test-gateway" --transport=streaming --host 127.0.0.1 --port "$gw" --allow-unauthenticated >"$work/gw.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$gw/health"
"$B" certs generate --out "$work/certs" >/dev/null
head -c 48 /dev/urandom | base64 -w0 >"$work/hs.secret"
head -c 32 /dev/urandom | base64 -w0 >"$work/master.key"
declare -A URL=()
for side in A B; do
  port=$(free_port)
  mkdir -p "$work/$side"
  cat >"$work/$side/config.yaml" <<EOF
server: { listen: 127.0.0.1:$port, tls: { cert: $work/certs/cert.pem, key: $work/certs/key.pem } }
auth: { issuer: ab, audience: [ab], hs256_secret_file: $work/hs.secret }
metrics: { listen: 127.0.0.1:$(free_port) }
data_dir: $work/$side/data
secrets: { master_key_file: $work/master.key }
gateways: { upstream_url: "http://127.0.0.1:$gw" }
EOF
  exe="$A"; [[ $side == B ]] && exe="$B"
  RUST_LOG=warn "$exe" serve --config "$work/$side/config.yaml" >"$work/$side/log" 2>&1 &
  pids+=($!)
  URL[$side]="https://127.0.0.1:$port"
  wait_up "${URL[$side]}/healthz"
done
JWT=$("$B" token --config "$work/A/config.yaml" --sub ab --ttl 1h)
AUTH="Authorization: Bearer $JWT"

declare -A RPS=()
for r in $(seq "$ROUNDS"); do
  for side in A B; do
    rps=$(WRK_BODY='' WRK_SESSION='' wrk -t2 -c"$CONNS" -d"${DUR}s" -s benches/load/wrk.lua -H "$AUTH" "${URL[$side]}/health" \
      | grep '^{"kind":"wrk"' | tail -1 | jq .rps)
    RPS[$side]+="$rps "
    echo "saturation round $r $side: $rps req/s" >&2
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ma=$(median <<<"${RPS[A]}") mb=$(median <<<"${RPS[B]}")
rate=$(python3 -c "import sys; print(max(50, int(min(float(sys.argv[1]), float(sys.argv[2])) * 0.3 / 50) * 50))" "$ma" "$mb")
declare -A P50=() P99=()
for r in $(seq "$ROUNDS"); do
  for side in A B; do
    line=$("$bin/fd-load" latency --base "${URL[$side]}" --ca "$work/certs/cert.pem" -H "$AUTH" --label "$side" \
      --rate "$rate" --duration "$DUR" --warmup 1 --conns 64)
    P50[$side]+="$(jq .p50_us <<<"$line") "
    P99[$side]+="$(jq .p99_us <<<"$line") "
    echo "fixed rate $rate/s round $r $side: p50 $(jq .p50_us <<<"$line") us, p99 $(jq .p99_us <<<"$line") us" >&2
  done
done
echo "| binary | GET /health req/s (median of $ROUNDS) | p50 at $rate req/s | p99 at $rate req/s |"
echo "|---|---|---|---|"
for side in A B; do
  exe="$A"; [[ $side == B ]] && exe="$B"
  echo "| $side: $(basename "$exe") | $(median <<<"${RPS[$side]}") | $(median <<<"${P50[$side]}") µs | $(median <<<"${P99[$side]}") µs |"
done
