# Sourced by the image scripts: binary_image BIN IMAGE INSTRUCTIONS makes a FROM scratch image
# of one host binary plus every shared library the dynamic loader resolves for it (at the same
# paths), without pulling anything. INSTRUCTIONS are the Dockerfile lines after the COPY
# (ENTRYPOINT, CMD, ...). The build is skipped when IMAGE already holds the same files.
# Prints the image name on stdout.
binary_image() {
  local bin="$1" image="$2" instructions="$3" ctx lib sum
  ctx="$(mktemp -d)"
  mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp"
  cp "$bin" "$ctx/rootfs/usr/local/bin/$(basename "$bin")"
  strip "$ctx/rootfs/usr/local/bin/$(basename "$bin")" 2>/dev/null || true
  for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^[[:space:]]*\/lib/ {print $1}'); do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
  sum="$(cd "$ctx/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  if [[ "$(docker image inspect -f '{{index .Config.Labels "mcp-frontdoor.build"}}' "$image" 2>/dev/null || true)" == "$sum" ]]; then
    echo "binary-image: $image is up to date" >&2
  else
    printf 'FROM scratch\nCOPY rootfs/ /\nLABEL mcp-frontdoor.build=%s\n%s\n' "$sum" "$instructions" >"$ctx/Dockerfile"
    docker build -q -t "$image" "$ctx" >&2
  fi
  rm -rf "$ctx"
  echo "$image"
}
