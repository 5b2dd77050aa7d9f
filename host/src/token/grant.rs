//! Sealed grants: the record of a user's answer to an elicit, carried in the token.
//!
//! A grant is a first-party caveat
//!
//! ```text
//! grant {"v":1,"d":"accept","kid":"k1","ph":"bf","tool":"send_email","policy":"tool_access","params":[],"exp":1798761599,"mac":"..."}
//! ```
//!
//! whose `mac` is HMAC-SHA256, under a key derived from the root key with the label
//! `portcullis/grant/v1`, over the token's identifier (user, roles, nonce, key id) and every
//! other field (length-prefixed, so no two field lists encode alike). Only a host holding the
//! root key can compute it, so a holder can append text that looks like a grant but never one
//! that verifies; copied into another token (another identifier) it does not verify either.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use serde::{Deserialize, Serialize};

use super::error::TokenError;
use super::key::{GrantKey, Keyring};
use super::mint;
use super::verify::VerifiedToken;
use crate::decision::Phase;

/// Prefix that marks a grant caveat.
pub const PREFIX: &str = "grant ";

/// A user's answer to one elicit, as carried in a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Approved (true) or declined (false).
    pub accepted: bool,
    /// The root key whose derived key sealed this grant.
    pub key_id: String,
    pub phase: Phase,
    /// The tool that was called (a name, not a glob).
    pub tool: String,
    /// The policy of the elicit rule (`tool_access`, `field_access`, or an enforcer).
    pub policy: String,
    /// The elicit rule's parameters (for `field_access`, the withheld paths).
    pub params: Vec<String>,
    /// Unix seconds at which the answer stops counting.
    pub expires_unix: u64,
    mac: [u8; 32],
}

/// What a grant applies to: one elicit rule's policy and parameters for one tool and phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTarget {
    pub phase: Phase,
    pub tool: String,
    pub policy: String,
    pub params: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    v: u32,
    d: String,
    kid: String,
    ph: String,
    tool: String,
    policy: String,
    params: Vec<String>,
    exp: u64,
    mac: String,
}

impl Grant {
    /// Seals an answer for `target` into a grant bound to the token whose identifier is
    /// `identifier`.
    pub fn seal(
        key_id: &str,
        key: &GrantKey,
        identifier: &[u8],
        target: &GrantTarget,
        accepted: bool,
        expires_unix: u64,
    ) -> Grant {
        let mut grant = Grant {
            accepted,
            key_id: key_id.to_string(),
            phase: target.phase,
            tool: target.tool.clone(),
            policy: target.policy.clone(),
            params: target.params.clone(),
            expires_unix,
            mac: [0; 32],
        };
        grant.mac = grant
            .compute(key, identifier)
            .finalize()
            .into_bytes()
            .into();
        grant
    }

    /// True when the MAC is right for this token's identifier (compared in constant time).
    pub fn verify(&self, key: &GrantKey, identifier: &[u8]) -> bool {
        self.compute(key, identifier)
            .verify_slice(&self.mac)
            .is_ok()
    }

    /// True when this grant answers `target` and has not expired at `now_unix_ms`.
    pub fn answers(&self, target: &GrantTarget, now_unix_ms: u64) -> bool {
        self.matches(
            target.phase,
            &target.tool,
            &target.policy,
            &target.params,
            now_unix_ms,
        )
    }

    /// [`Grant::answers`] without building a target (the engine's per-call path).
    pub fn matches(
        &self,
        phase: Phase,
        tool: &str,
        policy: &str,
        params: &[String],
        now_unix_ms: u64,
    ) -> bool {
        self.phase == phase
            && self.tool == tool
            && self.policy == policy
            && self.params == params
            && now_unix_ms < self.expires_unix.saturating_mul(1000)
    }

