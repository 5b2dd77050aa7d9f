//! Capability tokens end to end: formats, every verification failure as its own error,
//! monotonic semantics in the engine, sealed grants (and forgeries of them), rotation,
//! third-party caveats and the session store.

#[path = "support/tokens.rs"]
mod support;

use std::num::NonZeroUsize;
use std::time::Duration;

use libmacaroon::{Macaroon, MacaroonKey};
use portcullis::token::{self, Keyring, SessionTokens, TokenError, VerifyOptions};
use portcullis::{Effect, Engine, Origin, Phase, Request, Subject, ToolResult};
use serde_json::{Value, json};
use support::*;

const POLICY: &str = r#"
config:
  default_effect: deny
  elicit_expiry: 600
policies:
  - "bf:read_*:tool_access:allow"
  - "bf:list_*:tool_access:allow"
  - "bf:admin_tool:tool_access:deny"
  - "bf:send_email:tool_access:elicit"
  - "bf:delete_*:tool_access:elicit"
  - "af:read_emails:field_access:elicit:attachments"
  - "af:read_emails:field_access:deny:body"
"#;

fn engine() -> Engine {
    Engine::from_str(POLICY, "p.yaml").unwrap()
}

fn call(token: &token::VerifiedToken, tool: &str) -> Request {
    token.request(tool, json!({})).at(NOW)
}

fn before(engine: &Engine, token: &str, tool: &str) -> Effect {
    let v = verify(engine, &keys(), token).unwrap();
    engine.before_with(&call(&v, tool), Some(&v)).effect
}

fn email() -> ToolResult {
    ToolResult::from_json_value(
        json!({"subject": "hi", "body": "secret", "attachments": ["a.pdf"]}),
    )
}

/// Rewrites a token through its V2JSON form.
fn edit_json(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let m = token::decode(token, "token").unwrap();
    let mut v: Value = serde_json::from_str(&token::encode(&m, true).unwrap()).unwrap();
    edit(&mut v);
    v.to_string()
}

// ---------------------------------------------------------------- formats

#[test]
fn round_trips_in_v2_binary_and_v2json() {
    let engine = engine();
    let t = mint_with(&keys(), "ann", &["analyst"], &["tool = read_*"]);
    assert!(!t.contains('='), "base64url without padding: {t}");
    let v = verify(&engine, &keys(), &t).unwrap();
    assert_eq!(v.subject, Subject::user("ann").with_role("analyst"));
    assert_eq!(v.key_id, "k1");
    assert_eq!(v.identifier.issued_unix, NOW / 1000);

    let m = token::decode(&t, "token").unwrap();
    let json = token::encode(&m, true).unwrap();
    assert!(json.starts_with('{'), "{json}");
    let from_json = token::decode(&json, "token").unwrap();
    assert_eq!(from_json, m);
    assert_eq!(token::encode(&from_json, false).unwrap(), t);
    let vj = verify(&engine, &keys(), &json).unwrap();
    assert_eq!(vj.identifier, v.identifier);

    // Padded and standard-alphabet base64 are accepted too (other libraries emit them).
    let padded = m.serialize(libmacaroon::Format::V2).unwrap();
    verify(&engine, &keys(), &padded).unwrap();
}

