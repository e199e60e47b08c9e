#!/usr/bin/env bash
# Builds the front door image without pulling anything: the binary plus the shared libraries
# it links (from this machine) in a FROM scratch image. CI and the compose smoke test use it,
# and so can a host without registry access (README, Deployment):
#
#   IMAGE=mcp-frontdoor:latest PROFILE=release scripts/build-frontdoor-image.sh
#   docker-compose up -d --no-build
#
# IMAGE: the tag (default mcp-frontdoor:local). PROFILE: the cargo profile (default
# test-image: optimized without LTO, so CI builds it in a few minutes; release for production).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${IMAGE:-mcp-frontdoor:local}"
PROFILE="${PROFILE:-test-image}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --profile "$PROFILE" --bin mcp-frontdoor >&2)
bin="$CARGO_TARGET_DIR/$PROFILE/mcp-frontdoor"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/var/lib/mcp-frontdoor"
cp "$bin" "$ctx/rootfs/usr/local/bin/mcp-frontdoor"
strip "$ctx/rootfs/usr/local/bin/mcp-frontdoor" 2>/dev/null || true
# Every library the dynamic loader resolves, at the same path inside the image.
for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^[[:space:]]*\/lib/ {print $1}'); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
sum="$(cd "$ctx/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if [[ "$(docker image inspect -f '{{index .Config.Labels "mcp-frontdoor.build"}}' "$IMAGE" 2>/dev/null || true)" == "$sum" ]]; then
  echo "build-frontdoor-image: $IMAGE is up to date" >&2
  echo "$IMAGE"
  exit 0
fi
cat >"$ctx/Dockerfile" <<DOCKER
FROM scratch
COPY rootfs/ /
LABEL mcp-frontdoor.build=$sum
WORKDIR /var/lib/mcp-frontdoor
EXPOSE 8443 9464
ENTRYPOINT ["/usr/local/bin/mcp-frontdoor"]
CMD ["serve", "--config", "/etc/mcp-frontdoor/frontdoor.yaml"]
DOCKER
docker build -q -t "$IMAGE" "$ctx" >&2
echo "$IMAGE"
