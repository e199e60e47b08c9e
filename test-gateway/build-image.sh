#!/usr/bin/env bash
# Builds the mcp-test-gateway images from one static release binary, each FROM scratch, no
# registry needed:
#   - mcp-test-gateway:dev  the look-alike gateway (ENTRYPOINT /mcp-test-gateway)
#   - mcp-test-stdio:dev    the same binary as a stdio MCP server (ENTRYPOINT /mcp-test-gateway
#                           stdio), a catalog server for the real docker/mcp-gateway to run
# Idempotent: when an image already carries this binary and recipe (label
# mcp-test-gateway.build-sha256), its docker build is skipped.
#
#   test-gateway/build-image.sh              # -> mcp-test-gateway:dev, mcp-test-stdio:dev
#   IMAGE=my/gw:1 STDIO_IMAGE=my/stdio:1 test-gateway/build-image.sh
#
# Env: IMAGE (default mcp-test-gateway:dev), STDIO_IMAGE (default mcp-test-stdio:dev),
#      CARGO_TARGET_DIR (default <repo>/target),
#      GATEWAY_TARGET (default x86_64-unknown-linux-musl; x86_64-unknown-linux-gnu builds a
#      glibc binary with +crt-static), FORCE=1 rebuilds the images even if the label matches.
# Prints the stdio image name, then the gateway image name (last line) on stdout; progress goes
# to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
IMAGE="${IMAGE:-mcp-test-gateway:dev}"
STDIO_IMAGE="${STDIO_IMAGE:-mcp-test-stdio:dev}"
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

build_image() { # <image> <title> <description> <dockerfile text>
  local image="$1" title="$2" description="$3" dockerfile="$ctx/Dockerfile.$2"
  printf '%s\n' "$4" >"$dockerfile"
  # The label covers the binary and the recipe, so a changed Dockerfile also rebuilds.
  local sum current size
  sum=$(cat "$ctx/mcp-test-gateway" "$dockerfile" | sha256sum | cut -d' ' -f1)
  current=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$image" 2>/dev/null || true)
  if [[ "$current" == "$sum" && "${FORCE:-0}" != 1 ]]; then
    log "$image is up to date ($LABEL=$sum); docker build skipped"
  else
    log "docker build -t $image ($target)"
    docker build -q -t "$image" -f "$dockerfile" \
      --label "$LABEL=$sum" \
      --label "org.opencontainers.image.title=$title" \
      --label "org.opencontainers.image.description=$description" \
      "$ctx" >&2
  fi
  size=$(docker image inspect -f '{{ .Size }}' "$image")
  log "$image: $((size / 1024)) KiB, $(( $(date +%s) - start )) s"
}

build_image "$IMAGE" mcp-test-gateway "rmcp test stand-in for docker/mcp-gateway" \
'FROM scratch
COPY mcp-test-gateway /mcp-test-gateway
USER 65532:65532
EXPOSE 8811
ENTRYPOINT ["/mcp-test-gateway"]'

# The real gateway runs it as `docker run --rm -i --init ... <image> [catalog command]`: the
# catalog's `command` becomes the arguments after `stdio` (e.g. --secret-env=NAME).
build_image "$STDIO_IMAGE" mcp-test-stdio "stdio MCP server of the mcp-frontdoor tests" \
'FROM scratch
COPY mcp-test-gateway /mcp-test-gateway
USER 65532:65532
ENTRYPOINT ["/mcp-test-gateway", "stdio"]'

echo "$STDIO_IMAGE"
echo "$IMAGE"
