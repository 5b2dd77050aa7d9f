#!/usr/bin/env bash
# MCP conformance: runs every server scenario of @modelcontextprotocol/conformance (pinned in
# package.json; 0.1.13 is the last release that runs on Node 20) against the rmcp fixture
# server in examples/conformance, three ways:
#   bare      conformance-server                         (rmcp only: the reference)
#   embedded  conformance-server --policy POLICY          (Portcullis' PolicyLayer in process)
#   proxy     portcullis proxy --config POLICY --upstream-url BARE  (the proxy in front of bare)
# POLICY is examples/conformance/policy.yaml (default deny, allow rules per fixture, denies,
# a redaction). Each setup is compared with its baseline in expected-failures/: a scenario that
# fails unexpectedly, or a baseline entry that now passes, fails this script, as does a setup
# that did not run every scenario or whose policy layer logged no decision.
# Installs its npm package itself and builds what it runs. Results go to
# $CARGO_TARGET_DIR/conformance/ (summary.md, logs, per-scenario checks.json).
# Usage: bash tests/conformance/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/conformance"
policy="$root/examples/conformance/policy.yaml"

if ! cmp -s "$here/package-lock.json" "$here/node_modules/.portcullis-lock" 2>/dev/null; then
  (cd "$here" && npm ci --silent --no-audit --no-fund)
  cp "$here/package-lock.json" "$here/node_modules/.portcullis-lock"
fi
conformance=("$here/node_modules/.bin/conformance")

(cd "$root" && cargo build --locked --quiet -p conformance-server -p portcullis \
  --bin conformance-server --bin portcullis)
# Private copies: the target directory may be shared with other checkouts that rebuild the same
# binaries while this script runs.
rm -rf "$out" && mkdir -p "$out/bin"
cp "$target/debug/conformance-server" "$target/debug/portcullis" "$out/bin/"

pids=()
# Newest first: the proxy ends its upstream session while the bare server is still there.
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT

# start NAME CMD...: starts a server logging to $out/NAME.log and sets $url to its /mcp URL.
start() {
  local name="$1"; shift
  "$@" >"$out/$name.log" 2>&1 &
  pids+=("$!")
  url=""
  for _ in $(seq 100); do
    url="$(grep -o 'serving http://[^ ]*/mcp' "$out/$name.log" | head -1 | cut -d' ' -f2 || true)"
    [ -n "$url" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "conformance: $name did not start:" >&2
  cat "$out/$name.log" >&2
  exit 1
}

"${conformance[@]}" list --server | sed -n 's/^  - //p' >"$out/scenarios.txt"
[ -s "$out/scenarios.txt" ] || { echo "conformance: the suite lists no server scenarios" >&2; exit 1; }

# Default Host and Origin checks everywhere: dns-rebinding-protection tests them as shipped.
start bare "$out/bin/conformance-server" --listen 127.0.0.1:0
bare_url="$url"
start embedded "$out/bin/conformance-server" --listen 127.0.0.1:0 --policy "$policy"
embedded_url="$url"
start proxy "$out/bin/portcullis" proxy --config "$policy" --listen 127.0.0.1:0 \
  --upstream-url "$bare_url"
proxy_url="$url"

status=0
for setup in bare embedded proxy; do
  case "$setup" in
    bare) u="$bare_url" ;; embedded) u="$embedded_url" ;; proxy) u="$proxy_url" ;;
  esac
  echo "== conformance ($setup): ${conformance[*]##*/} server --url $u --suite all" \
    "--expected-failures tests/conformance/expected-failures/$setup.yaml"
  if ! timeout 300 "${conformance[@]}" server --url "$u" --suite all \
      --expected-failures "$here/expected-failures/$setup.yaml" -o "$out/$setup" \
      >"$out/$setup-suite.log" 2>&1; then
    echo "conformance ($setup): unexpected result (log: $out/$setup-suite.log)" >&2
    sed -n '/=== SUMMARY ===/,$p' "$out/$setup-suite.log" >&2
    status=1
  fi
done

# The layer must have decided requests: count its audit decisions and the redaction the policy
# asks for (templateTest from the resource template read).
for setup in embedded proxy; do
  decisions=$(grep -c 'portcullis::audit: decision' "$out/$setup.log" || true)
  redacted=$(grep -c 'redacted=templateTest' "$out/$setup.log" || true)
  echo "conformance ($setup): $decisions policy decisions logged, $redacted with the templateTest redaction"
  if [ "$decisions" -eq 0 ] || [ "$redacted" -eq 0 ]; then
    echo "conformance ($setup): the policy layer did not decide the suite's requests" >&2
    status=1
  fi
done

summary="$out/summary.md"
if ! node "$here/summarize.mjs" "$out/scenarios.txt" \
    "bare=$out/bare=$here/expected-failures/bare.yaml" \
    "embedded=$out/embedded=$here/expected-failures/embedded.yaml" \
    "proxy=$out/proxy=$here/expected-failures/proxy.yaml" >"$summary"; then
  status=1
fi
cat "$summary"
if [ "$status" -ne 0 ]; then
  echo "conformance: FAILED (logs and checks in $out)" >&2
  exit 1
fi
echo "conformance: every setup matches its baseline ($(wc -l <"$out/scenarios.txt") scenarios each)"
