"""The one generator of what every engine is asked: the rules, the calls and their expected
answers, the documents to redact. Written as JSON files that the Rust side (Portcullis,
Cedar) and the Python side (the two seeds) both read, so no engine gets a different policy.

Rule set of size N (N = 10, 100, 1000), in evaluation order:
  rule 0        "deny-admin": anyone calling admin_tool is denied
  rules 1..N-1  "r<k>": role analyst may call tool_<k>
default effect: deny.

Calls (each with its expected decision and the rule that must decide it):
  allow         ann (analyst) calls tool_<N-1>: allowed by the last rule, r<N-1>
  deny          ann (analyst) calls admin_tool: denied by the first rule, deny-admin
  default_deny  gus (guest) calls tool_<N-1>: no rule applies, default deny

mcp-macaroon-middleware cannot express roles or a default deny: it gets the same N rules
without the role condition, in its own compact grammar (which Portcullis reads unchanged),
and only the allow and deny calls.
"""

import json
from pathlib import Path

SIZES = (10, 100, 1000)

# A weekday inside 09:00-17:00 Europe/Berlin, and a Saturday: 2027-01-15T10:00:00Z (Friday,
# 11:00 in Berlin) and 2027-01-16T10:00:00Z.
INSIDE_HOURS_MS = 1_800_007_200_000
OUTSIDE_HOURS_MS = INSIDE_HOURS_MS + 86_400_000
HOURS_PARAMS = ["0900-1700", "mon-fri", "tz=Europe/Berlin"]

REDACT_FIELDS = ["email", "ssn", "phone"]
REDACT_SIZES = {"1KB": 1024, "100KB": 100 * 1024}

# The MCP server comparison: one echo tool, named so that the N=10 rule set's last rule
# allows it, called with the same arguments by every client.
MCP = {"n": 10, "tool": "tool_9", "args": {"text": "hello"}, "blocks": 20, "per_block": 250}


def rules(n):
    out = [{"name": "deny-admin", "tool": "admin_tool", "roles": [], "effect": "deny"}]
    out += [
        {"name": f"r{k}", "tool": f"tool_{k}", "roles": ["analyst"], "effect": "allow"}
        for k in range(1, n)
    ]
    return out


def cases(n):
    last = f"tool_{n - 1}"
    return [
        {"case": "allow", "user": "ann", "roles": ["analyst"], "tool": last,
         "expect": "allow", "rule": f"r{n - 1}", "position": n},
        {"case": "deny", "user": "ann", "roles": ["analyst"], "tool": "admin_tool",
         "expect": "deny", "rule": "deny-admin", "position": 1},
        {"case": "default_deny", "user": "gus", "roles": ["guest"], "tool": last,
         "expect": "deny", "rule": None, "position": None},
    ]


def compact_lines(n):
    """The same rules in the seed's grammar: no roles, so no subject check."""
    return [f"bf:{r['tool']}:tool_access:{r['effect']}" for r in rules(n)]


def rule_set(n):
    return {
        "n": n,
        "default_effect": "deny",
        "rules": rules(n),
        "cases": cases(n),
        "compact": compact_lines(n),
        # Compact rules have no default deny in the seed: an unmatched tool is allowed.
        "compact_default_effect": "allow",
        "compact_cases": ["allow", "deny"],
        # One more rule for the enforcer comparison: the last tool also needs office hours.
        "hours": {
            "tool": f"tool_{n - 1}",
            "params": HOURS_PARAMS,
            "compact": f"bf:tool_{n - 1}:business_hours:allow:" + ":".join(HOURS_PARAMS),
            "inside_ms": INSIDE_HOURS_MS,
            "outside_ms": OUTSIDE_HOURS_MS,
        },
    }


def document(size):
    """A profile-like JSON object of about `size` bytes: the three top-level fields to redact
    (the seed redacts top-level keys only) and a list of items as padding."""
    doc = {
        "name": "Ann Example",
        "email": "ann@example.com",
        "ssn": "123-45-6789",
        "phone": "+1-202-555-0147",
        "items": [],
    }
    item = {"id": 1000, "title": "lorem ipsum dolor sit amet", "tags": ["a", "b"]}
    per_item = len(json.dumps(item)) + 2
    count = max(0, size - len(json.dumps(doc))) // per_item
    doc["items"] = [
        {"id": i, "title": "lorem ipsum dolor sit amet", "tags": ["a", "b"]} for i in range(count)
    ]
    return doc


def redaction():
    return {
        "tool": "get_profile",
        "fields": REDACT_FIELDS,
        "compact": [
            "bf:get_profile:tool_access:allow",
            "af:get_profile:field_access:deny:" + ":".join(REDACT_FIELDS),
        ],
        "documents": {label: json.dumps(document(size)) for label, size in REDACT_SIZES.items()},
    }


def write(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = {
        "rule_sets": [rule_set(n) for n in SIZES],
        "redaction": redaction(),
        "mcp": MCP,
    }
    for label, text in spec["redaction"]["documents"].items():
        size = REDACT_SIZES[label]
        assert 0.9 * size <= len(text) <= 1.1 * size, (label, len(text))
    (out / "spec.json").write_text(json.dumps(spec, indent=1))
    return spec


def load(out_dir):
    return json.loads((Path(out_dir) / "spec.json").read_text())
