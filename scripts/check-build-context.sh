#!/usr/bin/env bash
# Checks what .dockerignore lets into the image build context, with Docker's own matcher: a
# scratch tree with the files a careless checkout has (.env, certificates, keys, data, build
# output, in subdirectories too) and the sources the Dockerfile needs is sent to a FROM
# scratch build that copies its whole context; the image's file list must hold every source
# and none of the rest. Pulls nothing; removes the image it made.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tree="$(mktemp -d)"
image="mcpfd-build-context-check-$$"
trap 'rm -rf "$tree"; docker image rm -f "$image" >/dev/null 2>&1 || true' EXIT

cp "$root/.dockerignore" "$tree/"
must_in=(Cargo.toml Cargo.lock .env.example src/main.rs src/secrets/keyring.rs init/src/main.rs
  test-gateway/Cargo.toml benches/load/Cargo.toml config/compose.yaml catalogs/official.yaml)
must_out=(.env .env.local .env.production certs/key.pem certs/cert.pem keys/signing.json
  key.pem config/tls/server.key sub/.env data/dev/jwt.secret data/users/alice/secrets.enc
  sub/data/x target/release/mcp-frontdoor init/target/x .venv/bin/python .git/HEAD
  tests/fixtures/keys/rsa-private.pem dev/master.key dev/jwt.secret id_ed25519 store.p12)
for f in "${must_in[@]}" "${must_out[@]}"; do
  mkdir -p "$tree/$(dirname "$f")"
  echo x >"$tree/$f"
done
printf 'FROM scratch\nCOPY . /ctx/\n' >"$tree/Dockerfile.check"
docker build -q -f "$tree/Dockerfile.check" -t "$image" "$tree" >/dev/null
container="$(docker create "$image" /none)"
files="$(docker export "$container" | tar -t | sed -n 's#^ctx/##p')"
docker rm "$container" >/dev/null
bad=0
for f in "${must_in[@]}"; do
  grep -qxF "$f" <<<"$files" || { echo "build context: $f is left out but the build needs it" >&2; bad=1; }
done
for f in "${must_out[@]}"; do
  if grep -qxF "$f" <<<"$files"; then echo "build context: $f is sent to the daemon" >&2; bad=1; fi
done
exit "$bad"