    fn compute(&self, key: &GrantKey, identifier: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = key.mac();
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u32).to_be_bytes());
            mac.update(bytes);
        };
        field(identifier);
        field(if self.accepted { b"accept" } else { b"decline" });
        field(self.key_id.as_bytes());
        field(phase_word(self.phase).as_bytes());
        field(self.tool.as_bytes());
        field(self.policy.as_bytes());
        field(&(self.params.len() as u32).to_be_bytes());
        for p in &self.params {
            field(p.as_bytes());
        }
        field(&self.expires_unix.to_be_bytes());
        mac
    }

    /// The caveat text (`grant {...}`).
    pub fn to_caveat(&self) -> String {
        let wire = Wire {
            v: 1,
            d: if self.accepted { "accept" } else { "decline" }.into(),
            kid: self.key_id.clone(),
            ph: phase_word(self.phase).into(),
            tool: self.tool.clone(),
            policy: self.policy.clone(),
            params: self.params.clone(),
            exp: self.expires_unix,
            mac: URL_SAFE_NO_PAD.encode(self.mac),
        };
        // Serializing plain strings and numbers cannot fail.
        format!(
            "{PREFIX}{}",
            serde_json::to_string(&wire).unwrap_or_default()
        )
    }

    /// Parses the JSON after `grant `; the error names the field that is wrong. Does not
    /// check the MAC.
    pub fn parse(json: &str) -> Result<Grant, String> {
        let w: Wire = serde_json::from_str(json).map_err(|e| {
            format!("expected grant {{\"v\":1,\"d\":..,\"kid\":..,\"ph\":..,\"tool\":..,\"policy\":..,\"params\":[..],\"exp\":..,\"mac\":..}}: {e}")
        })?;
        if w.v != 1 {
            return Err(format!(
                "grant version {} is not supported: expected 1",
                w.v
            ));
        }
        let accepted = match w.d.as_str() {
            "accept" => true,
            "decline" => false,
            other => return Err(format!("grant d {other:?}: expected accept or decline")),
        };
        let phase = match w.ph.as_str() {
            "bf" => Phase::Before,
            "af" => Phase::After,
            other => return Err(format!("grant ph {other:?}: expected bf or af")),
        };
        let mac_bytes = URL_SAFE_NO_PAD
            .decode(&w.mac)
            .map_err(|e| format!("grant mac is not unpadded base64url: {e}"))?;
        let mac: [u8; 32] = mac_bytes
            .try_into()
            .map_err(|v: Vec<u8>| format!("grant mac is {} bytes: expected 32", v.len()))?;
        if w.tool.is_empty() || w.policy.is_empty() {
            return Err("grant tool and policy must not be empty".into());
        }
        Ok(Grant {
            accepted,
            key_id: w.kid,
            phase,
            tool: w.tool,
            policy: w.policy,
            params: w.params,
            expires_unix: w.exp,
            mac,
        })
    }
}

/// Appends the user's answer to `token`: one sealed grant per target, under the current key,
/// expiring `expiry_secs` from now. A declined before-phase elicit is not stored, so the user
/// is asked again next time (seed behaviour); a declined field stays redacted until expiry.
/// Returns the new token (V2, base64url) and how many grants were added.
pub fn append(
    keys: &Keyring,
    token: &VerifiedToken,
    targets: &[GrantTarget],
    accepted: bool,
    now_unix_ms: u64,
    expiry_secs: u64,
) -> Result<(String, usize), TokenError> {
    let key = keys.current();
    let mut m = token.macaroon().clone();
    let expires_unix = (now_unix_ms / 1000).saturating_add(expiry_secs);
    let mut added = 0;
    for t in targets {
        if !accepted && t.phase == Phase::Before {
            continue;
        }
        let g = Grant::seal(
            key.id(),
            key.grant_key(),
            m.identifier(),
            t,
            accepted,
            expires_unix,
        );
        if m.caveats().len() >= super::MAX_CAVEATS {
            return Err(TokenError::TooLarge {
                what: "the number of caveats",
                found: m.caveats().len() + 1,
                limit: super::MAX_CAVEATS,
            });
        }
        m.add_first_party_caveat(g.to_caveat().as_bytes())
            .map_err(|e| TokenError::Invalid(format!("cannot add the grant: {e}")))?;
        tracing::info!(
            target: crate::audit::TARGET,
            user = %token.identifier.user,
            token = %token.identifier.nonce_hex(),
            tool = %t.tool,
            policy = %t.policy,
            accepted,
            expires_unix,
            key_id = key.id(),
            "grant sealed"
        );
        added += 1;
    }
    let text = mint::encode(&m, false)?;
    if text.len() > super::MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            what: "the serialized token",
            found: text.len(),
            limit: super::MAX_TOKEN_BYTES,
        });
    }
    Ok((text, added))
}

