//! The user's answers to approval prompts, kept as sealed grants in tokens.
//!
//! An answer is never a row in a server-side table: it is a grant caveat sealed with a key
//! derived from the root key and appended to the caller's token ([`Engine::grant`]), so the
//! engine applies it like any other caveat and any host holding the root key honours it.
//!
//! - A caller that presented a token (auth mode `macaroon`) gets the refreshed token back in
//!   the result's `_meta` under [`TOKEN_META_KEY`](super::TOKEN_META_KEY). Clients that keep
//!   it carry their approvals to every host; for clients that keep presenting the old token,
//!   this process also remembers the newest token it derived from each presented one (by the
//!   presented token's signature, so an attenuated copy does not inherit anything).
//! - A caller without a token (modes `fixed`, `api_keys`, `jwt`, `headers`) gets a session
//!   token held only in server memory ([`SessionTokens`]), minted the first time an answer
//!   must be kept — the seed's "one macaroon per user", with sealed grants.
//!
//! Enforcer caveats returned with an allow are appended the same way, so they bind the next
//! calls whether or not the client stores the refreshed token.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::LruCache;
use thiserror::Error;

use super::identity::Identity;
use crate::decision::{Decision, Effect, Phase};
use crate::engine::Engine;
use crate::request::{Request, Subject};
use crate::token::{Keyring, RootKey, SessionTokens, TokenError, VerifiedToken, VerifyOptions};

