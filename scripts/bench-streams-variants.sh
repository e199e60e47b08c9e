#!/usr/bin/env bash
# per idle stream RSS of front door variants (plain or tls), fresh process each, alternating
#   N=5000 ROUNDS=2 scripts/bench-streams-variants.sh "before=/tmp/fd-old|plain|" "after=target/release/mcp-frontdoor|plain|workers: 0"
# (one JSON line per run; per_stream_kib = RSS growth / streams, as in scripts/bench.sh phase 3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"; bin=$root/target/release; N=${N:-5000}; ROUNDS=${ROUNDS:-2}
work=$(mktemp -d /tmp/fd-st.XXXXXX); pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)"
fp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sk -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; return 1; }
up=$(fp); "$bin/fd-load" upstream --port "$up" >/dev/null 2>&1 & pids+=($!)
"$bin/mcp-frontdoor" certs generate --out "$work/certs" >/dev/null
head -c 48 /dev/urandom | base64 -w0 >"$work/hs"; head -c 32 /dev/urandom | base64 -w0 >"$work/mk"
for r in $(seq $ROUNDS); do for spec in "$@"; do
  name=${spec%%=*}; IFS='|' read -r b tls extra <<<"${spec#*=}"
  port=$(fp); t=""; scheme=http
  [[ $tls == tls ]] && { t=", tls: { cert: $work/certs/cert.pem, key: $work/certs/key.pem }"; scheme=https; }
  cat >"$work/c.yaml" <<Y
server: { listen: 127.0.0.1:$port, sse_keepalive: 0s $t ${extra:+, $extra} }
auth: { issuer: b, audience: [b], hs256_secret_file: $work/hs }
metrics: { listen: 127.0.0.1:$(fp) }
data_dir: $work/data-$name-$r
secrets: { master_key_file: $work/mk }
gateways: { upstream_url: "http://127.0.0.1:$up" }
Y
  RUST_LOG=warn "$b" serve --config "$work/c.yaml" >"$work/log" 2>&1 & P=$!; pids+=($P)
  wait_up "$scheme://127.0.0.1:$port/healthz"
  JWT=$("$b" token --config "$work/c.yaml" --sub bench --ttl 1h)
  "$bin/fd-load" latency --base "$scheme://127.0.0.1:$port" --ca $work/certs/cert.pem -H "Authorization: Bearer $JWT" --rate 200 --duration 0.5 --warmup 0 --conns 4 >/dev/null
  line=$("$bin/fd-load" streams --base "$scheme://127.0.0.1:$port" --ca $work/certs/cert.pem -H "Authorization: Bearer $JWT" --label "$name" --n "$N" --pids "$P")
  echo "$line" | jq -c --argjson r $r '{label:.label, round:$r, held:.held, failed:.failed, per_stream_kib:.per_stream_kib, before:.before.rss_kib, during:.during.rss_kib, after:.after_close.rss_kib}'
  kill $P; wait $P 2>/dev/null || true
  for _ in $(seq 100); do (($(ss -Htn state established | wc -l) < 200)) && break; sleep 0.2; done; sleep 1
done; done
