#!/usr/bin/env bash
# Builds the mcp-test-gateway image: a static release binary in a FROM scratch image, no registry
# needed. Idempotent: when the image already carries this binary (label
# mcp-test-gateway.build-sha256), docker build is skipped.
#
#   test-gateway/build-image.sh              # -> mcp-test-gateway:dev
#   IMAGE=my/gw:1 test-gateway/build-image.sh
#
# Env: IMAGE (default mcp-test-gateway:dev), CARGO_TARGET_DIR (default <repo>/target),
#      GATEWAY_TARGET (default x86_64-unknown-linux-musl; x86_64-unknown-linux-gnu builds a
#      glibc binary with +crt-static), FORCE=1 rebuilds the image even if the label matches.
# Prints the image name on stdout (last line); progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
IMAGE="${IMAGE:-mcp-test-gateway:dev}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
LABEL=mcp-test-gateway.build-sha256
start=$(date +%s)

log() { echo "build-image: $*" >&2; }

build_for() { # <target> [extra RUSTFLAGS]
  local target="$1" flags="${2:-}"
  log "cargo build --profile test-image -p mcp-test-gateway --target $target ${flags:+(RUSTFLAGS=$flags)}"
  # --target keeps RUSTFLAGS off build scripts and proc macros.
  (cd "$root" && RUSTFLAGS="${RUSTFLAGS:-} $flags" \
    cargo build --profile test-image -p mcp-test-gateway --target "$target" >&2)
}

ensure_musl() {
  if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    log "rustup target add x86_64-unknown-linux-musl"
    rustup target add x86_64-unknown-linux-musl >&2
  fi
}

target="${GATEWAY_TARGET:-x86_64-unknown-linux-musl}"
if [[ "$target" == *-musl ]]; then
  if ! { ensure_musl && build_for "$target"; }; then
    # Pure-Rust dependencies link without musl-gcc; should a C dependency appear, musl-tools helps.
    if ! command -v musl-gcc >/dev/null && command -v apt-get >/dev/null; then
      log "musl build failed; installing musl-tools and retrying"
      { apt-get install -y musl-tools >&2 || { apt-get update >&2 && apt-get install -y musl-tools >&2; }; } || true
    fi
    if ! build_for "$target"; then
      log "musl build failed again; falling back to a static glibc build"
      target=x86_64-unknown-linux-gnu
      build_for "$target" "-C target-feature=+crt-static"
    fi
  fi
else
  build_for "$target" "-C target-feature=+crt-static"
fi

bin="$CARGO_TARGET_DIR/$target/test-image/mcp-test-gateway"
[[ -x "$bin" ]] || { log "no binary at $bin"; exit 1; }
if file_out=$(command -v file >/dev/null && file -b "$bin"); then
  case "$file_out" in
    *dynamically*) log "binary is dynamically linked: $file_out"; exit 1 ;;
  esac
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/mcp-test-gateway"
# Strip here rather than through a cargo profile override, so release builds of the rest of the
# workspace in the same target dir are not invalidated.
strip "$ctx/mcp-test-gateway" 2>/dev/null || true
chmod 0555 "$ctx/mcp-test-gateway"

cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY mcp-test-gateway /mcp-test-gateway
USER 65532:65532
EXPOSE 8811
ENTRYPOINT ["/mcp-test-gateway"]
EOF

# The label covers the binary and the recipe, so a changed Dockerfile also rebuilds.
sum=$(cat "$ctx/mcp-test-gateway" "$ctx/Dockerfile" | sha256sum | cut -d' ' -f1)
current=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
if [[ "$current" == "$sum" && "${FORCE:-0}" != 1 ]]; then
  log "$IMAGE is up to date ($LABEL=$sum); docker build skipped"
else
  log "docker build -t $IMAGE ($target)"
  docker build -q -t "$IMAGE" \
    --label "$LABEL=$sum" \
    --label "org.opencontainers.image.title=mcp-test-gateway" \
    --label "org.opencontainers.image.description=rmcp test stand-in for docker/mcp-gateway" \
    "$ctx" >&2
fi

size=$(docker image inspect -f '{{ .Size }}' "$IMAGE")
log "$IMAGE: $((size / 1024)) KiB, $(( $(date +%s) - start )) s"
echo "$IMAGE"
