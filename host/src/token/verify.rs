//! Verifying a token for one request: size caps, format, key, the whole HMAC chain (with
//! discharges), then every caveat. The result is a [`VerifiedToken`] the engine applies on
//! top of the server's policy.
//!
//! Order matters for the error a caller sees: a token is checked for size and format first,
//! then its signature, and only a token whose signature holds has its caveats interpreted, so
//! a removed or reordered caveat is reported as a bad signature, never as something else.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, SecondsFormat};
use libmacaroon::{Caveat as RawCaveat, Macaroon, MacaroonError, Verifier};

use super::cache::CaveatCache;
use super::caveat::Caveat;
use super::error::TokenError;
use super::grant::{Grant, GrantTarget};
use super::identifier::Identifier;
use super::key::Keyring;
use super::mint::decode;
use super::{MAX_DISCHARGES, MAX_TOKEN_BYTES};
use crate::policy::{EnforcerCatalog, Rule, ToolPattern};
use crate::request::Subject;

/// What a verification is judged against.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The request's clock (expiry of the token and of grants).
    pub now_unix_ms: u64,
    /// The user an identity layer established for this request, if any: the token must have
    /// been issued to that user (subject binding).
    pub user: Option<&'a str>,
}

/// A token whose signature and caveats all check out, ready to be applied to a request.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The parsed identifier.
    pub identifier: Identifier,
    /// User and roles from the identifier: the subject every rule is matched against.
    pub subject: Subject,
    /// The root key that signed the token.
    pub key_id: String,
    /// The earliest `expires` of the token and its discharges, in Unix ms.
    pub expires_unix_ms: Option<u64>,
    /// Policy caveats (token and discharges), compiled, origin `Token`, id = caveat text.
    pub rules: Vec<Arc<Rule>>,
    /// `tool = GLOB` caveats: a call must match every one.
    pub tools: Vec<Arc<Caveat>>,
    /// Grants whose seal verified (expired ones included: expiry is judged per request).
    pub grants: Vec<Grant>,
    /// Things worth telling an operator (a grant under a removed key was ignored, ...).
    pub notes: Vec<String>,
    /// Shared, so handing out a cached verification does not copy every caveat.
    macaroon: Arc<Macaroon>,
}

impl VerifiedToken {
    /// The macaroon, to append grants to or inspect.
    pub fn macaroon(&self) -> &Macaroon {
        &self.macaroon
    }

    /// The `tool = GLOB` patterns, in caveat order.
    pub fn tool_globs(&self) -> impl Iterator<Item = &ToolPattern> {
        self.tools.iter().filter_map(|c| match &**c {
            Caveat::Tool(p) => Some(p),
            _ => None,
        })
    }

    /// The latest grant (accepted or declined) that answers this target and has not expired.
    pub fn grant_for(&self, target: &GrantTarget, now_unix_ms: u64) -> Option<&Grant> {
        self.grants
            .iter()
            .rev()
            .find(|g| g.answers(target, now_unix_ms))
    }

    /// The token with `caveats` appended (the caveats enforcers returned in an allowing
    /// [`crate::Decision`], which go back to the client with its token). Needs no key;
    /// the caveats only restrict.
    pub fn with_caveats(&self, caveats: &[String]) -> Result<String, TokenError> {
        let mut m = (*self.macaroon).clone();
        super::mint::attenuate(&mut m, caveats, None, 0)?;
        super::mint::encode(&m, false)
    }

    /// A request for this token's subject.
    pub fn request(
        &self,
        tool: impl Into<String>,
        arguments: serde_json::Value,
    ) -> crate::request::Request {
        crate::request::Request::new(self.subject.clone(), tool, arguments)
    }
}

/// Checks signatures only; every first-party caveat is interpreted by [`interpret`] instead.
static CHAIN: LazyLock<Verifier> = LazyLock::new(|| {
    let mut v = Verifier::default();
    v.satisfy_general(|_| true);
    v
});

