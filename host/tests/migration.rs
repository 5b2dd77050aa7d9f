//! The README's migration guide: each seed system's own example, translated into the policies
//! in `policies/migrate/`, decides here as the seed documents (and differs only where the guide
//! says it does on purpose).

use std::path::PathBuf;
use std::sync::Arc;

use portcullis::decision::Effect;
use portcullis::mcp::identity::{Authenticator, Transport};
use portcullis::{Content, Engine, Request, Subject, ToolResult};
use serde_json::{Value, json};

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../policies/migrate")
        .join(name)
}

fn load(name: &str) -> Arc<Engine> {
    Arc::new(Engine::from_file(&file(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn before(engine: &Engine, subject: Subject, tool: &str, args: Value) -> Effect {
    engine.before(&Request::new(subject, tool, args)).effect
}

/// The subject an HTTP request with this header would be, through the policy's own `auth`.
fn caller(engine: &Arc<Engine>, header: &str, value: &str) -> Subject {
    let config = engine.snapshot().config().auth.clone();
    let auth = Authenticator::from_config(&config, Transport::Http, engine, &|_| None).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::HeaderName::from_bytes(header.as_bytes()).unwrap(),
        value.parse().unwrap(),
    );
    auth.authenticate_headers(&headers).unwrap().subject
}

#[test]
fn macaroon_middleware_quick_start() {
    let engine = load("macaroon-middleware.yaml");
    let ann = || Subject::user("ann");
    assert_eq!(
        before(&engine, ann(), "read_emails", json!({})),
        Effect::Allow
    );
    assert_eq!(
        before(&engine, ann(), "admin_tool", json!({})),
        Effect::Deny
    );
    assert_eq!(
        before(&engine, ann(), "unmentioned", json!({})),
        Effect::Allow,
        "the seed allowed tools no caveat names; the translation says so explicitly"
    );
    let email = json!({"subject": "hi", "body": "secret", "attachments": ["a.pdf"]});
    let result = ToolResult {
        content: vec![Content::Text(email.to_string())],
        structured: None,
        is_error: false,
    };
    let (d, out) = engine.after(&Request::new(ann(), "read_emails", json!({})), result);
    assert_eq!(d.effect, Effect::Elicit, "attachments await approval");
    let Content::Text(text) = &out.content[0] else {
        panic!("{out:?}")
    };
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["body"], "[REDACTED]");
    assert_eq!(v["subject"], "hi");
}

#[test]
fn auth_guard_simple_policy() {
    let engine = load("auth-guard.yaml");
    let user = caller(&engine, "x-api-key", "user-key-123-0123456789");
    let admin = caller(&engine, "x-api-key", "admin-key-456-0123456789");
    assert_eq!(
        before(&engine, user.clone(), "safe_tool", json!({})),
        Effect::Allow
    );
    assert_eq!(
        before(&engine, user.clone(), "read_only_tool", json!({})),
        Effect::Allow
    );
    assert_eq!(
        before(&engine, user.clone(), "sensitive_operation", json!({})),
        Effect::Deny
    );
    assert_eq!(
        before(&engine, admin, "sensitive_operation", json!({})),
        Effect::Allow
    );
    let export = |limit: Value| {
        before(
            &engine,
            user.clone(),
            "export_rows",
            json!({"limit": limit}),
        )
    };
    assert_eq!(export(json!(50)), Effect::Allow);
    assert_eq!(export(json!(500)), Effect::Deny);
    assert_eq!(
        export(json!("50")),
        Effect::Allow,
        "numeric strings compare as numbers"
    );
}

#[test]
fn pymcp_kit_rule_based_authorizer() {
    let engine = load("pymcp-kit.yaml");
    let alice = caller(&engine, "authorization", "Bearer secret-token-0123456789");
    assert_eq!(alice.user, "alice");
    assert_eq!(
        before(&engine, alice.clone(), "deploy_prod", json!({})),
        Effect::Allow
    );
    assert_eq!(
        before(&engine, alice.clone(), "status", json!({})),
        Effect::Allow
    );
    assert_eq!(
        before(&engine, alice.clone(), "drop_tables", json!({})),
        Effect::Deny
    );
    let config = engine.snapshot().config().clone();
    assert!(config.hide_denied_tools && config.hide_denied_capabilities);
    assert!(config.bypass_methods.matches("ping"));
    assert!(!config.bypass_methods.matches("tools/list"));
}

#[test]
fn auth_middleware_quick_start() {
    use portcullis::mcp::identity::AuthError;
    let engine = load("auth-middleware.yaml");
    let mut config = engine.snapshot().config().auth.clone();
    let jwe = config.jwe.as_mut().expect("mode jwe");
    assert_eq!(jwe.required_claims, ["name", "email"]);
    // The file names keys/private.jwks.json; make such a key where the test can write.
    let keys = portcullis::jwe::PrivateKeySet::generate(2048).unwrap();
    let dir = tempfile::tempdir().unwrap();
    jwe.key_file = dir.path().join("private.jwks.json");
    std::fs::write(&jwe.key_file, keys.to_private_jwks().to_string()).unwrap();
    let auth = Authenticator::from_config(&config, Transport::Http, &engine, &|_| None).unwrap();
    let bearer = |claims: Value| {
        let token = portcullis::jwe::encrypt(
            &keys.public_jwks(),
            portcullis::jwe::RSA_OAEP_256,
            claims.to_string().as_bytes(),
        )
        .unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    };
    let ann = auth
        .authenticate_headers(&bearer(
            json!({"sub": "ann", "name": "Ann", "email": "a@x"}),
        ))
        .unwrap();
    assert_eq!(ann.subject.user, "ann");
    assert_eq!(
        auth.authenticate_headers(&bearer(json!({"sub": "ann", "name": "Ann"})))
            .unwrap_err(),
        AuthError::MissingClaims {
            missing: vec!["email".into()]
        },
        "403 listing the missing scope, as the seed"
    );
    assert!(
        matches!(
            auth.authenticate_headers(&http::HeaderMap::new()),
            Err(AuthError::Invalid(_))
        ),
        "no token: 401 (the seed let the request through)"
    );
}

#[tokio::test]
async fn permit_fastmcp_advanced_configuration() {
    let engine = load("permit-fastmcp.yaml");
    let snapshot = engine.snapshot();
    let config = snapshot.config();
    assert!(config.bypass_methods.matches("health/check"));
    assert!(config.bypass_methods.matches("initialize"));
    assert!(!config.bypass_methods.matches("tools/list"));
    assert_eq!(
        config.auth.mode,
        Some(portcullis::policy::AuthMode::Jwt),
        "the example's JWT identity"
    );
    // Nothing listens on the PDP port here: the call is denied, as permit-fastmcp denies
    // when its PDP fails (a stub PDP answering is tested in tests/pdp.rs).
    let req = Request::new(Subject::user("ann"), "greet", json!({"name": "x"}));
    let req = portcullis::pdp::with_answers(&engine, &req, None)
        .await
        .expect("the pdp rule applies");
    let d = engine.before(&req);
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.reason.contains("fail closed"), "{}", d.reason);
}
