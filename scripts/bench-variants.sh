#!/usr/bin/env bash
# A/B of front door variants (binary + extra server.* lines), plain or TLS, alternated round by
# round with nginx as reference: wrk saturation on GET /health (test gateway), POST /rpc
# (fd-load upstream) and (WORKLOADS=post) POST /mcp ping on an rmcp session of the test gateway
# opened through each contender, req/s and proxy CPU us/req per run, one JSON line each.
#   WITH_NGINX=1 [WITH_REFS=1] VARIANTS="before=/tmp/fd-old|plain|;after=target/release/mcp-frontdoor|tls|workers: 0" scripts/bench-variants.sh
# WITH_REFS=1 adds `fd-load proxy` (bare hyper) and `fd-load lean` (the h1 prototype that holds
# no buffer while it waits), both plain, labelled proxy and lean.
# WORKLOADS=lat-get / lat-rpc: fixed-rate latency (fd-load latency at RATE req/s, default 14400)
# instead of wrk saturation. Each variant is NAME=BINARY|plain or tls|server.* lines separated by commas. Needs the release
# build of the workspace (fd-load, mcp-test-gateway), wrk and (WITH_NGINX=1) nginx.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin=${BIN_DIR:-$root/target/release}
ROUNDS=${ROUNDS:-3} DUR=${DUR:-5} CONNS=${CONNS:-64} WORKLOADS=${WORKLOADS:-get rpc}
OUT=${OUT:-$root/target/bench/variants.jsonl}; mkdir -p "$(dirname "$OUT")"
work=$(mktemp -d /tmp/fd-perfab.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sk -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; echo "down: $1" >&2; return 1; }
ulimit -n "$(ulimit -Hn)"
gw=$(free_port); up=$(free_port)
"$bin/mcp-test-gateway" --transport=streaming --host 127.0.0.1 --port "$gw" --allow-unauthenticated >"$work/gw.log" 2>&1 & pids+=($!); GWPID=$!
"$bin/fd-load" upstream --port "$up" >"$work/up.log" 2>&1 & pids+=($!); UPPID=$!
wait_up "http://127.0.0.1:$gw/health"; wait_up "http://127.0.0.1:$up/health"
"$bin/mcp-frontdoor" certs generate --out "$work/certs" >/dev/null
head -c 48 /dev/urandom | base64 -w0 >"$work/hs.secret"
head -c 32 /dev/urandom | base64 -w0 >"$work/master.key"
declare -A URL_GET=() URL_RPC=() PID_GET=() PID_RPC=()
start_fd() { # name bin tls extra upstream-port -> url pid
  local name=$1 b=$2 tls=$3 extra=$4 upp=$5 port scheme=http t=""
  port=$(free_port); mkdir -p "$work/$name"
  if [[ $tls == tls ]]; then scheme=https; t="  tls: { cert: $work/certs/cert.pem, key: $work/certs/key.pem }"; fi
  cat >"$work/$name/config.yaml" <<Y
server:
  listen: 127.0.0.1:$port
$t
  sse_keepalive: 0s
$(tr ';' '\n' <<<"$extra" | sed '/^$/d; s/^/  /')
auth: { issuer: bench, audience: [bench], hs256_secret_file: $work/hs.secret }
metrics: { listen: 127.0.0.1:$(free_port) }
data_dir: $work/$name/data
secrets: { master_key_file: $work/master.key }
gateways: { upstream_url: "http://127.0.0.1:$upp" }
Y
  RUST_LOG=warn "$b" serve --config "$work/$name/config.yaml" >"$work/$name/log" 2>&1 &
  pids+=($!); LAST_PID=$!; LAST_URL="$scheme://127.0.0.1:$port"
  wait_up "$LAST_URL/healthz"
}
LABELS=()
IFS=';;' read -r -a specs <<<"${VARIANTS:?}"
for spec in "${specs[@]}"; do
  [[ -z "$spec" ]] && continue
  name=${spec%%=*}; rest=${spec#*=}
  IFS='|' read -r b tls extra <<<"$rest"
  extra=${extra//,/;}
  start_fd "$name-get" "$b" "$tls" "$extra" "$gw"; URL_GET[$name]=$LAST_URL; PID_GET[$name]=$LAST_PID
  start_fd "$name-rpc" "$b" "$tls" "$extra" "$up"; URL_RPC[$name]=$LAST_URL; PID_RPC[$name]=$LAST_PID
  LABELS+=("$name")
done
if [[ -n "${WITH_NGINX:-}" ]]; then
  d="$work/nginx"; mkdir -p "$d/tmp"
  NP=$(free_port); NT=$(free_port); NRP=$(free_port); NRT=$(free_port)
  loc='proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; proxy_request_buffering off;'
  tl="ssl_certificate $work/certs/cert.pem; ssl_certificate_key $work/certs/key.pem;"
  cat >"$d/nginx.conf" <<N
worker_processes 2; pid $d/nginx.pid; error_log $d/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $d/tmp/b; proxy_temp_path $d/tmp/p; fastcgi_temp_path $d/tmp/f; uwsgi_temp_path $d/tmp/u; scgi_temp_path $d/tmp/s;
  upstream gw { server 127.0.0.1:$gw; keepalive 256; } upstream up { server 127.0.0.1:$up; keepalive 256; }
  server { listen 127.0.0.1:$NP reuseport; location / { proxy_pass http://gw; $loc } }
  server { listen 127.0.0.1:$NT ssl reuseport; $tl location / { proxy_pass http://gw; $loc } }
  server { listen 127.0.0.1:$NRP reuseport; location / { proxy_pass http://up; $loc } }
  server { listen 127.0.0.1:$NRT ssl reuseport; $tl location / { proxy_pass http://up; $loc } }
}
N
  nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' & pids+=($!); NPID=$!
  wait_up "http://127.0.0.1:$NP/health"
  URL_GET[nginx-plain]="http://127.0.0.1:$NP"; URL_RPC[nginx-plain]="http://127.0.0.1:$NRP"
  URL_GET[nginx-tls]="https://127.0.0.1:$NT"; URL_RPC[nginx-tls]="https://127.0.0.1:$NRT"
  PID_GET[nginx-plain]=$NPID; PID_RPC[nginx-plain]=$NPID; PID_GET[nginx-tls]=$NPID; PID_RPC[nginx-tls]=$NPID
  LABELS+=(nginx-plain nginx-tls)
fi
if [[ -n "${WITH_REFS:-}" ]]; then # plain references: bare hyper, and the lean h1 prototype
  for ref in proxy lean; do
    pg=$(free_port); pr=$(free_port)
    "$bin/fd-load" "$ref" --port "$pg" --upstream "127.0.0.1:$gw" >"$work/$ref-get.log" 2>&1 & pids+=($!); PID_GET[$ref]=$!
    "$bin/fd-load" "$ref" --port "$pr" --upstream "127.0.0.1:$up" >"$work/$ref-rpc.log" 2>&1 & pids+=($!); PID_RPC[$ref]=$!
    URL_GET[$ref]="http://127.0.0.1:$pg"; URL_RPC[$ref]="http://127.0.0.1:$pr"
    wait_up "${URL_GET[$ref]}/health"; wait_up "${URL_RPC[$ref]}/health"
    LABELS+=("$ref")
  done
fi
JWT=$("$bin/mcp-frontdoor" token --config "$work/${LABELS[0]}-get/config.yaml" --sub bench --ttl 2h)
# CPU ticks of a process and its children: user, then system.
cpu() { local u=0 s=0 q a b; for q in $1 $(cat /proc/"$1"/task/*/children 2>/dev/null); do read -r a b < <(awk '{print $14, $15}' /proc/$q/stat 2>/dev/null || echo 0 0); u=$((u + a)); s=$((s + b)); done; echo "$u $s"; }
HZ=$(getconf CLK_TCK)
declare -A SESSION=()
if [[ " $WORKLOADS " == *" post "* ]]; then # an MCP session per contender, opened through it
  for c in "${LABELS[@]}"; do
    h="$work/init-$c"; mcp=(-sk --max-time 5 -H "Authorization: Bearer $JWT" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
    curl "${mcp[@]}" -D "$h" -o /dev/null -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}' "${URL_GET[$c]}/mcp"
    SESSION[$c]=$(awk 'tolower($1)=="mcp-session-id:"{print $2}' "$h" | tr -d '\r')
    [[ -n "${SESSION[$c]}" ]] || { echo "no Mcp-Session-Id through $c" >&2; exit 1; }
    curl "${mcp[@]}" -o /dev/null -H "Mcp-Session-Id: ${SESSION[$c]}" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "${URL_GET[$c]}/mcp"
  done
fi
for w in $WORKLOADS; do
  for r in $(seq "$ROUNDS"); do
    for c in "${LABELS[@]}"; do
      if [[ $w == lat-get || $w == lat-rpc ]]; then # fixed rate, open loop: latency percentiles
        if [[ $w == lat-get ]]; then base=${URL_GET[$c]}; x=(); else base=${URL_RPC[$c]}; x=(--path /rpc --method POST --body '{"jsonrpc":"2.0","id":{id},"method":"ping"}' -H 'Content-Type: application/json'); fi
        "$bin/fd-load" latency --base "$base" --ca "$work/certs/cert.pem" -H "Authorization: Bearer $JWT" --label "$c" \
          --rate "${RATE:-14400}" --duration "$DUR" --warmup 1 --conns "$CONNS" "${x[@]}" |
          jq -c --arg w "$w" --argjson r "$r" --arg la "$(cut -d' ' -f1 /proc/loadavg)" '{label:.label, workload:$w, round:$r, p50_us:.p50_us, p90_us:.p90_us, p99_us:.p99_us, p999_us:.p999_us, errors:.errors, non2xx:.non2xx, load:$la}' | tee -a "$OUT"
        continue
      fi
      body='{"jsonrpc":"2.0","id":{id},"method":"ping"}'; sess=""
      case $w in
        get) url="${URL_GET[$c]}/health"; pid=${PID_GET[$c]}; body="" ;;
        post) url="${URL_GET[$c]}/mcp"; pid=${PID_GET[$c]}; sess=${SESSION[$c]} ;;
        *) url="${URL_RPC[$c]}/rpc"; pid=${PID_RPC[$c]} ;;
      esac
      read -r u0 s0 < <(cpu "$pid"); la=$(cut -d' ' -f1 /proc/loadavg)
      line=$(WRK_BODY="$body" WRK_SESSION="$sess" wrk -t2 -c"$CONNS" -d"${DUR}s" -s $root/benches/load/wrk.lua -H "Authorization: Bearer $JWT" "$url" | grep '^{"kind":"wrk"' | tail -1)
      read -r u1 s1 < <(cpu "$pid")
      jq -c --arg c "$c" --arg w "$w" --argjson r "$r" --argjson t $((u1 + s1 - u0 - s0)) --argjson u $((u1 - u0)) --argjson hz "$HZ" --arg la "$la" \
        '{label:$c, workload:$w, round:$r, rps:.rps, p99_us:.p99_us, errors:(.err_connect+.err_read+.err_write+.err_timeout), non2xx:.non2xx, load:$la, cpu_us_per_req:(if .requests>0 then ($t*1e6/$hz/.requests*10|round/10) else null end), user_us_per_req:(if .requests>0 then ($u*1e6/$hz/.requests*10|round/10) else null end)}' <<<"$line" | tee -a "$OUT"
    done
  done
done
