#!/usr/bin/env bash
# Builds enforcers/dist/pii_guard.wasm. Installs the pinned npm packages first when
# node_modules is missing or package-lock.json changed since the last install, then runs
# build.mjs (which itself skips the build when the output is newer than every input).
# Unattended: no TTY or prompts. Extra arguments go to build.mjs (--force, --wit PATH, --out PATH).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "pii_guard: node and npm are needed (Node 20 or later)" >&2
  exit 1
fi

# npm ci records nothing we can compare against, so keep a copy of the lock it installed from.
stamp=node_modules/.pii_guard-installed-lock.json
if [ ! -d node_modules ] || ! cmp -s package-lock.json "$stamp"; then
  echo "pii_guard: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

exec node build.mjs "$@"
