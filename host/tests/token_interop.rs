//! Interop with pymacaroons, both directions. The fixtures and the script that made them:
//! `python3 scripts/token-fixtures.py` (pymacaroons 0.13 from PyPI). Python-made tokens must
//! verify here and have their caveats (and a grant sealed in Python) applied; the Rust-made
//! tokens were verified by pymacaroons when the script ran, which it recorded with each
//! file's SHA-256.

#[path = "support/tokens.rs"]
mod support;

use std::path::PathBuf;

use portcullis::token::{self, Keyring, RootKey, TokenError};
use portcullis::{Effect, Engine};
use serde_json::json;
use sha2::{Digest, Sha256};
use support::at;

const SECRET: &str = "portcullis-interop-fixture-secret-0123456789";
/// 2027-01-15T08:00:00Z: when the Python fixtures say they were issued.
const ISSUED_MS: u64 = 1_800_000_000_000;

fn fixture(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "tokens",
        name,
    ]
    .iter()
    .collect();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn keys() -> Keyring {
    Keyring::new(
        RootKey::from_secret("k1", SECRET.as_bytes()).unwrap(),
        vec![],
    )
    .unwrap()
}

fn engine() -> Engine {
    Engine::from_str(
        "policies:\n  - \"bf:read_*:tool_access:allow\"\n  - \"bf:send_email:tool_access:elicit\"\n",
        "p.yaml",
    )
    .unwrap()
}

#[test]
fn python_made_tokens_verify_and_their_caveats_apply() {
    let engine = engine();
    for name in ["python-v2.txt", "python-v2.json"] {
        let text = fixture(name);
        let v = engine
            .verify_token(&keys(), &text, &[], &at(ISSUED_MS))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.subject.user, "ann");
        assert_eq!(v.subject.roles, ["analyst"]);
        let effect = |tool: &str| {
            engine
                .before_with(&v.request(tool, json!({})).at(ISSUED_MS), Some(&v))
                .effect
        };
        assert_eq!(effect("read_emails"), Effect::Allow, "{name}");
        assert_eq!(
            effect("read_secrets"),
            Effect::Deny,
            "{name}: token deny caveat"
        );
        assert_eq!(
            effect("send_email"),
            Effect::Deny,
            "{name}: tool = read_* narrows"
        );
        // Under another secret it does not verify.
        let other = Keyring::new(
            RootKey::from_secret("k1", b"another-secret-0123456789abcdef0123").unwrap(),
            vec![],
        )
        .unwrap();
        assert_eq!(
            engine
                .verify_token(&other, &text, &[], &at(ISSUED_MS))
                .unwrap_err(),
            TokenError::BadSignature
        );
    }
}

#[test]
fn a_grant_sealed_in_python_is_honoured() {
    let engine = engine();
    let v = engine
        .verify_token(&keys(), &fixture("python-grant.txt"), &[], &at(ISSUED_MS))
        .unwrap();
    assert_eq!(v.grants.len(), 1);
    let d = engine.before_with(&v.request("send_email", json!({})).at(ISSUED_MS), Some(&v));
    assert_eq!(d.effect, Effect::Allow, "{}", d.reason);
}

#[test]
fn a_python_third_party_caveat_and_bound_discharge_verify() {
    let engine = engine();
    let t = fixture("python-3p-token.txt");
    let d = fixture("python-3p-discharge.txt");
    engine
        .verify_token(&keys(), &t, &[&d], &at(ISSUED_MS))
        .unwrap();
    assert!(matches!(
        engine.verify_token(&keys(), &t, &[], &at(ISSUED_MS)),
        Err(TokenError::CaveatNotSatisfied(m)) if m.contains("ticket-42")
    ));
}

#[test]
fn rust_made_fixtures_were_verified_by_pymacaroons() {
    let record = fixture("rust-verified-by-pymacaroons.txt");
    let engine = engine();
    for name in [
        "rust-v2.txt",
        "rust-v2.json",
        "rust-grant.txt",
        "rust-3p-token.txt",
        "rust-3p-discharge.txt",
    ] {
        let path: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "tests",
            "fixtures",
            "tokens",
            name,
        ]
        .iter()
        .collect();
        let digest = Sha256::digest(std::fs::read(&path).unwrap());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            record.lines().any(|l| l == format!("{hex}  {name}")),
            "{name} changed since pymacaroons verified it: re-run python3 scripts/token-fixtures.py"
        );
    }
    // And they verify here, as of when they were made.
    let grant = fixture("rust-grant.txt");
    let issued = token::Identifier::parse(token::decode(&grant, "t").unwrap().identifier())
        .unwrap()
        .issued_unix
        * 1000;
    let v = engine
        .verify_token(&keys(), &grant, &[], &at(issued))
        .unwrap();
    let d = engine.before_with(&v.request("send_email", json!({})).at(issued), Some(&v));
    assert_eq!(d.effect, Effect::Allow, "{}", d.reason);
    let t = fixture("rust-3p-token.txt");
    engine
        .verify_token(
            &keys(),
            &t,
            &[&fixture("rust-3p-discharge.txt")],
            &at(issued),
        )
        .unwrap();
    for name in ["rust-v2.txt", "rust-v2.json"] {
        engine
            .verify_token(&keys(), &fixture(name), &[], &at(issued))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