fn phase_word(phase: Phase) -> &'static str {
    match phase {
        Phase::Before => "bf",
        Phase::After => "af",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::key::RootKey;

    fn target() -> GrantTarget {
        GrantTarget {
            phase: Phase::After,
            tool: "read_emails".into(),
            policy: "field_access".into(),
            params: vec!["attachments".into()],
        }
    }

    #[test]
    fn text_round_trips_and_the_mac_binds_every_field() {
        let key = RootKey::from_secret("k1", &[7; 32]).unwrap();
        let id = b"pc1:k1:1:00000000000000000000000000000000::ann";
        let g = Grant::seal("k1", key.grant_key(), id, &target(), true, 2_000_000_000);
        let text = g.to_caveat();
        assert!(text.starts_with("grant {\"v\":1,\"d\":\"accept\",\"kid\":\"k1\""));
        let back = Grant::parse(text.strip_prefix(PREFIX).unwrap()).unwrap();
        assert_eq!(back, g);
        assert!(back.verify(key.grant_key(), id));

        // Another token, another key, or any changed field: the MAC fails.
        assert!(!back.verify(
            key.grant_key(),
            b"pc1:k1:1:00000000000000000000000000000001::ann"
        ));
        let other = RootKey::from_secret("k1", &[8; 32]).unwrap();
        assert!(!back.verify(other.grant_key(), id));
        let tamper: [fn(&mut Grant); 7] = [
            |g| g.accepted = false,
            |g| g.tool.push('x'),
            |g| g.policy = "tool_access".into(),
            |g| g.params.push("body".into()),
            |g| g.expires_unix += 1,
            |g| g.phase = Phase::Before,
            |g| g.key_id = "k2".into(),
        ];
        for (i, t) in tamper.iter().enumerate() {
            let mut g2 = back.clone();
            t(&mut g2);
            assert!(!g2.verify(key.grant_key(), id), "tamper {i} went unnoticed");
        }
    }

    #[test]
    fn answers_only_its_own_target_until_expiry() {
        let key = RootKey::from_secret("k1", &[7; 32]).unwrap();
        let g = Grant::seal("k1", key.grant_key(), b"id", &target(), true, 100);
        assert!(g.answers(&target(), 99_999));
        assert!(!g.answers(&target(), 100_000));
        let mut t = target();
        t.tool = "read_email".into();
        assert!(!g.answers(&t, 0));
        let mut t = target();
        t.params.clear();
        assert!(!g.answers(&t, 0));
    }

    #[test]
    fn malformed_grants_say_what_is_wrong() {
        for (json, want) in [
            ("{}", "missing field"),
            ("not json", "expected grant"),
            (
                r#"{"v":2,"d":"accept","kid":"k1","ph":"bf","tool":"t","policy":"p","params":[],"exp":1,"mac":""}"#,
                "version 2",
            ),
            (
                r#"{"v":1,"d":"maybe","kid":"k1","ph":"bf","tool":"t","policy":"p","params":[],"exp":1,"mac":""}"#,
                "expected accept or decline",
            ),
            (
                r#"{"v":1,"d":"accept","kid":"k1","ph":"xx","tool":"t","policy":"p","params":[],"exp":1,"mac":""}"#,
                "expected bf or af",
            ),
            (
                r#"{"v":1,"d":"accept","kid":"k1","ph":"bf","tool":"t","policy":"p","params":[],"exp":1,"mac":"AAAA"}"#,
                "expected 32",
            ),
            (
                r#"{"v":1,"d":"accept","kid":"k1","ph":"bf","tool":"t","policy":"p","params":[],"exp":1,"mac":"","x":1}"#,
                "unknown field",
            ),
        ] {
            let err = Grant::parse(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