#[test]
fn each_failure_is_its_own_error() {
    let engine = engine();
    let t = mint("ann", &["tool = read_*", "bf:delete_*:tool_access:deny"]);

    // Tampered signature.
    let tampered = edit_json(&t, |v| {
        let s = v["s64"].as_str().unwrap().to_string();
        let flipped = if s.starts_with('A') { "B" } else { "A" };
        v["s64"] = Value::String(format!("{flipped}{}", &s[1..]));
    });
    assert_eq!(
        verify(&engine, &keys(), &tampered).unwrap_err(),
        TokenError::BadSignature
    );

    // Removed caveat.
    let removed = edit_json(&t, |v| {
        v["c"].as_array_mut().unwrap().pop();
    });
    assert_eq!(
        verify(&engine, &keys(), &removed).unwrap_err(),
        TokenError::BadSignature
    );

    // Reordered caveats.
    let reordered = edit_json(&t, |v| {
        v["c"].as_array_mut().unwrap().swap(1, 2);
    });
    assert_eq!(
        verify(&engine, &keys(), &reordered).unwrap_err(),
        TokenError::BadSignature
    );

    // Changed caveat text.
    let changed = edit_json(&t, |v| {
        v["c"][1] = json!({"i": "tool = *"});
    });
    assert_eq!(
        verify(&engine, &keys(), &changed).unwrap_err(),
        TokenError::BadSignature
    );

    // Expired.
    let short = {
        let m = token::mint(
            &keys(),
            &token::MintSpec {
                user: "ann".into(),
                ttl: Some(Duration::from_secs(60)),
                ..Default::default()
            },
            NOW,
            &token::UncheckedEnforcers,
        )
        .unwrap();
        token::encode(&m, false).unwrap()
    };
    assert!(
        engine
            .verify_token(&keys(), &short, &[], &at(NOW + 59_000))
            .is_ok()
    );
    assert_eq!(
        engine
            .verify_token(&keys(), &short, &[], &at(NOW + 60_000))
            .unwrap_err(),
        TokenError::Expired {
            at: "2027-01-15T08:01:00Z".into()
        }
    );

    // Wrong key: same id, another secret; and a key id this host does not hold.
    let other = keyring("k1", "another-secret-that-is-long-enough-0000", &[]);
    assert_eq!(
        verify(&engine, &other, &t).unwrap_err(),
        TokenError::BadSignature
    );
    let k2 = keyring("k2", SECRET, &[]);
    assert_eq!(
        verify(&engine, &k2, &t).unwrap_err(),
        TokenError::UnknownKey("k1".into())
    );

    // Truncated and garbage base64.
    for (text, part) in [
        (&t[..t.len() - 7], "token: "),
        (&t[..40], "token: "),
        ("%%%not-a-token", "token: base64"),
        ("", "token: text"),
    ] {
        match verify(&engine, &keys(), text) {
            Err(TokenError::Malformed { part: p, .. }) => assert!(p.starts_with(part), "{p}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    // Oversized, by bytes and by caveat count.
    let huge = append_raw(&t, &[&format!("user = {}", "a".repeat(17_000))]);
    assert!(matches!(
        verify(&engine, &keys(), &huge),
        Err(TokenError::TooLarge { limit: 16384, .. })
    ));
    let many: Vec<String> = (0..70).map(|i| format!("tool = t{i}*")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(matches!(
        verify(&engine, &keys(), &append_raw(&t, &many)),
        Err(TokenError::TooLarge { limit: 64, .. })
    ));

    // Unknown caveat (fail closed) and a caveat that does not hold.
    assert_eq!(
        verify(&engine, &keys(), &append_raw(&t, &["account = 42"])).unwrap_err(),
        TokenError::UnknownCaveat {
            caveat: "account = 42".into(),
            why: "unknown key \"account\" =: ".to_string() + token::caveat::EXPECTED,
        }
    );
    match verify(&engine, &keys(), &append_raw(&t, &["user = bob"])) {
        Err(TokenError::CaveatNotSatisfied(m)) => assert!(m.contains("issued to user \"ann\"")),
        other => panic!("{other:?}"),
    }
    match verify(&engine, &keys(), &append_raw(&t, &["role = admin"])) {
        Err(TokenError::CaveatNotSatisfied(m)) => assert!(m.contains("cannot be added"), "{m}"),
        other => panic!("{other:?}"),
    }

    // Subject binding: the identity layer says bob, the token is ann's.
    let opts = VerifyOptions {
        now_unix_ms: NOW,
        user: Some("bob"),
    };
    assert!(matches!(
        engine.verify_token(&keys(), &t, &[], &opts),
        Err(TokenError::CaveatNotSatisfied(m)) if m.contains("not \"bob\"")
    ));
}

#[test]
fn identifiers_that_are_not_ours_are_malformed() {
    let key = MacaroonKey::generate(SECRET.as_bytes());
    let m = Macaroon::create(Some("mcp_server"), &key, "user_ann").unwrap();
    match verify(&engine(), &keys(), &token::encode(&m, false).unwrap()) {
        Err(TokenError::Malformed { part, detail }) => {
            assert_eq!(part, "token: identifier");
            assert!(detail.contains("version \"user_ann\""), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v1_serialization_is_refused() {
    let key = MacaroonKey::generate(SECRET.as_bytes());
    let m = Macaroon::create(
        Some("x"),
        &key,
        "pc1:k1:1:00000000000000000000000000000000::ann",
    )
    .unwrap();
    let v1 = m.serialize(libmacaroon::Format::V1).unwrap();
    assert!(matches!(
        verify(&engine(), &keys(), &v1),
        Err(TokenError::Malformed { part, detail }) if part == "token: macaroon" && detail.contains("V1")
    ));
}

// ---------------------------------------------------------------- monotonic semantics

#[test]
fn token_caveats_only_restrict() {
    let engine = engine();
    let plain = mint("ann", &[]);
    assert_eq!(before(&engine, &plain, "read_emails"), Effect::Allow);
    assert_eq!(before(&engine, &plain, "admin_tool"), Effect::Deny);
    assert_eq!(before(&engine, &plain, "send_email"), Effect::Elicit);
    assert_eq!(before(&engine, &plain, "unknown_tool"), Effect::Deny);

    // A token allow never overrides a server deny, elicit, or default deny.
    let pushy = mint(
        "ann",
        &["bf:admin_tool:tool_access:allow", "bf:*:tool_access:allow"],
    );
    assert_eq!(before(&engine, &pushy, "admin_tool"), Effect::Deny);
    let pushy = mint("ann", &["bf:send_email:tool_access:allow"]);
    assert_eq!(before(&engine, &pushy, "send_email"), Effect::Elicit);
    let pushy = mint("ann", &["bf:unknown_tool:tool_access:allow"]);
    assert_eq!(before(&engine, &pushy, "unknown_tool"), Effect::Deny);
    // A token elicit cannot soften the server's default deny into a question (found by
    // token_props).
    let asks = mint("ann", &["bf:unknown_tool:tool_access:elicit"]);
    assert_eq!(before(&engine, &asks, "unknown_tool"), Effect::Deny);

    // Token deny / elicit add to the server's rules, and show in the trace as token rules.
    let t = mint(
        "ann",
        &[
            "bf:read_secrets:tool_access:deny",
            "bf:read_mail:tool_access:elicit",
        ],
    );
    let v = verify(&engine, &keys(), &t).unwrap();
    let d = engine.before_with(&call(&v, "read_secrets"), Some(&v));
    assert_eq!(d.effect, Effect::Deny);
    let m = d.matched.iter().find(|m| m.effect == Effect::Deny).unwrap();
    assert_eq!(m.origin, Origin::Token);
    assert_eq!(&*m.id, "bf:read_secrets:tool_access:deny");
    assert_eq!(before(&engine, &t, "read_mail"), Effect::Elicit);
    assert_eq!(before(&engine, &t, "read_other"), Effect::Allow);
}

#[test]
fn tool_and_allow_caveats_narrow_the_token() {
    let engine = engine();
    let t = mint("ann", &["tool = read_*"]);
    assert_eq!(before(&engine, &t, "read_emails"), Effect::Allow);
    let v = verify(&engine, &keys(), &t).unwrap();
    let d = engine.before_with(&call(&v, "list_contacts"), Some(&v));
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(
        d.reason,
        "the token does not permit tool \"list_contacts\" (caveat `tool = read_*`)"
    );
    assert_eq!(d.matched[0].origin, Origin::Token);

    // Each narrowing caveat is a separate restriction: all must cover the call.
    let t = mint(
        "ann",
        &["bf:{read,list}_*:tool_access:allow", "tool = list_*"],
    );
    assert_eq!(before(&engine, &t, "list_contacts"), Effect::Allow);
    assert_eq!(before(&engine, &t, "read_emails"), Effect::Deny);

    // An expired allow caveat covers nothing.
    let t = mint(
        "ann",
        &["bf:read_*:tool_access:allow:time<20270101T000000Z"],
    );
    let v = verify(&engine, &keys(), &t).unwrap();
    let d = engine.before_with(&call(&v, "read_emails"), Some(&v));
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.reason.contains("it has expired"), "{}", d.reason);

    // The after phase also refuses a tool the token does not cover.
    let t = mint("ann", &["tool = list_*"]);
    let v = verify(&engine, &keys(), &t).unwrap();
    let (d, out) = engine.after_with(&call(&v, "read_emails"), email(), Some(&v));
    assert_eq!(d.effect, Effect::Deny);
    assert!(out.is_error && out.structured.is_none());
}

#[test]
fn token_field_caveats_add_redactions() {
    let engine = engine();
    let t = mint("ann", &["af:read_*:field_access:deny:subject"]);
    let v = verify(&engine, &keys(), &t).unwrap();
    let (d, out) = engine.after_with(&call(&v, "read_emails"), email(), Some(&v));
    let s = out.structured.unwrap();
    assert_eq!(s["subject"], "[REDACTED]");
    assert_eq!(s["body"], "[REDACTED]");
    assert_eq!(s["attachments"], "[REDACTED]");
    assert_eq!(d.effect, Effect::Elicit); // attachments still await approval
    assert!(
        d.redactions
            .iter()
            .any(|r| &*r.path == "subject" && r.effect == Effect::Deny)
    );
    // A token field allow lifts nothing.
    let t = mint(
        "ann",
        &["af:read_emails:field_access:allow:body:attachments"],
    );
    let v = verify(&engine, &keys(), &t).unwrap();
    let (_, out) = engine.after_with(&call(&v, "read_emails"), email(), Some(&v));
    assert_eq!(out.structured.unwrap()["body"], "[REDACTED]");
}

#[test]
fn the_request_subject_must_be_the_tokens() {
    let engine = engine();
    let t = mint_with(&keys(), "ann", &["analyst"], &[]);
    let v = verify(&engine, &keys(), &t).unwrap();
    let bob = Request::new(Subject::user("bob"), "read_emails", json!({})).at(NOW);
    let d = engine.before_with(&bob, Some(&v));
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.reason.contains("issued to user \"ann\""), "{}", d.reason);
    let admin = Request::new(
        Subject::user("ann").with_role("analyst").with_role("admin"),
        "read_emails",
        json!({}),
    )
    .at(NOW);
    let d = engine.before_with(&admin, Some(&v));
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.reason.contains("role \"admin\""), "{}", d.reason);
}

#[test]
fn token_allow_attempts_budget_only_restricts() {
    let engine = engine();
    let t = mint("ann", &["bf:read_emails:allow_attempts:allow:2"]);
    assert_eq!(before(&engine, &t, "read_emails"), Effect::Allow);
    assert_eq!(before(&engine, &t, "read_emails"), Effect::Allow);
    assert_eq!(before(&engine, &t, "read_emails"), Effect::Deny);
    // It narrows the token to read_emails, too.
    assert_eq!(before(&engine, &t, "read_other"), Effect::Deny);
}

// ---------------------------------------------------------------- grants

/// Verifies, evaluates `tool` before the call, answers the elicit, returns the new token.
fn answer(engine: &Engine, token: &str, tool: &str, accepted: bool) -> String {
    let v = verify(engine, &keys(), token).unwrap();
    let req = call(&v, tool);
    let d = engine.before_with(&req, Some(&v));
    assert_eq!(d.effect, Effect::Elicit, "{tool}: {}", d.reason);
    engine.grant(&keys(), &v, &req, &d, accepted).unwrap()
}

#[test]
fn an_approved_elicit_is_not_asked_again_until_expiry() {
    let engine = engine();
    let t = answer(&engine, &mint("ann", &[]), "send_email", true);
    let v = verify(&engine, &keys(), &t).unwrap();
    assert_eq!(v.grants.len(), 1);
    let d = engine.before_with(&call(&v, "send_email"), Some(&v));
    assert_eq!(d.effect, Effect::Allow);
    assert!(
        d.reason
            .contains("approved by the user until 2027-01-15T08:10:00Z"),
        "{}",
        d.reason
    );
    // Only for that tool.
    assert_eq!(before(&engine, &t, "delete_all"), Effect::Elicit);
    // Expired (elicit_expiry 600 s): asked again.
    let later = v.request("send_email", json!({})).at(NOW + 600_000);
    assert_eq!(engine.before_with(&later, Some(&v)).effect, Effect::Elicit);
    // An approval never beats a deny, from the server or the token.
    let t2 = append_raw(&t, &["bf:send_email:tool_access:deny"]);
    assert_eq!(before(&engine, &t2, "send_email"), Effect::Deny);
}

#[test]
fn a_declined_tool_is_asked_again_and_a_declined_field_stays_redacted() {
    let engine = engine();
    let t = mint("ann", &[]);
    let declined = answer(&engine, &t, "send_email", false);
    assert_eq!(declined, t, "declining a tool stores nothing");
    assert_eq!(before(&engine, &declined, "send_email"), Effect::Elicit);

    // Fields: elicit -> decline -> redacted (deny) until expiry, not asked again.
    let v = verify(&engine, &keys(), &t).unwrap();
    let req = call(&v, "read_emails");
    let (d, _) = engine.after_with(&req, email(), Some(&v));
    assert_eq!(d.effect, Effect::Elicit);
    let declined = engine.grant(&keys(), &v, &req, &d, false).unwrap();
    let v2 = verify(&engine, &keys(), &declined).unwrap();
    let (d, out) = engine.after_with(&req, email(), Some(&v2));
    assert_eq!(d.effect, Effect::Allow, "{}", d.reason);
    assert_eq!(
        out.structured.as_ref().unwrap()["attachments"],
        "[REDACTED]"
    );
    assert!(
        d.redactions
            .iter()
            .any(|r| &*r.path == "attachments" && r.effect == Effect::Deny)
    );
    let later = v2.request("read_emails", json!({})).at(NOW + 600_000);
    assert_eq!(
        engine.after_with(&later, email(), Some(&v2)).0.effect,
        Effect::Elicit
    );

    // Approved fields are returned.
    let approved = engine.grant(
        &keys(),
        &v,
        &req,
        &engine.after_with(&req, email(), Some(&v)).0,
        true,
    );
    let v3 = verify(&engine, &keys(), &approved.unwrap()).unwrap();
    let (d, out) = engine.after_with(&req, email(), Some(&v3));
    assert_eq!(d.effect, Effect::Allow);
    let s = out.structured.unwrap();
    assert_eq!(s["attachments"], json!(["a.pdf"]));
    assert_eq!(s["body"], "[REDACTED]", "a deny is never lifted");
}

#[test]
fn forged_grants_still_ask_or_deny() {
    let engine = engine();
    let t = mint("ann", &[]);

    // Holder-appended allow text, including the seed's approval form.
    for text in [
        "bf:send_email:tool_access:allow",
        "bf:send_email:tool_access:allow:time<20300101T000000Z",
    ] {
        assert_eq!(
            before(&engine, &append_raw(&t, &[text]), "send_email"),
            Effect::Elicit
        );
    }

    // A real grant to copy from.
    let granted = answer(&engine, &t, "send_email", true);
    let real = last_caveat(&granted);
    assert!(real.starts_with("grant {"), "{real}");

    // Bad MAC: the grant's text with its MAC changed -> the token is refused outright.
    let mut g: Value = serde_json::from_str(real.strip_prefix("grant ").unwrap()).unwrap();
    let mac = g["mac"].as_str().unwrap().to_string();
    g["mac"] = Value::String(format!(
        "{}{}",
        if mac.starts_with('A') { "B" } else { "A" },
        &mac[1..]
    ));
    let forged = append_raw(&t, &[&format!("grant {g}")]);
    assert!(matches!(
        verify(&engine, &keys(), &forged),
        Err(TokenError::CaveatNotSatisfied(m)) if m.contains("seal does not verify")
    ));

    // The same grant with a field changed (longer expiry) -> refused.
    let mut g: Value = serde_json::from_str(real.strip_prefix("grant ").unwrap()).unwrap();
    g["exp"] = json!(g["exp"].as_u64().unwrap() + 86_400);
    assert!(verify(&engine, &keys(), &append_raw(&t, &[&format!("grant {g}")])).is_err());

    // Copied into another token: another subject, or another token of the same subject.
    for other in [mint("bob", &[]), mint("ann", &[])] {
        let copied = append_raw(&other, &[&real]);
        assert!(matches!(
            verify(&engine, &keys(), &copied),
            Err(TokenError::CaveatNotSatisfied(_))
        ));
    }

    // A genuine grant for another tool: does not answer this one.
    assert_eq!(before(&engine, &granted, "delete_all"), Effect::Elicit);

    // An expired genuine grant: asked again.
    let v = verify(&engine, &keys(), &granted).unwrap();
    let late = v.request("send_email", json!({})).at(NOW + 3_600_000);
    let vl = engine
        .verify_token(&keys(), &granted, &[], &at(NOW + 3_600_000))
        .unwrap();
    assert_eq!(engine.before_with(&late, Some(&vl)).effect, Effect::Elicit);

    // A grant can only be made for an elicit decision.
    let req = call(&v, "read_emails");
    let d = engine.before_with(&req, Some(&v));
    assert!(matches!(
        engine.grant(&keys(), &v, &req, &d, true),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn caveats_from_a_decision_go_back_into_the_token() {
    let engine = engine();
    let v = verify(&engine, &keys(), &mint("ann", &[])).unwrap();
    let refreshed = v
        .with_caveats(&["bf:read_drafts:tool_access:deny".to_string()])
        .unwrap();
    assert_eq!(before(&engine, &refreshed, "read_drafts"), Effect::Deny);
    assert_eq!(before(&engine, &refreshed, "read_emails"), Effect::Allow);
    assert!(v.with_caveats(&["nonsense".to_string()]).is_err());
}

#[test]
fn grants_answer_token_elicit_rules_too() {
    let engine = engine();
    let t = mint("ann", &["bf:read_secrets:tool_access:elicit"]);
    let t = answer(&engine, &t, "read_secrets", true);
    assert_eq!(before(&engine, &t, "read_secrets"), Effect::Allow);
}

// ---------------------------------------------------------------- rotation

#[test]
fn retired_keys_verify_while_listed() {
    let engine = engine();
    let old = "the-old-root-secret-0123456789abcdef0000";
    let new = "the-new-root-secret-0123456789abcdef1111";
    let before_rotation = keyring("k1", old, &[]);
    let t = mint_with(&before_rotation, "ann", &[], &[]);

    let rotated = keyring("k2", new, &[("k1", old)]);
    let v = verify(&engine, &rotated, &t).unwrap();
    assert_eq!(v.key_id, "k1");
    // New tokens use the new key; a grant added now is sealed with it and also verifies.
    assert_eq!(
        verify(&engine, &rotated, &mint_with(&rotated, "ann", &[], &[]))
            .unwrap()
            .key_id,
        "k2"
    );
    let req = call(&v, "send_email");
    let d = engine.before_with(&req, Some(&v));
    let granted = engine.grant(&rotated, &v, &req, &d, true).unwrap();
    assert!(last_caveat(&granted).contains("\"kid\":\"k2\""));
    let vg = verify(&engine, &rotated, &granted).unwrap();
    assert_eq!(engine.before_with(&req, Some(&vg)).effect, Effect::Allow);

    let removed = keyring("k2", new, &[]);
    assert_eq!(
        verify(&engine, &removed, &t).unwrap_err(),
        TokenError::UnknownKey("k1".into())
    );
}

#[test]
fn a_grant_under_a_removed_key_is_ignored() {
    let engine = engine();
    let a = "key-a-secret-0123456789abcdef0123456789";
    let b = "key-b-secret-0123456789abcdef0123456789";
    // The token is minted under kb; the grant is sealed under ka (then current).
    let t = mint_with(&keyring("kb", b, &[("ka", a)]), "ann", &[], &[]);
    let both = keyring("ka", a, &[("kb", b)]);
    let v = verify(&engine, &both, &t).unwrap();
    let req = call(&v, "send_email");
    let d = engine.before_with(&req, Some(&v));
    let granted = engine.grant(&both, &v, &req, &d, true).unwrap();
    let vg = verify(&engine, &both, &granted).unwrap();
    assert_eq!(engine.before_with(&req, Some(&vg)).effect, Effect::Allow);

    let only_b = keyring("kb", b, &[]);
    let vb = verify(&engine, &only_b, &granted).unwrap();
    assert!(vb.grants.is_empty());
    assert!(vb.notes[0].contains("no longer holds"), "{:?}", vb.notes);
    assert_eq!(engine.before_with(&req, Some(&vb)).effect, Effect::Elicit);
}

// ---------------------------------------------------------------- third-party caveats

const APPROVER_SECRET: &str = "secret-shared-with-the-approver-0123456789";

fn with_third_party(token: &str) -> Macaroon {
    let mut m = token::decode(token, "token").unwrap();
    token::add_third_party(
        &mut m,
        "https://approver.example",
        APPROVER_SECRET.as_bytes(),
        "ticket-7",
    )
    .unwrap();
    m
}

fn discharge_for(m: &Macaroon, caveats: &[&str], bind: bool) -> String {
    let caveats: Vec<String> = caveats.iter().map(|c| c.to_string()).collect();
    let mut d = token::discharge(
        "https://approver.example",
        APPROVER_SECRET.as_bytes(),
        "ticket-7",
        &caveats,
        None,
        NOW,
    )
    .unwrap();
    if bind {
        token::bind(m, &mut d);
    }
    token::encode(&d, false).unwrap()
}

#[test]
fn third_party_caveats_need_a_bound_discharge() {
    let engine = engine();
    let m = with_third_party(&mint("ann", &[]));
    let t = token::encode(&m, false).unwrap();
    let k = keys();

    match engine.verify_token(&k, &t, &[], &at(NOW)) {
        Err(TokenError::CaveatNotSatisfied(msg)) => {
            assert!(
                msg.contains("has no discharge") && msg.contains("approver.example"),
                "{msg}"
            )
        }
        other => panic!("{other:?}"),
    }
    let good = discharge_for(&m, &["user = ann"], true);
    let v = engine.verify_token(&k, &t, &[&good], &at(NOW)).unwrap();
    assert_eq!(
        engine
            .before_with(&call(&v, "read_emails"), Some(&v))
            .effect,
        Effect::Allow
    );

    // Unbound: the discharge could be replayed with any token, so it does not verify.
    let unbound = discharge_for(&m, &[], false);
    assert_eq!(
        engine
            .verify_token(&k, &t, &[&unbound], &at(NOW))
            .unwrap_err(),
        TokenError::BadSignature
    );
    // Bound to another token.
    let other = with_third_party(&mint("ann", &[]));
    let elsewhere = discharge_for(&other, &[], true);
    assert_eq!(
        engine
            .verify_token(&k, &t, &[&elsewhere], &at(NOW))
            .unwrap_err(),
        TokenError::BadSignature
    );
    // The discharge's caveats are checked like the token's.
    let wrong_user = discharge_for(&m, &["user = bob"], true);
    assert!(matches!(
        engine.verify_token(&k, &t, &[&wrong_user], &at(NOW)),
        Err(TokenError::CaveatNotSatisfied(_))
    ));
    let unknown = {
        let mut d = Macaroon::create(
            Some("https://approver.example"),
            &MacaroonKey::generate(APPROVER_SECRET.as_bytes()),
            "ticket-7",
        )
        .unwrap();
        d.add_first_party_caveat("approved_by = carol").unwrap();
        m.bind(&mut d);
        token::encode(&d, false).unwrap()
    };
    assert!(matches!(
        engine.verify_token(&k, &t, &[&unknown], &at(NOW)),
        Err(TokenError::UnknownCaveat { .. })
    ));
    let short = discharge_for(&m, &["expires < 2027-01-15T08:05:00Z"], true);
    assert!(engine.verify_token(&k, &t, &[&short], &at(NOW)).is_ok());
    assert!(matches!(
        engine.verify_token(&k, &t, &[&short], &at(NOW + 300_000)),
        Err(TokenError::Expired { .. })
    ));
    // A discharge's policy caveats restrict the call like the token's.
    let restricting = discharge_for(&m, &["bf:read_emails:tool_access:deny"], true);
    let v = engine
        .verify_token(&k, &t, &[&restricting], &at(NOW))
        .unwrap();
    assert_eq!(
        engine
            .before_with(&call(&v, "read_emails"), Some(&v))
            .effect,
        Effect::Deny
    );
    // A discharge nobody asked for.
    let plain = mint("ann", &[]);
    assert!(matches!(
        engine.verify_token(&k, &plain, &[&good], &at(NOW)),
        Err(TokenError::CaveatNotSatisfied(m)) if m.contains("answers no third-party caveat")
    ));
}

// ---------------------------------------------------------------- sessions

#[test]
fn session_tokens_carry_approvals_for_callers_without_tokens() {
    let engine = engine();
    let k = keys();
    let sessions = SessionTokens::new(NonZeroUsize::new(16).unwrap(), Duration::from_secs(3600));
    let ann = Subject::user("ann");

    let run = |tool: &str| {
        let t = sessions.token_for(&k, &ann, NOW).unwrap();
        let v = engine.verify_token(&k, &t, &[], &at(NOW)).unwrap();
        let req = Request::new(ann.clone(), tool, json!({})).at(NOW);
        (engine.before_with(&req, Some(&v)), v, req)
    };
    let (d, v, req) = run("send_email");
    assert_eq!(d.effect, Effect::Elicit);
    let granted = engine.grant(&k, &v, &req, &d, true).unwrap();
    sessions.update(&ann, granted);
    assert_eq!(run("send_email").0.effect, Effect::Allow);
    // Another subject has its own session.
    let bob = sessions.token_for(&k, &Subject::user("bob"), NOW).unwrap();
    let vb = engine.verify_token(&k, &bob, &[], &at(NOW)).unwrap();
    assert!(vb.grants.is_empty());
    assert_eq!(sessions.len(), 2);
}

#[test]
fn a_refused_token_is_an_audited_deny() {
    let engine = engine();
    let req = Request::new(Subject::user("ann"), "read_emails", json!({})).at(NOW);
    let d = engine.reject(&req, Phase::Before, &TokenError::BadSignature);
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.reason
            .starts_with("token rejected: token signature does not verify")
    );
}

#[test]
fn minting_checks_its_input() {
    let k = keys();
    let bad = |spec: token::MintSpec| {
        token::mint(&k, &spec, NOW, &token::UncheckedEnforcers)
            .unwrap_err()
            .to_string()
    };
    let spec = |user: &str, roles: &[&str], caveats: &[&str]| token::MintSpec {
        user: user.into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        ttl: None,
        caveats: caveats.iter().map(|s| s.to_string()).collect(),
    };
    assert!(bad(spec("", &[], &[])).contains("user is empty"));
    assert!(bad(spec("ann", &["a b"], &[])).contains("bad role"));
    assert!(bad(spec("ann", &[], &["nonsense"])).contains("unknown caveat"));
    assert!(bad(spec("ann", &[], &["bf:x:tool_acess:deny"])).contains("did you mean"));
    assert!(bad(spec("ann", &[], &["user = bob"])).contains("the token is for user"));
    assert!(bad(spec("ann", &[], &["role = admin"])).contains("roles cannot be added"));
    let g = r#"grant {"v":1,"d":"accept","kid":"k1","ph":"bf","tool":"t","policy":"tool_access","params":[],"exp":1,"mac":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    assert!(bad(spec("ann", &[], &[g])).contains("cannot be added by hand"));
    // Attenuation applies the same checks, without a key.
    let mut m = token::decode(&mint("ann", &[]), "token").unwrap();
    assert!(token::attenuate(&mut m, &[g.to_string()], None, NOW).is_err());
    token::attenuate(
        &mut m,
        &["tool = read_*".into()],
        Some(Duration::from_secs(60)),
        NOW,
    )
    .unwrap();
    let v = verify(&engine(), &k, &token::encode(&m, false).unwrap()).unwrap();
    assert_eq!(v.expires_unix_ms, Some(NOW + 60_000));
}

#[test]
fn keys_of_another_library_are_the_same() {
    // A token made directly with libmacaroon under the same secret verifies: the key
    // derivation is the libmacaroons one.
    let key = MacaroonKey::generate(SECRET.as_bytes());
    let mut m = Macaroon::create(
        Some("elsewhere"),
        &key,
        "pc1:k1:1800000000:0123456789abcdef0123456789abcdef:analyst:ann",
    )
    .unwrap();
    m.add_first_party_caveat("user = ann").unwrap();
    m.add_first_party_caveat("tool = read_*").unwrap();
    let v = verify(&engine(), &keys(), &token::encode(&m, false).unwrap()).unwrap();
    assert_eq!(v.subject.roles, vec!["analyst".to_string()]);
    let _: &Keyring = &keys();
}

// ---------------------------------------------------------------- verification cache

/// Whether two verifications share one remembered result (a cache hit hands out the same
/// macaroon; a fresh verification parses its own).
fn same_verification(a: &token::VerifiedToken, b: &token::VerifiedToken) -> bool {
    std::ptr::eq(a.macaroon(), b.macaroon())
}

/// `token` with one bit of one signature byte flipped (a character near the end of the
/// base64url text, which encodes the last field: the signature).
fn flip_signature_bit(token: &str) -> String {
    const URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = token.as_bytes().to_vec();
    let i = bytes.len() - 10;
    let at = URL.iter().position(|&c| c == bytes[i]).unwrap();
    bytes[i] = URL[at ^ 1];
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_cached_token_that_expires_between_calls_is_rejected() {
    let engine = engine();
    let m = token::mint(
        &keys(),
        &token::MintSpec {
            user: "ann".into(),
            ttl: Some(Duration::from_secs(60)),
            ..Default::default()
        },
        NOW,
        &token::UncheckedEnforcers,
    )
    .unwrap();
    let t = token::encode(&m, false).unwrap();
    let k = keys();
    let first = engine.verify_token(&k, &t, &[], &at(NOW)).unwrap();
    let hit = engine.verify_token(&k, &t, &[], &at(NOW + 59_999)).unwrap();
    assert!(same_verification(&first, &hit), "the second call is a hit");
    assert_eq!(
        engine
            .verify_token(&k, &t, &[], &at(NOW + 60_000))
            .unwrap_err(),
        TokenError::Expired {
            at: "2027-01-15T08:01:00Z".into()
        }
    );
    // The expired entry was dropped; a request with an earlier clock verifies afresh.
    let again = engine.verify_token(&k, &t, &[], &at(NOW)).unwrap();
    assert!(!same_verification(&first, &again));
}

#[test]
fn a_one_bit_change_to_a_cached_tokens_signature_is_a_bad_signature() {
    let engine = engine();
    let k = keys();
    let t = mint("ann", &["tool = read_*"]);
    let first = verify(&engine, &k, &t).unwrap();
    assert!(same_verification(&first, &verify(&engine, &k, &t).unwrap()));

    let tampered = flip_signature_bit(&t);
    let (a, b) = (
        token::decode(&t, "token").unwrap(),
        token::decode(&tampered, "token").unwrap(),
    );
    assert_eq!(a.identifier(), b.identifier());
    assert_eq!(a.caveats(), b.caveats());
    let (sa, sb): (&[u8], &[u8]) = (a.signature().as_ref(), b.signature().as_ref());
    assert_eq!(sa.iter().zip(sb).filter(|(x, y)| x != y).count(), 1);
    for _ in 0..2 {
        assert_eq!(
            verify(&engine, &k, &tampered).unwrap_err(),
            TokenError::BadSignature
        );
    }
    // The genuine token is still served from the cache.
    assert!(same_verification(&first, &verify(&engine, &k, &t).unwrap()));
}

#[test]
fn a_cached_token_is_still_bound_to_the_expected_user() {
    let engine = engine();
    let k = keys();
    let t = mint("ann", &[]);
    let first = verify(&engine, &k, &t).unwrap();
    let as_user = |user| VerifyOptions {
        now_unix_ms: NOW,
        user: Some(user),
    };
    assert!(matches!(
        engine.verify_token(&k, &t, &[], &as_user("bob")),
        Err(TokenError::CaveatNotSatisfied(m)) if m.contains("not \"bob\"")
    ));
    let ann = engine.verify_token(&k, &t, &[], &as_user("ann")).unwrap();
    assert!(same_verification(&first, &ann));
}

#[test]
fn a_new_keyring_or_snapshot_does_not_see_cached_verifications() {
    let engine = engine();
    let old = "the-old-root-secret-0123456789abcdef0000";
    let new = "the-new-root-secret-0123456789abcdef1111";
    let t = mint_with(&keyring("k1", old, &[]), "ann", &[], &[]);

    let rotated = keyring("k2", new, &[("k1", old)]);
    let first = verify(&engine, &rotated, &t).unwrap();
    assert!(same_verification(
        &first,
        &verify(&engine, &rotated, &t).unwrap()
    ));
    // The retired key removed: refused, although a success for this text is cached.
    let removed = keyring("k2", new, &[]);
    assert_eq!(
        verify(&engine, &removed, &t).unwrap_err(),
        TokenError::UnknownKey("k1".into())
    );
    // A keyring built again from the same secrets is verified afresh too.
    let rebuilt = keyring("k2", new, &[("k1", old)]);
    assert!(!same_verification(
        &first,
        &verify(&engine, &rebuilt, &t).unwrap()
    ));

    // A reload starts with an empty cache.
    assert!(engine.snapshot().cached_verifications() > 0);
    engine.swap(
        portcullis::Snapshot::new(portcullis::policy::load_str(POLICY, "p.yaml").unwrap()).unwrap(),
    );
    assert_eq!(engine.snapshot().cached_verifications(), 0);
    assert!(!same_verification(
        &first,
        &verify(&engine, &rotated, &t).unwrap()
    ));
}
