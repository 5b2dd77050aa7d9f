//! Sealed `requestState` for the 2026-07-28 InputRequired round trip.
//!
//! The client echoes the state back verbatim, so it is untrusted on return: it is a JSON body
//! plus an HMAC-SHA256 tag under a key only this process holds. A state is bound to the user,
//! the tool (or resource / prompt) and a digest of the arguments, and expires after a few
//! minutes, so it cannot be replayed for another call or another caller.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::decision::Phase;
use crate::request::Request;

/// Prefix of every state this layer issues; anything else belongs to the inner server.
pub const PREFIX: &str = "pcs1.";

/// How long a client has to answer, in milliseconds.
pub const STATE_TTL_MS: u64 = 10 * 60 * 1000;

/// Largest state accepted, in bytes.
const MAX_STATE_BYTES: usize = 8 * 1024;

/// What the state records about the pending question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub user: String,
    pub tool: String,
    /// SHA-256 of the canonical JSON arguments, hex.
    pub args: String,
    pub phase: PhaseTag,
    pub expires_unix_ms: u64,
}

/// [`Phase`] in the state's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseTag {
    Before,
    After,
}

impl From<Phase> for PhaseTag {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Before => PhaseTag::Before,
            Phase::After => PhaseTag::After,
        }
    }
}

/// Why an echoed state was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum StateError {
    #[error("request state is malformed")]
    Malformed,
    #[error("request state was not issued by this server (bad seal)")]
    BadSeal,
    #[error("request state has expired; call the tool again")]
    Expired,
    #[error("request state was issued for another call")]
    Mismatch,
}

/// Seals and opens states with one key.
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer with a fresh random key (states do not survive a restart).
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Sealer { key })
    }

    /// A sealer with a given key, e.g. derived from the token root key so that every host
    /// sharing it accepts the others' states.
    pub fn with_key(key: [u8; 32]) -> Self {
        Sealer { key }
    }

    fn tag(&self, body: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"portcullis request state v1\0");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The state for a question about `req` in `phase`.
    pub fn seal(&self, req: &Request, phase: Phase) -> String {
        let pending = Pending {
            user: req.subject.user.clone(),
            tool: req.tool.clone(),
            args: digest(&req.arguments),
            phase: phase.into(),
            expires_unix_ms: req.now_unix_ms.saturating_add(STATE_TTL_MS),
        };
        let body = serde_json::to_vec(&pending).unwrap_or_default();
        let tag = self.tag(&body);
        format!(
            "{PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Opens a state echoed back for `req`, checking seal, expiry and binding.
    pub fn open(&self, state: &str, req: &Request) -> Result<Pending, StateError> {
        if state.len() > MAX_STATE_BYTES {
            return Err(StateError::Malformed);
        }
        let rest = state.strip_prefix(PREFIX).ok_or(StateError::Malformed)?;
        let (body, tag) = rest.split_once('.').ok_or(StateError::Malformed)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StateError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StateError::Malformed)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"portcullis request state v1\0");
        mac.update(&body);
        mac.verify_slice(&tag).map_err(|_| StateError::BadSeal)?;
        let pending: Pending = serde_json::from_slice(&body).map_err(|_| StateError::Malformed)?;
        if req.now_unix_ms >= pending.expires_unix_ms {
            return Err(StateError::Expired);
        }
        if pending.user != req.subject.user
            || pending.tool != req.tool
            || pending.args != digest(&req.arguments)
        {
            return Err(StateError::Mismatch);
        }
        Ok(pending)
    }
}

/// SHA-256 of the arguments' JSON (serde_json keeps object keys sorted, so equal arguments
/// give equal digests).
fn digest(v: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    crate::token::identifier::hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Subject;
    use serde_json::json;

    #[test]
    fn round_trip_and_every_tamper_is_refused() {
        let sealer = Sealer::random().unwrap();
        let req = Request::new(Subject::user("ann"), "delete", json!({"id": 1})).at(1_000);
        let state = sealer.seal(&req, Phase::Before);
        assert_eq!(sealer.open(&state, &req).unwrap().phase, PhaseTag::Before);

        let other_args = Request::new(Subject::user("ann"), "delete", json!({"id": 2})).at(1_000);
        assert_eq!(sealer.open(&state, &other_args), Err(StateError::Mismatch));
        let other_user = Request::new(Subject::user("bob"), "delete", json!({"id": 1})).at(1_000);
        assert_eq!(sealer.open(&state, &other_user), Err(StateError::Mismatch));
        let late = req.clone().at(1_000 + STATE_TTL_MS);
        assert_eq!(sealer.open(&state, &late), Err(StateError::Expired));

        let mut forged = state.clone();
        forged.pop();
        forged.push(if state.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(sealer.open(&forged, &req), Err(StateError::BadSeal));
        let foreign = Sealer::random().unwrap();
        assert_eq!(foreign.open(&state, &req), Err(StateError::BadSeal));
        assert_eq!(sealer.open("pcs1.x", &req), Err(StateError::Malformed));
    }
}
