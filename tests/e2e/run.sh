#!/usr/bin/env bash
# End-to-end tests: `portcullis proxy` in front of @modelcontextprotocol/server-everything,
# driven by the official Python MCP SDK over stdio and streamable HTTP.
# Sets up its own virtualenv and node_modules; extra arguments go to pytest (e.g. -k http).
# Usage: bash tests/e2e/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${PORTCULLIS_E2E_VENV:-$target/e2e-venv}"

stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  echo "e2e: creating $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
if ! cmp -s "$here/package-lock.json" "$here/node_modules/.portcullis-lock" 2>/dev/null; then
  (cd "$here" && npm ci --silent --no-audit --no-fund)
  cp "$here/package-lock.json" "$here/node_modules/.portcullis-lock"
fi

(cd "$root" && cargo build --locked --quiet -p portcullis --bin portcullis)
# A private copy: the target directory may be shared with other checkouts that rebuild the
# same binary while the tests run.
mkdir -p "$target/e2e-bin"
cp "$target/debug/portcullis" "$target/e2e-bin/portcullis"
export PORTCULLIS_BIN="$target/e2e-bin/portcullis"
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
