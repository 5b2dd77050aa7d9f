#!/usr/bin/env bash
# Runs every check CI runs: builds the WebAssembly enforcers, then formatting, clippy with
# warnings as errors, and all tests (host, Rust guests natively, the JavaScript guest, the
# end-to-end tests with a real MCP client and upstream server, the MCP conformance suite, and
# the README's main job, scripts/demo.sh).
# Usage: bash scripts/test.sh        (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== building the enforcers"
bash enforcers/build.sh

# The guest workspace's native (host-target) builds get their own target directory.
guest_native_target="${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/guests-native}"
guest_native_target="${guest_native_target:-$PWD/enforcers/target/native}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
(cd enforcers && cargo fmt --all -- --check)
echo "== lock files of the side workspaces (bench/peers, fuzz) match the host's dependencies"
# They are built only by bench/run.sh and cargo-fuzz, not here; resolving them is enough to
# catch a host dependency change that their Cargo.lock does not record.
for ws in bench/peers fuzz; do
  cargo metadata --locked --format-version 1 --manifest-path "$ws/Cargo.toml" >/dev/null ||
    { echo "$ws/Cargo.lock is out of date: run cargo metadata --manifest-path $ws/Cargo.toml and commit it" >&2; exit 1; }
done
echo "== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd enforcers && CARGO_TARGET_DIR="$guest_native_target" cargo clippy --workspace --all-targets --locked -- -D warnings)

log=$(mktemp)
echo "== cargo test (host)"
cargo test --workspace --locked 2>&1 | tee "$log"
echo "== cargo test (Rust enforcers, natively)"
(cd enforcers && CARGO_TARGET_DIR="$guest_native_target" cargo test --workspace --locked) 2>&1 | tee -a "$log"
echo "== node --test (pii_guard)"
(cd enforcers/pii_guard && PII_GUARD_REQUIRE_COMPONENT=1 npm test --silent) 2>&1 | tee -a "$log"
echo "== end-to-end: portcullis proxy, Python MCP SDK client, server-everything upstream"
bash tests/e2e/run.sh 2>&1 | tee -a "$log"
echo "== MCP conformance suite: bare server, embedded PolicyLayer, portcullis proxy"
bash tests/conformance/run.sh 2>&1 | tee -a "$log"
echo "== the main job (scripts/demo.sh) runs to the end, every MCP step as expected"
demo_log=$(mktemp)
if ! bash scripts/demo.sh >"$demo_log" 2>&1; then
  cat "$demo_log" >&2; echo "scripts/demo.sh failed" >&2; exit 1
fi
grep -E "^== all [0-9]+ steps behaved as expected" "$demo_log" | tee -a "$log"
[ "$(grep -cE '^== all [0-9]+ steps behaved as expected' "$demo_log")" = 2 ] || {
  cat "$demo_log" >&2; echo "the demo's walkthroughs did not both finish" >&2; exit 1; }
rm -f "$demo_log"
# Fail loudly if a runner silently ran nothing.
grep -q "^test result: ok\. [1-9]" "$log" || { echo "no Rust tests ran" >&2; exit 1; }
grep -qE "^# pass [1-9]" "$log" || { echo "no JavaScript tests ran" >&2; exit 1; }
grep -qE "[1-9][0-9]* passed" "$log" || { echo "no end-to-end tests ran" >&2; exit 1; }
grep -q "^conformance: every setup matches its baseline" "$log" || {
  echo "the conformance suite did not run" >&2; exit 1; }
rm -f "$log"
