#!/usr/bin/env bash
# The peer benchmark (issue 6): Portcullis against the two Python seed policy engines
# (mcp-macaroon-middleware, mcp-auth-guard) and Cedar, in one run on this machine, over the
# same generated rule sets (10, 100, 1 000 rules), plus field redaction of 1 KB and 100 KB
# results and what each policy layer adds to a tools/call inside a real MCP server. Writes
# the table of medians and ratios, with the date, machine and versions, into BENCHMARKS.md
# between the `peers:begin` / `peers:end` markers.
#
# Usage: bash bench/run.sh        (from anywhere; unattended; about 5 minutes once built)
#
# Needs: cargo (Rust 1.95), python3 >= 3.10 with venv, and what enforcers/build.sh needs
# (it builds the Rust `business_hours` WebAssembly enforcer this bench loads). Creates:
#   - a virtualenv with the pinned packages of bench/py/requirements.txt, in
#     $PEERS_VENV, else $CARGO_TARGET_DIR/peers-venv, else bench/.venv (gitignored);
#     rebuilt whenever that file changes;
#   - release builds of bench/peers (a Cargo workspace of its own): portcullis-peers
#     (Portcullis and its rmcp layer) and cedar-peers (Cedar), built apart.
# Environment: PEERS_BUDGET_S = seconds of timing per measurement (default 1.5; e.g. 0.05
# for a quick smoke run), PEERS_OUT = the file to write (default BENCHMARKS.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${PEERS_VENV:-${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/peers-venv}}"
venv="${venv:-$here/.venv}"
out="${PEERS_OUT:-$root/BENCHMARKS.md}"
log() { printf '== %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && source "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust 1.95 with rustup" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "python3 (>= 3.10) not found" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  { echo "python3 >= 3.10 is needed (fastmcp 2.13.3)" >&2; exit 1; }

# 1. The virtualenv with the pinned seeds.
stamp="$venv/.requirements"
if ! cmp -s "$here/py/requirements.txt" "$stamp" 2>/dev/null; then
  log "creating the virtualenv $venv (pinned: bench/py/requirements.txt)"
  rm -rf "$venv"
  python3 -m venv "$venv" ||
    { echo "python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/py/requirements.txt"
  cp "$here/py/requirements.txt" "$stamp"
fi
py="$venv/bin/python"

# 2. The Rust WebAssembly enforcer, and the Rust side in release.
log "building the enforcers (enforcers/build.sh)"
bash "$root/enforcers/build.sh"
wasm="$root/enforcers/dist/business_hours.wasm"
[ -f "$wasm" ] || { echo "enforcers/build.sh produced no $wasm" >&2; exit 1; }
# Two builds, never one: cargo unifies the features of packages built together, and Cedar's
# dependencies would change the serde_json Portcullis is timed with.
log "building bench/peers (release): portcullis-peers, then cedar-peers"
for package in portcullis-peers cedar-peers; do
  CARGO_TARGET_DIR="$target" cargo build --locked --release --quiet \
    --manifest-path "$here/peers/Cargo.toml" -p "$package"
done
(cd "$here/py" && "$py" main.py features "$root")

# A private copy of the binary and a private work directory: the target directory may be
# shared with other checkouts that rebuild it mid-run.
work="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-peers.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$target/release/portcullis-peers" "$target/release/cedar-peers" "$work/"
cut -d' ' -f1-3 /proc/loadavg >"$work/loadavg-start"

# 3. The same spec for every engine, then each side times its engines against it. Every
# measured call is first checked for the decision (and deciding rule) the spec expects, so a
# run where any engine decides differently stops here instead of comparing different work.
cd "$here/py"
export PYTHONDONTWRITEBYTECODE=1
"$py" main.py spec "$work"
log "Rust side: Portcullis (native, WASM enforcer, token, redaction), rmcp PolicyLayer"
"$work/portcullis-peers" "$work" "$wasm"
log "Rust side: Cedar"
"$work/cedar-peers" "$work"
log "Python side: mcp-auth-guard and mcp-macaroon-middleware engines"
"$py" main.py seeds "$work"
log "Python side: FastMCP bare, + mcp-auth-guard, + mcp-macaroon-middleware"
"$py" main.py mcp "$work"

# 4. The tables, into BENCHMARKS.md.
log "writing $out"
"$py" main.py report "$work" "$out" "bash bench/run.sh"
