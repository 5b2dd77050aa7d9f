#!/usr/bin/env python3
"""Writes the committed seed corpora, fuzz/corpus/<target>/seed-*, from the project's real
inputs: the policies in policies/, the README's examples, the token fixtures, field paths from
the README and the tests, and enforcer verdicts. Re-run after changing it:
    python3 fuzz/seeds.py
Seeds are small (under 4 KiB each); libFuzzer's own additions are not committed."""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    assert len(data) <= 4096, (target, name, len(data))
    (d / f"seed-{name}").write_bytes(data)


# ---- policy_load -------------------------------------------------------------
for p in sorted((ROOT / "policies").glob("*.yaml")):
    write("policy_load", p.stem, p.read_text())
# The examples' policies: the mail server's (tokens, API keys, enforcers) and conformance's.
for p in sorted((ROOT / "examples" / "mailroom" / "policies").glob("*.yaml")):
    write("policy_load", f"mailroom-{p.stem}", p.read_text())
write("policy_load", "conformance", (ROOT / "examples" / "conformance" / "policy.yaml").read_text())
write("policy_load", "readme-compact", """policies:
  - "bf:admin_tool:tool_access:deny"
  - "af:get_user_profile:field_access:deny:user_pii.social_security_number"
  - "af:read_emails:field_access:elicit:attachments"
  - "bf:export_mailbox:allow_attempts:allow:3"
  - "bf:beta_search:tool_access:allow:time<20301231T235959Z"
""")
write("policy_load", "readme-structured", """config:
  default_effect: allow
  elicit_expiry: 60
  key_id: k2
  retired_keys: [{id: k0, env: PORTCULLIS_OLD_KEY}]
  limits: { timeout_ms: 50, memory_mib: 32, enforcers: { pii_guard: { timeout_ms: 1000, memory_mib: 64 } } }
  redaction: remove
  hide_denied_tools: false
policies:
  - name: analysts-read
    description: free text
    phase: before
    tools: ["get_*", "list_users", "{get,list}_user", "tool_?", "[a-z]*", "\\\\*"]
    subjects:
      users: [ann, bob]
      roles: [analyst]
      agents: [claude-desktop]
    when:
      - { field: args.limit, op: lte, value: 1000 }
      - { field: tool.name, op: regex, value: "(?i)get_.*" }
      - { field: user.roles, op: contains, value: analyst }
      - { field: args.items.0.id, op: in, value: [1, 2] }
      - { field: user.attributes.dept, op: exists, value: false }
      - { field: args.q, op: starts_with, value: "a" }
      - { field: args.n, op: gt, value: "10" }
    policy: tool_access
    action: allow
    params: []
    priority: 10
    expires: 2030-12-31T23:59:59Z
  - name: redact
    phase: after
    tools: ["*"]
    policy: field_access
    action: deny
    params: ["items[*].email", "users.*.ssn", "headers[\\"x.api-key\\"]", "/a/0/b", "a.0"]
""")
write("policy_load", "anchors", """x: &t ["read_*"]
policies:
  - { tools: *t, action: allow }
  - "bf:x:tool_access:deny"
""")
write("policy_load", "auth-modes", """config:
  auth: { mode: fixed }
policies: ["bf:*:tool_access:allow"]
""")
write("policy_load", "errors", """config:
  default_effect: maybe
  secret_key: hunter2
policies:
  - "bf:admin_tool:tool_acess:deny"
  - "bf:t:tool_access:deny:time<2026"
  - { name: a, tools: [], action: allow, when: [{ field: args.x, op: gt, value: abc }] }
  - { name: a, tools: ["["], action: nope }
""")

# ---- compact_caveat ----------------------------------------------------------
compact = [
    "bf:admin_tool:tool_access:deny",
    "af:get_user_profile:field_access:deny:user_pii.social_security_number",
    "af:read_emails:field_access:elicit:attachments",
    "bf:export_mailbox:allow_attempts:allow:3",
    "bf:beta_search:tool_access:allow:time<20301231T235959Z",
    "af:get_user_profile:field_access:deny:user_pii.social_security_number:user_pii.bank.account_number",
    "af:list_contacts:field_access:deny:contacts[*].phone",
    "bf:run_query:sql_safety:deny:read_only:no_multi:dialect=sqlite",
    "bf:deploy:business_hours:allow:0900-1700:mon-fri:tz=Europe/Berlin",
    "bf:{send,admin}_*:tool_access:elicit",
    "af:read_*:field_access:deny:/a~1b/0:headers[\"x.api-key\"]",
    "user = ann",
    "role = analyst",
    "tool = read_*",
    "expires < 2026-12-31T23:59:59Z",
    'grant {"v":1,"d":"accept","kid":"k1","ph":"bf","tool":"send_email","policy":"tool_access","params":[],"exp":4102444800,"mac":"00"}',
    "20261231T235959Z",
]
for i, c in enumerate(compact):
    write("compact_caveat", f"{i:02}", c)