/// Why an answer could not be recorded.
#[derive(Debug, Error)]
#[error("cannot record the approval: {0}")]
pub struct ApprovalError(#[from] pub TokenError);

/// Presented tokens whose refreshed version this process remembers.
pub const DEFAULT_REMEMBERED: usize = 10_000;

/// Key id of the per-process key used when no root key is configured.
const PROCESS_KEY_ID: &str = "process";

/// Where a call's token came from, which decides where a refreshed one goes.
#[derive(Debug, Clone)]
enum Source {
    /// The caller presented a token; the key is its signature.
    Presented([u8; 32]),
    /// A server-held session token for a caller that presented none.
    Session,
    /// No token at all (yet).
    None,
}

/// The token a call is decided with.
#[derive(Debug, Clone)]
pub struct Held {
    /// The verified token: the presented one, the newest derived from it, or a session token.
    pub token: Option<Arc<VerifiedToken>>,
    source: Source,
}

impl Held {
    /// The token as a reference, for the engine.
    pub fn verified(&self) -> Option<&VerifiedToken> {
        self.token.as_deref()
    }
}

/// Keeps answers and appended caveats in tokens.
pub struct Approvals {
    keys: Keyring,
    sessions: SessionTokens,
    derived: Mutex<LruCache<[u8; 32], String>>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Approvals {
    /// Answers sealed with `keys`: the keyring tokens are verified with (mode `macaroon`), so
    /// grants in refreshed tokens verify on every host that shares it.
    pub fn new(keys: Keyring) -> Self {
        Approvals {
            keys,
            sessions: SessionTokens::default(),
            derived: Mutex::new(LruCache::new(
                NonZeroUsize::new(DEFAULT_REMEMBERED).expect("nonzero"),
            )),
        }
    }

    /// Answers sealed with a key made from `secret` that never leaves this process, for
    /// deployments without a root key: only server-held session tokens exist there.
    pub fn process_local(secret: &[u8; 32]) -> Self {
        let hex = crate::token::identifier::hex(secret);
        let key = RootKey::from_secret(PROCESS_KEY_ID, hex.as_bytes())
            .expect("the process key id is valid");
        Approvals::new(Keyring::new(key, Vec::new()).expect("one key has no duplicate id"))
    }

    /// The keyring answers are sealed with.
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// The token to decide `identity`'s call with at `now_unix_ms`: the newest token this
    /// process derived from the presented one (if it still verifies), else the presented one;
    /// for a caller without a token, its session token if it has one.
    pub fn held(&self, engine: &Engine, identity: &Identity, now_unix_ms: u64) -> Held {
        let opts = VerifyOptions {
            now_unix_ms,
            user: Some(&identity.subject.user),
        };
        if let Some(presented) = &identity.token {
            let sig: [u8; 32] = *presented.macaroon().signature().as_ref();
            let derived = self.lock().get(&sig).cloned();
            let token = match derived {
                Some(text) => match engine.verify_token_shared(&self.keys, &text, &[], &opts) {
                    Ok(v) => v,
                    Err(e) => {
                        // Expired with the presented token, or a key it needs was retired.
                        tracing::debug!("dropping a refreshed token that no longer verifies: {e}");
                        self.lock().pop(&sig);
                        presented.clone()
                    }
                },
                None => presented.clone(),
            };
            return Held {
                token: Some(token),
                source: Source::Presented(sig),
            };
        }
        let session = self
            .sessions
            .get(&identity.subject, now_unix_ms)
            .and_then(|text| {
                engine
                    .verify_token_shared(&self.keys, &text, &[], &opts)
                    .ok()
            });
        match session {
            Some(v) => Held {
                token: Some(v),
                source: Source::Session,
            },
            None => Held {
                token: None,
                source: Source::None,
            },
        }
    }

    /// Records the user's answer to the elicit `decision` as sealed grants. Returns the
    /// refreshed token when the caller presented one (to send back in `_meta`).
    pub fn record(
        &self,
        engine: &Engine,
        held: &Held,
        req: &Request,
        decision: &Decision,
        accepted: bool,
    ) -> Result<Option<String>, ApprovalError> {
        // A declined tool is asked again next time (as in the seed): nothing is stored.
        if !accepted && decision.phase == Phase::Before {
            return Ok(None);
        }
        let base = self.base(engine, held, &req.subject, req.now_unix_ms)?;
        let text = engine.grant(&self.keys, &base, req, decision, accepted)?;
        Ok(self.store(held, &req.subject, text))
    }

    /// Appends the caveats an enforcer returned with an allow to the caller's token, so they
    /// bind the next calls. Returns the refreshed token when the caller presented one.
    pub fn append_caveats(
        &self,
        engine: &Engine,
        held: &Held,
        req: &Request,
        decision: &Decision,
    ) -> Result<Option<String>, ApprovalError> {
        if decision.effect != Effect::Allow || decision.caveats.is_empty() {
            return Ok(None);
        }
        let base = self.base(engine, held, &req.subject, req.now_unix_ms)?;
        let text = base.with_caveats(&decision.caveats)?;
        Ok(self.store(held, &req.subject, text))
    }

    /// Number of callers with a server-held session token.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The token an answer is appended to: the held one, or a new session token.
    fn base(
        &self,
        engine: &Engine,
        held: &Held,
        subject: &Subject,
        now_unix_ms: u64,
    ) -> Result<Arc<VerifiedToken>, TokenError> {
        if let Some(t) = &held.token {
            return Ok(t.clone());
        }
        let text = self.sessions.token_for(&self.keys, subject, now_unix_ms)?;
        let opts = VerifyOptions {
            now_unix_ms,
            user: Some(&subject.user),
        };
        engine.verify_token_shared(&self.keys, &text, &[], &opts)
    }

    /// Keeps a refreshed token where the next call finds it; returns it when it belongs to
    /// the client.
    fn store(&self, held: &Held, subject: &Subject, text: String) -> Option<String> {
        match held.source {
            Source::Presented(sig) => {
                self.lock().put(sig, text.clone());
                Some(text)
            }
            Source::Session | Source::None => {
                self.sessions.update(subject, text);
                None
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<[u8; 32], String>> {
        // Entries are replaced whole; a panic elsewhere cannot leave one half-written.
        self.derived.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ToolResult;
    use crate::token::{MintSpec, UncheckedEnforcers, encode, mint};
    use serde_json::json;

    const POLICY: &str = r#"
config: { elicit_expiry: 60 }
policies:
  - "bf:delete:tool_access:elicit"
  - "bf:read:tool_access:allow"
  - "af:read:field_access:elicit:secret"
  - "af:read:field_access:deny:ssn"
"#;

    fn plain(user: &str) -> Identity {
        Identity {
            subject: Subject::user(user),
            token: None,
        }
    }

    fn call(user: &str, tool: &str, at: u64) -> Request {
        Request::new(Subject::user(user), tool, json!({})).at(at)
    }

    fn before(store: &Approvals, engine: &Engine, id: &Identity, tool: &str, at: u64) -> Effect {
        let held = store.held(engine, id, at);
        engine
            .before_with(&call(&id.subject.user, tool, at), held.verified())
            .effect
    }

    #[test]
    fn a_tokenless_callers_answers_live_in_a_session_token_until_expiry() {
        let engine = Engine::from_str(POLICY, "p.yaml").unwrap();
        let store = Approvals::process_local(&[7; 32]);
        let ann = plain("ann");
        assert_eq!(
            before(&store, &engine, &ann, "delete", 1_000),
            Effect::Elicit
        );
        assert_eq!(
            store.sessions(),
            0,
            "nothing is minted until an answer is kept"
        );

        let held = store.held(&engine, &ann, 1_000);
        let req = call("ann", "delete", 1_000);
        let d = engine.before_with(&req, held.verified());
        assert_eq!(store.record(&engine, &held, &req, &d, false).unwrap(), None);
        assert_eq!(store.sessions(), 0, "a declined tool stores nothing");
        assert_eq!(store.record(&engine, &held, &req, &d, true).unwrap(), None);
        assert_eq!(store.sessions(), 1);

        assert_eq!(
            before(&store, &engine, &ann, "delete", 2_000),
            Effect::Allow
        );
        assert_eq!(
            before(&store, &engine, &ann, "delete", 61_001),
            Effect::Elicit,
            "the grant expired"
        );
        assert_eq!(
            before(&store, &engine, &plain("bob"), "delete", 2_000),
            Effect::Elicit,
            "another user's answer does not count"
        );
    }

    #[test]
    fn fields_approved_are_shown_and_declined_stay_redacted() {
        let engine = Engine::from_str(POLICY, "p.yaml").unwrap();
        let result = || ToolResult::from_json_value(json!({"secret": "s3", "ssn": "123", "x": 1}));
        for (accepted, secret) in [(true, json!("s3")), (false, json!("[REDACTED]"))] {
            let store = Approvals::process_local(&[7; 32]);
            let ann = plain("ann");
            let req = call("ann", "read", 1_000);
            let held = store.held(&engine, &ann, 1_000);
            let (d, r) = engine.after_with(&req, result(), held.verified());
            assert_eq!(d.effect, Effect::Elicit);
            assert_eq!(r.structured.as_ref().unwrap()["secret"], "[REDACTED]");
            store.record(&engine, &held, &req, &d, accepted).unwrap();

            let req = call("ann", "read", 2_000);
            let held = store.held(&engine, &ann, 2_000);
            let (d, r) = engine.after_with(&req, result(), held.verified());
            assert_eq!(d.effect, Effect::Allow, "answered: not asked again");
            let s = r.structured.unwrap();
            assert_eq!(s["secret"], secret);
            assert_eq!(s["ssn"], "[REDACTED]", "denied fields stay redacted");
        }
    }

    #[test]
    fn a_presented_token_is_refreshed_and_remembered_by_its_signature() {
        let engine = Engine::from_str(POLICY, "p.yaml").unwrap();
        let store = Approvals::process_local(&[7; 32]);
        let spec = MintSpec {
            user: "ann".into(),
            ..MintSpec::default()
        };
        let text = encode(
            &mint(store.keys(), &spec, 0, &UncheckedEnforcers).unwrap(),
            false,
        )
        .unwrap();
        let opts = VerifyOptions {
            now_unix_ms: 1_000,
            user: None,
        };
        let verified = engine
            .verify_token(store.keys(), &text, &[], &opts)
            .unwrap();
        let ann = Identity {
            subject: verified.subject.clone(),
            token: Some(Arc::new(verified.clone())),
        };
        let req = call("ann", "delete", 1_000);
        let held = store.held(&engine, &ann, 1_000);
        let d = engine.before_with(&req, held.verified());
        let refreshed = store
            .record(&engine, &held, &req, &d, true)
            .unwrap()
            .expect("the client gets its refreshed token");
        assert_ne!(refreshed, text);
        // The refreshed token carries the grant on its own (any host with the key accepts it).
        let v2 = engine
            .verify_token(store.keys(), &refreshed, &[], &opts)
            .unwrap();
        assert_eq!(v2.grants.len(), 1);
        // Presenting the old token again: this process applies the refreshed one.
        assert_eq!(
            before(&store, &engine, &ann, "delete", 2_000),
            Effect::Allow
        );
        // An attenuated copy of the old token is another token: no grant for it.
        let narrowed = verified.with_caveats(&["tool = *".into()]).unwrap();
        let v3 = engine
            .verify_token(store.keys(), &narrowed, &[], &opts)
            .unwrap();
        let copy = Identity {
            subject: v3.subject.clone(),
            token: Some(Arc::new(v3)),
        };
        assert_eq!(
            before(&store, &engine, &copy, "delete", 2_000),
            Effect::Elicit
        );
        assert_eq!(store.sessions(), 0, "token holders get no session token");
    }
}
