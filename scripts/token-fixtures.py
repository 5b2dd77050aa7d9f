#!/usr/bin/env python3
"""Interop fixtures between Portcullis tokens and pymacaroons, in both directions.

1. Makes tokens with pymacaroons (0.13, PyPI) in Portcullis's format -- V2 binary, V2JSON,
   one carrying a grant sealed by this script, and one with a third-party caveat plus a
   discharge bound with prepare_for_request -- and writes them to host/tests/fixtures/tokens/.
   host/tests/token_interop.rs checks that Rust verifies them and applies their caveats.
2. Makes tokens with the Portcullis CLI (mint, eval --grant accept, attenuate --third-party,
   discharge --bind), verifies every one of them here with pymacaroons (signature chain,
   discharge binding, and every caveat including the grant's MAC), and records the SHA-256
   of each verified file in rust-verified-by-pymacaroons.txt, which the Rust test checks
   against the committed files.

Usage (from anywhere in the repository):
    pip install pymacaroons==0.13.0
    python3 scripts/token-fixtures.py            # regenerate everything, then verify
    python3 scripts/token-fixtures.py --check    # only verify the committed Rust fixtures

The secrets below are test-only and public.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from pymacaroons import MACAROON_V2, Macaroon, Verifier
from pymacaroons.serializers import JsonSerializer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "host" / "tests" / "fixtures" / "tokens"
SECRET = "portcullis-interop-fixture-secret-0123456789"
APPROVER_SECRET = "portcullis-interop-approver-secret-0123456789"
ISSUED = 1800000000  # 2027-01-15T08:00:00Z
FAR = 4102444800  # 2100-01-01T00:00:00Z
RUST_FILES = [
    "rust-v2.txt",
    "rust-v2.json",
    "rust-grant.txt",
    "rust-3p-token.txt",
    "rust-3p-discharge.txt",
]


def identifier(nonce, user="ann", roles=("analyst",)):
    return f"pc1:k1:{ISSUED}:{nonce}:{','.join(roles)}:{user}"


def grant_caveat(ident, accepted, kid, phase, tool, policy, params, exp):
    """A grant sealed exactly as Portcullis seals one (see host/src/token/grant.rs)."""
    key = hmac.new(SECRET.encode(), b"portcullis/grant/v1", hashlib.sha256).digest()

    def lp(b):
        return struct.pack(">I", len(b)) + b

    msg = b"".join(
        [
            lp(ident.encode()),
            lp(b"accept" if accepted else b"decline"),
            lp(kid.encode()),
            lp(phase.encode()),
            lp(tool.encode()),
            lp(policy.encode()),
            lp(struct.pack(">I", len(params))),
            *(lp(p.encode()) for p in params),
            lp(struct.pack(">Q", exp)),
        ]
    )
    mac = hmac.new(key, msg, hashlib.sha256).digest()
    wire = {
        "v": 1,
        "d": "accept" if accepted else "decline",
        "kid": kid,
        "ph": phase,
        "tool": tool,
        "policy": policy,
        "params": params,
        "exp": exp,
        "mac": __import__("base64").urlsafe_b64encode(mac).rstrip(b"=").decode(),
    }
    return "grant " + json.dumps(wire, separators=(",", ":"))


def write(name, text):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(text.strip() + "\n")
    print(f"wrote {(OUT / name).relative_to(ROOT)}")


def python_fixtures():
    m = Macaroon(
        location="python",
        identifier=identifier("00112233445566778899aabbccddeeff"),
        key=SECRET,
        version=MACAROON_V2,
    )
    for c in ["user = ann", "role = analyst", "tool = read_*", "bf:read_secrets:tool_access:deny"]:
        m.add_first_party_caveat(c)
    write("python-v2.txt", m.serialize())
    write("python-v2.json", m.serialize(JsonSerializer()))

    ident = identifier("0102030405060708090a0b0c0d0e0f10", roles=())
    g = Macaroon(location="python", identifier=ident, key=SECRET, version=MACAROON_V2)
    g.add_first_party_caveat("user = ann")
    g.add_first_party_caveat(
        grant_caveat(ident, True, "k1", "bf", "send_email", "tool_access", [], FAR)
    )
    write("python-grant.txt", g.serialize())

    t = Macaroon(
        location="python",
        identifier=identifier("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", roles=()),
        key=SECRET,
        version=MACAROON_V2,
    )
    t.add_first_party_caveat("user = ann")
    t.add_third_party_caveat(
        "https://approver.example", APPROVER_SECRET, "ticket-42", nonce=b"\x07" * 24
    )
    d = Macaroon(
        location="https://approver.example",
        identifier="ticket-42",
        key=APPROVER_SECRET,
        version=MACAROON_V2,
    )
    d.add_first_party_caveat("expires < 2100-01-01T00:00:00Z")
    write("python-3p-token.txt", t.serialize())
    write("python-3p-discharge.txt", t.prepare_for_request(d).serialize())


def portcullis(*args, stdin=None):
    env = dict(os.environ, PORTCULLIS_ROOT_KEY=SECRET, APPROVER_KEY=APPROVER_SECRET)
    cmd = ["cargo", "run", "-q", "-p", "portcullis", "--", "--log", "off", *args]
    return subprocess.run(
        cmd, cwd=ROOT, env=env, input=stdin, text=True, check=False, capture_output=True
    )


def rust_fixtures():
    mint = portcullis("token", "mint", "--user", "ann", "--role", "analyst", "--ttl", "366d",
                      "--caveat", "tool = read_*", "--caveat", "bf:read_secrets:tool_access:deny")
    assert mint.returncode == 0, mint.stderr
    write("rust-v2.txt", mint.stdout)
    js = portcullis("token", "attenuate", mint.stdout.strip(), "--caveat", "tool = read_e*",
                    "--json")
    assert js.returncode == 0, js.stderr
    write("rust-v2.json", js.stdout)

    plain = portcullis("token", "mint", "--user", "ann", "--ttl", "366d")
    assert plain.returncode == 0, plain.stderr
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write('config:\n  elicit_expiry: 31536000\npolicies:\n  - "bf:send_email:tool_access:elicit"\n')
        policy = f.name
    try:
        ev = portcullis("eval", "--config", policy, "--tool", "send_email",
                        "--token", plain.stdout.strip(), "--grant", "accept", "--json")
    finally:
        os.unlink(policy)
    assert ev.returncode == 3, ev.stderr
    write("rust-grant.txt", json.loads(ev.stdout)["token"])

    tp = portcullis("token", "attenuate", plain.stdout.strip(), "--third-party",
                    "https://approver.example", "--third-party-id", "ticket-9",
                    "--third-party-key-env", "APPROVER_KEY")
    assert tp.returncode == 0, tp.stderr
    write("rust-3p-token.txt", tp.stdout)
    dis = portcullis("token", "discharge", "--location", "https://approver.example",
                     "--id", "ticket-9", "--key-env", "APPROVER_KEY",
                     "--caveat", "expires < 2100-01-01T00:00:00Z", "--bind", tp.stdout.strip())
    assert dis.returncode == 0, dis.stderr
    write("rust-3p-discharge.txt", dis.stdout)


def satisfier(ident):
    """Checks every caveat the way Portcullis does (grant MACs included)."""
    ident = text(ident)
    _, kid, issued, _, roles, user = ident.split(":", 5)
    now = int(issued)

    def check(predicate):
        predicate = text(predicate)
        if predicate.startswith("grant "):
            g = json.loads(predicate[len("grant "):])
            expected = grant_caveat(ident, g["d"] == "accept", g["kid"], g["ph"], g["tool"],
                                    g["policy"], g["params"], g["exp"])
            return hmac.compare_digest(json.loads(expected[len("grant "):])["mac"], g["mac"])
        if predicate.startswith(("bf:", "af:")):
            return len(predicate.split(":")) >= 4
        key, _, value = predicate.partition(" = ")
        if key == "user":
            return value == user
        if key == "role":
            return value in roles.split(",")
        if key == "tool":
            return bool(value)
        if predicate.startswith("expires < "):
            t = datetime.datetime.fromisoformat(predicate[len("expires < "):].replace("Z", "+00:00"))
            return now < t.timestamp()
        return False

    return check


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def verify_rust_fixtures():
    digests = []
    for name in RUST_FILES:
        serialized = (OUT / name).read_text().strip()
        if name == "rust-3p-discharge.txt":
            continue
        m = Macaroon.deserialize(serialized, JsonSerializer() if name.endswith(".json") else None)
        discharges = []
        if name == "rust-3p-token.txt":
            discharges = [Macaroon.deserialize((OUT / "rust-3p-discharge.txt").read_text().strip())]
        v = Verifier()
        v.satisfy_general(satisfier(m.identifier))
        assert v.verify(m, SECRET, discharge_macaroons=discharges), name
        if name == "rust-grant.txt":
            assert any(text(c.caveat_id).startswith("grant ") for c in m.first_party_caveats())
        # A wrong key must fail, so the check above means something.
        try:
            bad = Verifier()
            bad.satisfy_general(satisfier(m.identifier))
            bad.verify(m, SECRET + "x", discharge_macaroons=discharges)
            raise AssertionError(f"{name} verified under a wrong key")
        except AssertionError:
            raise
        except Exception:
            pass
        print(f"pymacaroons verified {name}")
    for name in RUST_FILES:
        digest = hashlib.sha256((OUT / name).read_bytes()).hexdigest()
        digests.append(f"{digest}  {name}")
    (OUT / "rust-verified-by-pymacaroons.txt").write_text("\n".join(digests) + "\n")
    print("wrote rust-verified-by-pymacaroons.txt")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify the Rust fixtures")
    args = parser.parse_args()
    if not args.check:
        python_fixtures()
        rust_fixtures()
    verify_rust_fixtures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
