#!/usr/bin/env bash
# Builds the TCP balancer image of deploy/replicas/ without pulling anything: Debian's HAProxy
# (installed by scripts/setup.sh) in a FROM scratch image. A host with registry access uses the
# official haproxy image instead (BALANCER_IMAGE in deploy/replicas/docker-compose.yml).
#
#   IMAGE=mcp-fd-balancer:local scripts/build-balancer-image.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${IMAGE:-mcp-fd-balancer:local}"
bin="$(command -v haproxy || echo /usr/sbin/haproxy)"
[[ -x "$bin" ]] || { echo "build-balancer-image: haproxy is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
# shellcheck source=scripts/binary-image.sh
source "$root/scripts/binary-image.sh"
# The official image's config path, so one compose file serves both images.
binary_image "$bin" "$IMAGE" 'ENTRYPOINT ["/usr/local/bin/haproxy"]
CMD ["-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
