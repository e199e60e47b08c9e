#!/usr/bin/env bash
# The test command (README): formatting, lints, the test gateway image, every Rust test
# (unit, integration, Docker), the API fuzz run, the end-to-end tests with the official MCP
# Python SDK, and a real docker-compose deployment. `.ci/run` installs the prerequisites on a fresh machine, then runs this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "test gateway image"
if docker info >/dev/null 2>&1; then
  test-gateway/build-image.sh
elif [[ "${CI:-}" == "true" ]]; then
  echo "Docker is not reachable and CI=true: the Docker tests cannot run" >&2
  exit 1
else
  echo "SKIP: Docker is not reachable; Docker tests will print their own skip reasons" >&2
fi
step "cargo test"
cargo test --workspace --no-fail-fast
step "API fuzz (schemathesis)"
scripts/fuzz-api.sh
step "end to end: the MCP Python SDK through the front door to gateway containers"
.venv/bin/pytest tests/e2e -q
step "docker-compose deployment smoke test"
scripts/compose-smoke.sh
