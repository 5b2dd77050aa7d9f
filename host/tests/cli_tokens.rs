//! `portcullis token ...` and `portcullis eval --token`: key rules, mint / attenuate /
//! inspect / discharge, grants through eval, rotation, and exit codes (0 ok or allow, 1 bad
//! input, 2 deny or does not verify, 3 elicit).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

const KEY: &str = "cli-test-root-key-0123456789abcdef0123456789";
const OLD_KEY: &str = "cli-test-old-root-key-0123456789abcdef012345";
const APPROVER: &str = "cli-test-approver-secret-0123456789abcdef0123";

const EMAIL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../policies/email-compact.yaml"
);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn explain(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    fn token(&self) -> String {
        assert_eq!(self.code, 0, "{}", self.explain());
        self.stdout.trim().to_string()
    }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("RUST_LOG")
        .env_remove("PORTCULLIS_ROOT_KEY")
        .args(["--log", "warn"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn with_key(args: &[&str]) -> Run {
    run(args, &[("PORTCULLIS_ROOT_KEY", KEY)])
}

fn mint(extra: &[&str]) -> String {
    let mut args = vec!["token", "mint", "--user", "ann"];
    args.extend_from_slice(extra);
    with_key(&args).token()
}

fn policy(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn mint_refuses_missing_short_and_default_keys() {
    let r = run(&["token", "mint", "--user", "ann"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert!(
        r.stderr.contains("PORTCULLIS_ROOT_KEY is not set"),
        "{}",
        r.explain()
    );
    assert!(r.stderr.contains("--insecure-dev-key"), "{}", r.explain());

    let r = run(
        &["token", "mint", "--user", "ann"],
        &[("PORTCULLIS_ROOT_KEY", "short")],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is 5 bytes: at least 32"),
        "{}",
        r.explain()
    );

    let r = run(
        &["token", "mint", "--user", "ann"],
        &[("PORTCULLIS_ROOT_KEY", "this_is_a_secret_key")],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("published default"), "{}", r.explain());
}

#[test]
fn the_insecure_dev_key_works_and_warns_every_time() {
    let r = run(
        &["token", "mint", "--user", "ann", "--insecure-dev-key"],
        &[],
    );
    let t = r.token();
    assert!(
        r.stderr.contains("insecure development key"),
        "{}",
        r.explain()
    );
    let r = run(
        &[
            "eval",
            "--config",
            EMAIL,
            "--tool",
            "read_emails",
            "--token",
            &t,
            "--insecure-dev-key",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        r.stderr.contains("insecure development key"),
        "{}",
        r.explain()
    );
    // It does not verify under a real key.
    let r = with_key(&[
        "eval",
        "--config",
        EMAIL,
        "--tool",
        "read_emails",
        "--token",
        &t,
    ]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stdout.contains("unknown key id \"insecure-dev\""),
        "{}",
        r.explain()
    );
}

#[test]
fn mint_inspect_and_verify() {
    let t = mint(&[
        "--role",
        "analyst",
        "--ttl",
        "2h",
        "--caveat",
        "tool = read_*",
    ]);
    assert!(!t.contains('='));
    let r = with_key(&["token", "inspect", &t, "--verify"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    for want in [
        "key id:   k1",
        "user:     ann",
        "roles:    analyst",
        "1. user = ann",
        "2. role = analyst",
        "4. tool = read_*",
        "verified:   yes",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?}\n{}", r.explain());
    }
    // Without --verify no key is needed.
    let r = run(&["token", "inspect", &t, "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["user"], "ann");
    assert_eq!(v["caveats"].as_array().unwrap().len(), 4);

    // Another key: exit 2 and why.
    let r = run(
        &["token", "inspect", &t, "--verify"],
        &[("PORTCULLIS_ROOT_KEY", OLD_KEY)],
    );
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stdout
            .contains("verified:   no: token signature does not verify"),
        "{}",
        r.explain()
    );
    // Expired (as of a later --now).
    let r = with_key(&[
        "token",
        "inspect",
        &t,
        "--verify",
        "--now",
        "2100-01-01T00:00:00Z",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("no: token expired at"), "{}", r.explain());
    // Garbage: bad input, naming the part.
    let r = run(&["token", "inspect", "not*a*token"], &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("malformed token: token: base64"),
        "{}",
        r.explain()
    );
    // Bad caveats and TTLs are refused at mint.
    let r = with_key(&[
        "token",
        "mint",
        "--user",
        "ann",
        "--caveat",
        "bf:x:tool_acess:deny",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("did you mean \"tool_access\""),
        "{}",
        r.explain()
    );
    let r = with_key(&["token", "mint", "--user", "ann", "--ttl", "soon"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("--ttl: bad duration \"soon\""),
        "{}",
        r.explain()
    );
}

#[test]
fn attenuate_needs_no_key_and_eval_applies_the_caveats() {
    let t = mint(&[]);
    let r = run(
        &[
            "token",
            "attenuate",
            &t,
            "--caveat",
            "tool = read_*",
            "--ttl",
            "10m",
        ],
        &[],
    );
    let narrowed = r.token();
    let r = with_key(&[
        "eval",
        "--config",
        EMAIL,
        "--tool",
        "read_emails",
        "--token",
        &narrowed,
    ]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let r = with_key(&[
        "eval",
        "--config",
        EMAIL,
        "--tool",
        "list_contacts",
        "--token",
        &narrowed,
    ]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stdout
            .contains("the token does not permit tool \"list_contacts\""),
        "{}",
        r.explain()
    );
    // The subject comes from the token; --user cannot be combined with it.
    let r = with_key(&[
        "eval",
        "--config",
        EMAIL,
        "--tool",
        "read_emails",
        "--token",
        &t,
        "--user",
        "bob",
    ]);
    assert_eq!(r.code, 1, "{}", r.explain());
    // A token that does not verify is a deny, with the reason.
    let r = with_key(&[
        "eval",
        "--config",
        EMAIL,
        "--tool",
        "read_emails",
        "--token",
        "AgE",
    ]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stdout.contains("token rejected: malformed token"),
        "{}",
        r.explain()
    );
    // Grants cannot be attenuated in by hand.
    let r = run(
        &["token", "attenuate", &t, "--caveat", "grant {\"v\":1}"],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.explain());
}

#[test]
fn eval_grant_accept_returns_a_token_that_is_not_asked_again() {
    let t = mint(&[]);
    let args = |tok: &str| {
        vec![
            "eval".to_string(),
            "--config".into(),
            EMAIL.into(),
            "--tool".into(),
            "send_email".into(),
            "--token".into(),
            tok.to_string(),
        ]
    };
    let plain = args(&t);
    let r = with_key(&as_refs(&plain));
    assert_eq!(r.code, 3, "{}", r.explain());

    let mut accept = args(&t);
    accept.extend(["--grant".into(), "accept".into(), "--json".into()]);
    let r = with_key(&as_refs(&accept));
    assert_eq!(r.code, 3, "{}", r.explain());
    let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let granted = out["token"].as_str().unwrap().to_string();

    let r = with_key(&as_refs(&args(&granted)));
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        r.stdout.contains("approved by the user until"),
        "{}",
        r.explain()
    );
    let r = with_key(&["token", "inspect", &granted]);
    assert!(
        r.stdout.contains("grant: accept send_email (tool_access)"),
        "{}",
        r.explain()
    );

    // Pasting the grant's text into another token does not carry the approval.
    let other = mint(&[]);
    let grant_text = {
        let r = run(&["token", "inspect", &granted, "--json"], &[]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["caveats"].as_array().unwrap().last().unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let forged = portcullis_append(&other, &grant_text);
    let r = with_key(&as_refs(&args(&forged)));
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(r.stdout.contains("seal does not verify"), "{}", r.explain());
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Appends a caveat with libmacaroon directly (the CLI refuses grants, a holder need not use it).
fn portcullis_append(token: &str, caveat: &str) -> String {
    let mut m = portcullis::token::decode(token, "token").unwrap();
    m.add_first_party_caveat(caveat.as_bytes()).unwrap();
    portcullis::token::encode(&m, false).unwrap()
}

#[test]
fn discharges_for_third_party_caveats() {
    let t = mint(&[]);
    let env = [("PORTCULLIS_ROOT_KEY", KEY), ("APPROVER_KEY", APPROVER)];
    let r = run(
        &[
            "token",
            "attenuate",
            &t,
            "--third-party",
            "https://approver.example",
            "--third-party-id",
            "ticket-1",
            "--third-party-key-env",
            "APPROVER_KEY",
        ],
        &env,
    );
    let t3 = r.token();
    let eval = |extra: &[&str]| {
        let mut a = vec![
            "eval",
            "--config",
            EMAIL,
            "--tool",
            "read_emails",
            "--token",
            &t3,
        ];
        a.extend_from_slice(extra);
        run(&a, &env)
    };
    let r = eval(&[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(r.stdout.contains("has no discharge"), "{}", r.explain());

    let d = run(
        &[
            "token",
            "discharge",
            "--location",
            "https://approver.example",
            "--id",
            "ticket-1",
            "--key-env",
            "APPROVER_KEY",
            "--ttl",
            "5m",
            "--bind",
            &t3,
        ],
        &env,
    )
    .token();
    let r = eval(&["--discharge", &d]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let r = run(
        &["token", "inspect", &t3, "--verify", "--discharge", &d],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        r.stdout
            .contains("third-party: discharge needed from https://approver.example")
    );

    // Unbound: refused.
    let unbound = run(
        &[
            "token",
            "discharge",
            "--location",
            "https://approver.example",
            "--id",
            "ticket-1",
            "--key-env",
            "APPROVER_KEY",
        ],
        &env,
    )
    .token();
    let r = eval(&["--discharge", &unbound]);
    assert_eq!(r.code, 2, "{}", r.explain());
    // Binding to a token without that caveat is a usage error.
    let r = run(
        &[
            "token",
            "discharge",
            "--location",
            "x",
            "--id",
            "nope",
            "--key-env",
            "APPROVER_KEY",
            "--bind",
            &t3,
        ],
        &env,
    );
    assert_eq!(r.code, 1, "{}", r.explain());
}

#[test]
fn rotation_through_the_config() {
    let dir = TempDir::new().unwrap();
    let v1 = policy(
        dir.path(),
        "v1.yaml",
        "config:\n  key_id: k2026a\npolicies: []\n",
    );
    let t = run(
        &[
            "token",
            "mint",
            "--user",
            "ann",
            "--config",
            v1.to_str().unwrap(),
        ],
        &[("PORTCULLIS_ROOT_KEY", OLD_KEY)],
    )
    .token();
    let v2 = policy(
        dir.path(),
        "v2.yaml",
        "config:\n  key_id: k2026b\n  retired_keys:\n    - { id: k2026a, env: PORTCULLIS_OLD_KEY }\npolicies: []\n",
    );
    let r = run(
        &[
            "token",
            "inspect",
            &t,
            "--verify",
            "--config",
            v2.to_str().unwrap(),
        ],
        &[
            ("PORTCULLIS_ROOT_KEY", KEY),
            ("PORTCULLIS_OLD_KEY", OLD_KEY),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    // The retired key's variable must be set while it is listed.
    let r = run(
        &[
            "token",
            "inspect",
            &t,
            "--verify",
            "--config",
            v2.to_str().unwrap(),
        ],
        &[("PORTCULLIS_ROOT_KEY", KEY)],
    );
    assert_eq!(r.code, 1, "{}", r.explain());
    assert!(
        r.stderr.contains("PORTCULLIS_OLD_KEY is not set"),
        "{}",
        r.explain()
    );
    // Removed from the list: no longer verifies.
    let v3 = policy(
        dir.path(),
        "v3.yaml",
        "config:\n  key_id: k2026b\npolicies: []\n",
    );
    let r = run(
        &[
            "token",
            "inspect",
            &t,
            "--verify",
            "--config",
            v3.to_str().unwrap(),
        ],
        &[("PORTCULLIS_ROOT_KEY", KEY)],
    );
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stdout.contains("unknown key id \"k2026a\""),
        "{}",
        r.explain()
    );
}

#[test]
fn key_config_errors_point_at_the_line() {
    let dir = TempDir::new().unwrap();
    let bad = policy(
        dir.path(),
        "bad.yaml",
        "config:\n  key_id: \"bad id\"\n  retired_keys:\n    - { id: k1, env: OLD }\n    - { id: k1, env: OLDER }\n    - { id: k3, env: PORTCULLIS_ROOT_KEY }\npolicies: []\n",
    );
    let r = run(&["check", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    for want in [
        "bad.yaml:2:11: key_id: bad key id \"bad id\"",
        "retired_keys[1].id \"k1\" is already used",
        "retired_keys[2].env \"PORTCULLIS_ROOT_KEY\" is the current key's variable",
    ] {
        assert!(r.stderr.contains(want), "missing {want:?}\n{}", r.explain());
    }
}
