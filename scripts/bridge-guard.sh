#!/usr/bin/env bash
# Host firewall guard for the gateways' bridge networks (README, "Isolation between users").
#
# Docker Engines before 28 rewrite their FORWARD jump to the network-isolation chains on every
# `docker network create` as two steps (delete, then insert). For 10-40 ms between them a
# container on one user's bridge can open a TCP connection to another user's gateway, because
# every non-internal bridge accepts traffic leaving it. Any new user's first request creates a
# network, so a tenant who keeps connecting to other gateways' addresses wins that window.
#
# This installs an nftables table of our own (Docker never rewrites it) that drops traffic routed
# from one bridge to another inside the gateways' subnet pool, at a priority before Docker's
# rules. Traffic inside one bridge (a gateway and its servers) and to the internet is untouched.
#
#   scripts/bridge-guard.sh install [POOL] [NAME]   # POOL: gateways.docker.subnet_pool (10.213.0.0/16)
#   scripts/bridge-guard.sh remove [POOL] [NAME]
#   scripts/bridge-guard.sh show [POOL] [NAME]
# NAME defaults to mcp_frontdoor; run as root on the Docker host (not in a container).
set -euo pipefail
action="${1:-}"
pool="${2:-10.213.0.0/16}"
name="${3:-mcp_frontdoor}"
if ! [[ "$pool" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]]; then
  echo "bridge-guard: POOL must be an IPv4 CIDR such as 10.213.0.0/16, got '$pool'" >&2
  exit 2
fi
if ! [[ "$name" =~ ^[A-Za-z][A-Za-z0-9_]{0,62}$ ]]; then
  echo "bridge-guard: NAME must be letters, digits and _, got '$name'" >&2
  exit 2
fi
command -v nft >/dev/null || { echo "bridge-guard: nft is missing (apt-get install nftables)" >&2; exit 1; }
case "$action" in
  install)
    # Replaces an earlier table of the same name in one transaction.
    nft -f - <<NFT
table inet $name
delete table inet $name
table inet $name {
  chain guard {
    type filter hook forward priority -5; policy accept;
    # From the pool to the pool, where the destination is not on the interface the packet came
    # in on (the route lookup bound to that interface finds none): another bridge. Dropped.
    ip saddr $pool ip daddr $pool fib daddr . iif oif missing counter drop
  }
}
NFT
    echo "bridge-guard: table inet $name drops forwarding between bridges inside $pool"
    ;;
  remove)
    nft delete table inet "$name" 2>/dev/null || true
    echo "bridge-guard: table inet $name removed"
    ;;
  show)
    nft list table inet "$name"
    ;;
  *)
    sed -n '2,18p' "$0" >&2
    exit 2
    ;;
esac
