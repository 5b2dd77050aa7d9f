#!/usr/bin/env bash
# The main job: builds Portcullis and the example MCP server, then
#  1. runs an MCP client through the example server (examples/mailroom) with Portcullis inside,
#  2. runs the same client through `portcullis proxy` in front of the unmodified server,
#  3. walks through the example policies with `check` and `eval`, and capability tokens.
# Each MCP step is checked: the script fails if any decision is not the expected one.
# Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
bash enforcers/build.sh
# The dev profile: dependencies are optimized anyway (Cargo.toml), and it shares the build
# with the tests instead of compiling wasmtime a second time for release.
cargo build --locked -q -p portcullis -p mailroom
target="${CARGO_TARGET_DIR:-target}/debug"
bin="$target/portcullis"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
run() {  # run a command, show its exit code, never stop the demo on a deny
  step "portcullis ${*}"
  set +e; "$bin" --log off "$@"; code=$?; set -e
  echo "(exit $code)"
}

policy=examples/mailroom/policies/mailroom.yaml
echo "== 1. An MCP server with Portcullis inside: examples/mailroom with $policy"
step "walkthrough -- mailroom --config $policy"
"$target/walkthrough" -- "$target/mailroom" --config "$policy"

echo; echo "== 2. The same policy in front of the unmodified server: portcullis proxy"
step "walkthrough -- portcullis proxy --config $policy -- mailroom --no-policy"
"$target/walkthrough" -- "$bin" --log error proxy --config "$policy" -- "$target/mailroom" --no-policy

echo; echo "== 3. Policies from the command line"
run check --config policies/email-compact.yaml
run check --config policies/structured.yaml

echo; echo "== Compact, seed-compatible rules (policies/email-compact.yaml)"
run eval --config policies/email-compact.yaml --tool read_emails --user alice
run eval --config policies/email-compact.yaml --tool admin_tool --user alice
run eval --config policies/email-compact.yaml --tool send_email --user alice
run eval --config policies/email-compact.yaml --tool drop_database --user alice
run eval --config policies/email-compact.yaml --tool get_user_profile --user alice \
  --result '{"name":"Alice","user_pii":{"social_security_number":"123-45-6789","bank":{"account_number":"DE89 3704"}}}'
run eval --config policies/email-compact.yaml --tool read_emails --user alice \
  --result '{"content":[{"type":"text","text":"[{\"subject\":\"Q3\",\"body\":\"numbers\",\"attachments\":[\"q3.pdf\"]}]"}]}'

echo; echo "== Structured rules with roles and conditions (policies/structured.yaml)"
run eval --config policies/structured.yaml --tool get_ticket --role analyst --args '{"limit": 50}'
run eval --config policies/structured.yaml --tool get_ticket --role analyst --args '{"limit": "5000"}'
run eval --config policies/structured.yaml --tool delete_ticket --role admin --args '{"id": "*"}'
run eval --config policies/structured.yaml --tool export_report --role analyst --args '{"destination": "s3://outside"}' --json

echo; echo "== WebAssembly enforcers (policies/enforcers.yaml)"
run enforcers list --config policies/enforcers.yaml
run eval --config policies/enforcers.yaml --tool run_query --args '{"query": "SELECT name FROM users WHERE id = 7"}'
run eval --config policies/enforcers.yaml --tool run_query --args '{"query": "SELECT 1; DROP TABLE users"}'
run eval --config policies/enforcers.yaml --tool run_admin_query --args '{"query": "DELETE FROM users"}'
run eval --config policies/enforcers.yaml --tool deploy --now 2026-11-18T10:00:00+01:00
run eval --config policies/enforcers.yaml --tool deploy --now 2026-11-21T10:00:00+01:00
run eval --config policies/enforcers.yaml --tool get_customer \
  --result '{"name":"Ann","email":"ann@example.com","card":"4111 1111 1111 1111","order":"4111 1111 1111 1112"}'

echo; echo "== Capability tokens (a random root key for this demo)"
PORTCULLIS_ROOT_KEY="$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
export PORTCULLIS_ROOT_KEY
step "portcullis token mint --user alice --ttl 1h --caveat 'tool = {read,send}_*'"
token=$("$bin" --log off token mint --user alice --ttl 1h --caveat 'tool = {read,send}_*')
echo "$token"
run token inspect "$token" --verify
run eval --config policies/email-compact.yaml --tool list_contacts --token "$token"
run eval --config policies/email-compact.yaml --tool send_email --token "$token"
step "portcullis eval --config policies/email-compact.yaml --tool send_email --token \$token --grant accept"
# The decision is still elicit (exit 3): the user is answering it; the new token is the output.
granted=$({ "$bin" --log off eval --config policies/email-compact.yaml --tool send_email \
  --token "$token" --grant accept || true; } | sed -n 's/^token:   //p')
[ -n "$granted" ] || { echo "demo: eval --grant accept printed no token" >&2; exit 1; }
echo "new token with a sealed grant: $granted"
run eval --config policies/email-compact.yaml --tool send_email --token "$granted"

echo; echo "== The audit trail: one JSON line per decision on stderr"
step "portcullis --log-format json eval --config policies/email-compact.yaml --tool admin_tool"
"$bin" --log-format json eval --config policies/email-compact.yaml --tool admin_tool >/dev/null || true