# ---- token_verify ------------------------------------------------------------
fx = ROOT / "host" / "tests" / "fixtures" / "tokens"
pairs = [
    ("python-v2", "python-v2.txt", None),
    ("python-json", "python-v2.json", None),
    ("python-grant", "python-grant.txt", None),
    ("python-3p", "python-3p-token.txt", "python-3p-discharge.txt"),
    ("rust-v2", "rust-v2.txt", None),
    ("rust-json", "rust-v2.json", None),
    ("rust-grant", "rust-grant.txt", None),
    ("rust-3p", "rust-3p-token.txt", "rust-3p-discharge.txt"),
]
for name, t, d in pairs:
    text = (fx / t).read_text().strip()
    if d:
        text += "\n" + (fx / d).read_text().strip()
    write("token_verify", f"text-{name}", b"\x00" + text.encode())
# Structured mode: seed token N (the target's own list: 8 fixtures, then 2 minted), each
# encoding, no edits, and one edit each of flip / insert / delete / truncate / set.
for n in range(10):
    for how in range(4):
        write("token_verify", f"edit-{n}-{how}", bytes([1, n, how]))
    write("token_verify", f"edit-{n}-ops", bytes([1, n, 4, 0, 0, 40, 1, 1, 0, 7, 0x41, 2, 0, 90, 0, 4, 0, 20, 0x30]))
    write("token_verify", f"edit-{n}-cut", bytes([1, n, 0, 3, 0, 200, 0]))

# ---- field_path --------------------------------------------------------------
doc = {
    "a": {"b": {"c": 1, "d": 2}, "0": {"b": 3}},
    "items": [{"email": "x", "id": 1}, {"email": "y", "id": 2}, 7],
    "users": {"al": {"ssn": 1, "n": "a"}, "bo": {"ssn": 2}},
    "headers": {"x.api-key": "k", "x": {"api-key": "no"}},
    "a/b": {"c~d": 1},
    "user_pii": {"social_security_number": "123", "bank": {"account_number": "9"}},
    "contacts": [{"phone": "1"}, {"phone": "2"}],
    "": 5,
}
root_array = [{"ssn": 1, "n": "a"}, {"ssn": 2}, {"n": "c"}, 5, [{"ssn": 9}]]
paths = [
    "a.b.c", "items[0]", "items[*].email", "users.*.ssn", 'headers["x.api-key"]', "a['b.c']",
    "/a/0/b", "/a~1b/c~0d", "a.0", "a.0.b", "*", "*.password", "[0].a", "[*]", "/", "//",
    "user_pii.social_security_number", "user_pii.bank.account_number", "contacts[*].phone",
    'a["q\\"uo\\\\te"]', "m[1][2]", "ssn", "/ssn", "/1/ssn", "/7",
]
for i, p in enumerate(paths):
    d = root_array if "ssn" in p and "users" not in p else doc
    for mode in (0, 1):
        body = json.dumps(d, separators=(",", ":")).encode()
        write("field_path", f"{i:02}-{mode}", bytes([mode | (2 if i % 3 == 0 else 0)]) + p.encode() + b"\n" + body)
# Byte-built documents (the rest is not JSON): deep objects, and arrays.
write("field_path", "built-deep", b"\x00a.b\n" + b"\x00\x00\x01" * 150)
write("field_path", "built-arrays", b"\x01items[*].email\n" + b"\x02\x03\x00\x02\x04\x07\x00\x03\x05\x09")

# ---- verdict -----------------------------------------------------------------
ALLOW, DENY, ELICIT, REPLACE = 0, 1, 2, 3
BEFORE, AFTER = 0, 4
write("verdict", "allow-empty", bytes([ALLOW | BEFORE]))
write("verdict", "allow-caveats", bytes([ALLOW | AFTER]) + "\n".join(compact[:5]).encode())
write("verdict", "allow-bad", bytes([ALLOW]) + b"bf:t:tool_access:deny:extra")
write("verdict", "deny", bytes([DENY]) + b"outside office hours (09:00-17:00 Europe/Berlin)")
write("verdict", "deny-blank", bytes([DENY]) + b" \t")
write("verdict", "elicit", bytes([ELICIT | AFTER]) + "Allow sending mail to ✉ bob@example.com?".encode())
write("verdict", "replace", bytes([REPLACE | AFTER]) + json.dumps(
    {"content": [{"type": "text", "text": "{\"ssn\":\"***\"}"}], "structuredContent": {"ssn": "***"}, "isError": False}).encode())
write("verdict", "replace-before", bytes([REPLACE | BEFORE]) + b'{"content":[]}')
write("verdict", "replace-bad", bytes([REPLACE | AFTER]) + b'{"content":{}}')
