#!/usr/bin/env bash
# Load test (issue 6): `portcullis proxy --listen` in front of the fixture server, driven by
# concurrent MCP sessions over loopback HTTP while the policy file and the enforcer are
# rewritten every 200 ms. Counts successes, policy denials and failures, checks that every
# decision comes from a complete snapshot, and reports the proxy's peak RSS. See
# host/benches/load.rs for what is checked; record results in BENCHMARKS.md.
#
# Usage: bash bench/load.sh [CLIENTS=200] [SECONDS=60] [REWRITE_MS=200]
# Loopback only; bounded in time; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/portcullis-ci-target}"
export CARGO_TERM_COLOR=never

cargo build --release --locked -p portcullis --bin portcullis --example fixture_server
built=$(cargo bench --locked -p portcullis --bench load --no-run 2>&1 | tee /dev/stderr |
  sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
[ -n "$built" ] || { echo "could not find the load bench executable" >&2; exit 1; }

# The target directory may be shared with other checkouts, whose builds can replace these
# binaries mid-run: run private copies.
private=$(mktemp -d)
trap 'rm -rf "$private"' EXIT
cp "$CARGO_TARGET_DIR/release/portcullis" "$CARGO_TARGET_DIR/release/examples/fixture_server" "$private/"
cp "$built" "$private/load"

echo "== $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(git rev-parse --short HEAD)"
PORTCULLIS_LOAD_BIN="$private/portcullis" PORTCULLIS_LOAD_FIXTURE="$private/fixture_server" \
  "$private/load" "$@"