/// Verifies a serialized token and its discharges.
///
/// `cache` and `catalog` compile policy caveats (the catalog lists the enforcers they may
/// name). Every call checks the whole HMAC chain; only caveat compilation is cached (the
/// engine's [`crate::engine::Snapshot::verify_token`] also remembers successes).
pub fn verify(
    keys: &Keyring,
    token: &str,
    discharges: &[&str],
    opts: &VerifyOptions<'_>,
    cache: &CaveatCache,
    catalog: &dyn EnforcerCatalog,
) -> Result<VerifiedToken, TokenError> {
    if discharges.len() > MAX_DISCHARGES {
        return Err(TokenError::TooLarge {
            what: "the number of discharges",
            found: discharges.len(),
            limit: MAX_DISCHARGES,
        });
    }
    let total: usize = token.len() + discharges.iter().map(|d| d.len()).sum::<usize>();
    if total > MAX_TOKEN_BYTES * (1 + MAX_DISCHARGES) {
        return Err(TokenError::TooLarge {
            what: "the token and its discharges",
            found: total,
            limit: MAX_TOKEN_BYTES * (1 + MAX_DISCHARGES),
        });
    }
    let m = decode(token, "token")?;
    let ds = discharges
        .iter()
        .enumerate()
        .map(|(i, d)| decode(d, &format!("discharge {}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    verify_macaroon(keys, m, &ds, opts, cache, catalog)
}

/// [`verify`] for an already-parsed token.
pub fn verify_macaroon(
    keys: &Keyring,
    m: Macaroon,
    discharges: &[Macaroon],
    opts: &VerifyOptions<'_>,
    cache: &CaveatCache,
    catalog: &dyn EnforcerCatalog,
) -> Result<VerifiedToken, TokenError> {
    let identifier = Identifier::parse(m.identifier()).map_err(|detail| TokenError::Malformed {
        part: "token: identifier".into(),
        detail,
    })?;
    let key = keys
        .get(&identifier.key_id)
        .ok_or_else(|| TokenError::UnknownKey(identifier.key_id.clone()))?;
    check_discharges_present(&m, discharges)?;
    CHAIN
        .verify(&m, key.macaroon_key(), discharges)
        .map_err(|e| match e {
            MacaroonError::InvalidSignature | MacaroonError::CryptoError(_) => {
                TokenError::BadSignature
            }
            MacaroonError::DischargeNotUsed => TokenError::CaveatNotSatisfied(
                "a discharge answers no third-party caveat of this token".into(),
            ),
            other => TokenError::CaveatNotSatisfied(other.to_string()),
        })?;

    let mut found = Found::default();
    interpret(&mut found, &identifier, &m, None, keys, cache, catalog)?;
    for (i, d) in discharges.iter().enumerate() {
        interpret(
            &mut found,
            &identifier,
            d,
            Some(i + 1),
            keys,
            cache,
            catalog,
        )?;
    }
    if let Some(exp) = found.expires_unix_ms
        && opts.now_unix_ms >= exp
    {
        return Err(TokenError::Expired { at: rfc3339(exp) });
    }
    if let Some(user) = opts.user
        && user != identifier.user
    {
        return Err(TokenError::CaveatNotSatisfied(format!(
            "the token was issued to user {:?}, not {user:?}",
            identifier.user
        )));
    }
    Ok(VerifiedToken {
        subject: identifier.subject(),
        key_id: identifier.key_id.clone(),
        identifier,
        expires_unix_ms: found.expires_unix_ms,
        rules: found.rules,
        tools: found.tools,
        grants: found.grants,
        notes: found.notes,
        macaroon: Arc::new(m),
    })
}

/// What the caveats of a token and its discharges add up to.
#[derive(Default)]
struct Found {
    expires_unix_ms: Option<u64>,
    rules: Vec<Arc<Rule>>,
    tools: Vec<Arc<Caveat>>,
    grants: Vec<Grant>,
    notes: Vec<String>,
}

/// Every third-party caveat needs a discharge; say which one is missing before the chain
/// check, whose own message does not.
fn check_discharges_present(m: &Macaroon, discharges: &[Macaroon]) -> Result<(), TokenError> {
    for c in m.caveats() {
        if let RawCaveat::ThirdParty(tp) = c
            && !discharges.iter().any(|d| d.identifier() == tp.id())
        {
            return Err(TokenError::CaveatNotSatisfied(format!(
                "third-party caveat {:?} at {} has no discharge: get one from {} and pass it with the token",
                String::from_utf8_lossy(tp.id()),
                tp.location(),
                tp.location()
            )));
        }
    }
    Ok(())
}

/// Interprets the first-party caveats of the token `m` (`discharge` None) or of discharge
/// number `discharge`.
fn interpret(
    v: &mut Found,
    id: &Identifier,
    m: &Macaroon,
    discharge: Option<usize>,
    keys: &Keyring,
    cache: &CaveatCache,
    catalog: &dyn EnforcerCatalog,
) -> Result<(), TokenError> {
    for c in m.caveats() {
        let RawCaveat::FirstParty(fp) = c else {
            continue;
        };
        let text = std::str::from_utf8(fp.predicate()).map_err(|_| TokenError::UnknownCaveat {
            caveat: String::from_utf8_lossy(fp.predicate()).into_owned(),
            why: "not UTF-8 text".into(),
        })?;
        let parsed = cache.get_or_parse(text, catalog)?;
        match &*parsed {
            Caveat::User(u) => {
                if *u != id.user {
                    return Err(TokenError::CaveatNotSatisfied(format!(
                        "{text:?}: the token was issued to user {:?}",
                        id.user
                    )));
                }
            }
            Caveat::Role(r) => {
                if !id.roles.contains(r) {
                    return Err(TokenError::CaveatNotSatisfied(format!(
                        "{text:?}: the token's subject does not have role {r:?} (roles come from the identifier and cannot be added)"
                    )));
                }
            }
            Caveat::Expires(ms) => {
                v.expires_unix_ms = Some(v.expires_unix_ms.map_or(*ms, |e| e.min(*ms)));
            }
            Caveat::Tool(_) => v.tools.push(parsed.clone()),
            Caveat::Policy(rule) => v.rules.push(rule.clone()),
            Caveat::Grant(g) => {
                if let Some(n) = discharge {
                    return Err(TokenError::CaveatNotSatisfied(format!(
                        "discharge {n} carries a grant: grants are only valid in the token itself"
                    )));
                }
                match keys.get(&g.key_id) {
                    None => v.notes.push(format!(
                        "grant for {} ({}) ignored: it was sealed under key {:?}, which this host no longer holds",
                        g.tool, g.policy, g.key_id
                    )),
                    Some(k) if g.verify(k.grant_key(), m.identifier()) => {
                        v.grants.push(g.clone())
                    }
                    Some(_) => {
                        return Err(TokenError::CaveatNotSatisfied(format!(
                            "grant for {} ({}): its seal does not verify (written by hand, altered, or copied from another token)",
                            g.tool, g.policy
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Unix ms as an RFC 3339 UTC time.
pub(crate) fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{ms} ms after the epoch"))
}
