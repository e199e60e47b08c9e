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

# shellcheck source=scripts/binary-image.sh
source "$root/scripts/binary-image.sh"
binary_image "$bin" "$IMAGE" 'WORKDIR /var/lib/mcp-frontdoor
EXPOSE 8443 9464
ENTRYPOINT ["/usr/local/bin/mcp-frontdoor"]
CMD ["serve", "--config", "/etc/mcp-frontdoor/frontdoor.yaml"]'
