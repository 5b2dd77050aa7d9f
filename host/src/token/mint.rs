//! Making tokens and changing them: mint (needs the root key), attenuate and add third-party
//! caveats (no key needed: anyone may restrict a token they hold), make and bind discharges,
//! and the text encodings.

use std::time::Duration;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, SecondsFormat, Utc};
use libmacaroon::{Format, Macaroon, MacaroonError, MacaroonKey};

use super::caveat::{self, Caveat};
use super::error::TokenError;
use super::identifier::{self, Identifier};
use super::key::Keyring;
use super::{LOCATION, MAX_CAVEATS, MAX_TOKEN_BYTES};
use crate::policy::EnforcerCatalog;

/// What a new token says.
#[derive(Debug, Clone, Default)]
pub struct MintSpec {
    pub user: String,
    pub roles: Vec<String>,
    /// Lifetime; `None` mints a token without an `expires` caveat.
    pub ttl: Option<Duration>,
    /// Extra caveats (any kind except grants), appended after the standard ones.
    pub caveats: Vec<String>,
}

/// Mints a token under the keyring's current key: identifier, then `user = U`, one
/// `role = R` per role, `expires < ...` when a TTL is given, then the extra caveats.
pub fn mint(
    keys: &Keyring,
    spec: &MintSpec,
    now_unix_ms: u64,
    catalog: &dyn EnforcerCatalog,
) -> Result<Macaroon, TokenError> {
    identifier::check_user(&spec.user).map_err(TokenError::Invalid)?;
    for r in &spec.roles {
        identifier::check_role(r).map_err(TokenError::Invalid)?;
    }
    if spec.roles.len() > identifier::MAX_ROLES {
        return Err(TokenError::Invalid(format!(
            "{} roles; at most {}",
            spec.roles.len(),
            identifier::MAX_ROLES
        )));
    }
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|e| TokenError::Invalid(format!("the OS random generator failed: {e}")))?;
    let key = keys.current();
    let id = Identifier {
        key_id: key.id().to_string(),
        issued_unix: now_unix_ms / 1000,
        nonce,
        roles: spec.roles.clone(),
        user: spec.user.clone(),
    };
    let mut m = Macaroon::create(Some(LOCATION), key.macaroon_key(), id.encode())
        .map_err(|e| TokenError::Invalid(format!("cannot create the macaroon: {e}")))?;
    let mut caveats = vec![format!("user = {}", spec.user)];
    caveats.extend(spec.roles.iter().map(|r| format!("role = {r}")));
    if let Some(ttl) = spec.ttl {
        caveats.push(expires_caveat(now_unix_ms, ttl)?);
    }
    for c in &spec.caveats {
        check_caveat(c, Some(&id), catalog)?;
        caveats.push(c.clone());
    }
    append(&mut m, &caveats)?;
    tracing::info!(
        target: crate::audit::TARGET,
        key_id = key.id(),
        user = %spec.user,
        token = %id.nonce_hex(),
        caveats = m.caveats().len(),
        "token minted"
    );
    Ok(m)
}

/// Restricts a token: appends caveats (checked to be ones a host understands, never grants)
/// and, with a TTL, an `expires` caveat. Needs no key.
pub fn attenuate(
    m: &mut Macaroon,
    caveats: &[String],
    ttl: Option<Duration>,
    now_unix_ms: u64,
) -> Result<(), TokenError> {
    let id = Identifier::parse(m.identifier()).ok();
    let mut all = Vec::with_capacity(caveats.len() + 1);
    for c in caveats {
        check_caveat(c, id.as_ref(), &UncheckedEnforcers)?;
        all.push(c.clone());
    }
    if let Some(ttl) = ttl {
        all.push(expires_caveat(now_unix_ms, ttl)?);
    }
    append(m, &all)
}

/// Adds a third-party caveat: the call needs a discharge from the approver at `location`,
/// who shares `caveat_secret` and recognises `id`. The caveat key is derived from the secret
/// as pymacaroons derives it and travels encrypted in the caveat's verification id.
pub fn add_third_party(
    m: &mut Macaroon,
    location: &str,
    caveat_secret: &[u8],
    id: &str,
) -> Result<(), TokenError> {
    if location.is_empty() || id.is_empty() {
        return Err(TokenError::Invalid(
            "a third-party caveat needs a location and an id".into(),
        ));
    }
    check_count(m.caveats().len() + 1)?;
    m.add_third_party_caveat(location, &MacaroonKey::generate(caveat_secret), id)
        .map_err(|e| TokenError::Invalid(format!("cannot add the third-party caveat: {e}")))?;
    Ok(())
}

/// Makes a discharge for the third-party caveat `id`, as the approver at `location` would:
/// a macaroon under the shared caveat key, with its own caveats (checked like a token's).
pub fn discharge(
    location: &str,
    caveat_secret: &[u8],
    id: &str,
    caveats: &[String],
    ttl: Option<Duration>,
    now_unix_ms: u64,
) -> Result<Macaroon, TokenError> {
    let mut d = Macaroon::create(Some(location), &MacaroonKey::generate(caveat_secret), id)
        .map_err(|e| TokenError::Invalid(format!("cannot create the discharge: {e}")))?;
    for c in caveats {
        if let Caveat::Grant(_) = caveat::parse(c, &UncheckedEnforcers)? {
            return Err(TokenError::Invalid(
                "a discharge cannot carry grants: grants belong in the token".into(),
            ));
        }
    }
    let mut all = caveats.to_vec();
    if let Some(ttl) = ttl {
        all.push(expires_caveat(now_unix_ms, ttl)?);
    }
    append(&mut d, &all)?;
    Ok(d)
}

/// Binds a discharge to the token it will be presented with, so it cannot be replayed with
/// another token. A token that gains caveats (a grant) needs its discharges bound again,
/// from their unbound form.
pub fn bind(token: &Macaroon, discharge: &mut Macaroon) {
    token.bind(discharge);
}

/// Serializes as V2 binary in unpadded base64url (the usual form), or as V2JSON.
pub fn encode(m: &Macaroon, json: bool) -> Result<String, TokenError> {
    let format = if json { Format::V2JSON } else { Format::V2 };
    let text = m
        .serialize(format)
        .map_err(|e| TokenError::Invalid(format!("cannot serialize the token: {e}")))?;
    Ok(if json {
        text
    } else {
        text.trim_end_matches('=').to_string()
    })
}

/// Base64 engines that accept padded or unpadded input, as every macaroon library emits one
/// or the other.
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parses a token (V2 binary in base64 or base64url, padded or not, or V2JSON). `what` names
/// it in errors (`token`, `discharge 1`). Caps its size before decoding anything.
pub fn decode(text: &str, what: &str) -> Result<Macaroon, TokenError> {
    let text = text.trim();
    let malformed = |part: &str, detail: String| TokenError::Malformed {
        part: format!("{what}: {part}"),
        detail,
    };
    if text.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            what: "the serialized token",
            found: text.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    if text.is_empty() {
        return Err(malformed("text", "empty: expected a V2 token".into()));
    }
    let m = if text.starts_with('{') {
        let normalized = v2json_with_version(text);
        Macaroon::deserialize(normalized.as_deref().unwrap_or(text).as_bytes())
            .map_err(|e| malformed("V2JSON", describe(&e)))?
    } else {
        let body = text.trim_end_matches('=');
        if let Some(i) = body
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/')))
        {
            let c = body[i..].chars().next().unwrap_or('?');
            return Err(malformed(
                "base64",
                format!(
                    "character {c:?} at position {i} is not base64url (expected A-Z a-z 0-9 - _)"
                ),
            ));
        }
        let engine = if text.contains(['-', '_']) {
            URL_SAFE
        } else {
            STANDARD
        };
        let bytes = engine
            .decode(text)
            .map_err(|e| malformed("base64", format!("{e} (truncated?)")))?;
        match bytes.first() {
            Some(2) => {}
            Some(_) => {
                return Err(malformed(
                    "macaroon",
                    "not a V2 binary macaroon (first byte is not 0x02); V1 is not accepted".into(),
                ));
            }
            None => return Err(malformed("base64", "decodes to nothing".into())),
        }
        Macaroon::deserialize_binary(&bytes).map_err(|e| malformed("macaroon", describe(&e)))?
    };
    check_count(m.caveats().len())?;
    Ok(m)
}

/// pymacaroons writes V2JSON without the `"v": 2` member that libmacaroons (and
/// libmacaroon) require; add it to an object that has V2 fields and no version, so tokens
/// from pymacaroons parse. `None`: leave the text as it is.
fn v2json_with_version(text: &str) -> Option<String> {
    let serde_json::Value::Object(mut obj) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let v2_fields = ["i", "i64"].iter().any(|k| obj.contains_key(*k))
        && ["s", "s64"].iter().any(|k| obj.contains_key(*k));
    if obj.contains_key("v") || !v2_fields {
        return None;
    }
    obj.insert("v".into(), serde_json::Value::from(2));
    serde_json::to_string(&obj).ok()
}

/// The `expires < ...` caveat for now + ttl.
pub fn expires_caveat(now_unix_ms: u64, ttl: Duration) -> Result<String, TokenError> {
    let at = now_unix_ms
        .checked_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .ok_or_else(|| TokenError::Invalid(format!("ttl {ttl:?} is too far in the future")))?;
    Ok(format!(
        "expires < {}",
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    ))
}

/// Parses a duration such as `90s`, `15m`, `1h`, `7d` or `1h30m` (units s, m, h, d).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "bad duration {text:?}: expected a number and a unit (s, m, h, d), e.g. 30m, 1h, 7d or 1h30m"
        )
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    const MAX: u64 = 366 * 86_400;
    if total > MAX {
        return Err(format!("duration {text:?} is over the maximum of 366d"));
    }
    Ok(Duration::from_secs(total))
}

/// Appends first-party caveats, enforcing the caveat cap.
fn append(m: &mut Macaroon, caveats: &[String]) -> Result<(), TokenError> {
    check_count(m.caveats().len() + caveats.len())?;
    for c in caveats {
        m.add_first_party_caveat(c.as_bytes())
            .map_err(|e| TokenError::Invalid(format!("cannot add caveat {c:?}: {e}")))?;
    }
    Ok(())
}

fn check_count(n: usize) -> Result<(), TokenError> {
    if n > MAX_CAVEATS {
        return Err(TokenError::TooLarge {
            what: "the number of caveats",
            found: n,
            limit: MAX_CAVEATS,
        });
    }
    Ok(())
}

/// A caveat a holder or minter may add: understood, not a grant, and (when the identifier is
/// known) consistent with it, so a token is never made that could not verify.
fn check_caveat(
    text: &str,
    id: Option<&Identifier>,
    catalog: &dyn EnforcerCatalog,
) -> Result<(), TokenError> {
    match caveat::parse(text, catalog)? {
        Caveat::Grant(_) => Err(TokenError::Invalid(format!(
            "{text:?}: grants are sealed by the host when a user answers; they cannot be added by hand"
        ))),
        Caveat::User(u) if id.is_some_and(|id| id.user != u) => Err(TokenError::Invalid(format!(
            "{text:?}: the token is for user {:?}",
            id.map(|i| i.user.as_str()).unwrap_or_default()
        ))),
        Caveat::Role(r) if id.is_some_and(|id| !id.roles.contains(&r)) => {
            Err(TokenError::Invalid(format!(
                "{text:?}: the token's subject does not have role {r:?} (roles cannot be added)"
            )))
        }
        _ => Ok(()),
    }
}

/// For checking caveats without the policy (attenuation happens on the client): any policy
/// name that is not a likely typo of a built-in is taken to be an enforcer, and the verifying
/// host decides whether it has one.
pub struct UncheckedEnforcers;

impl EnforcerCatalog for UncheckedEnforcers {
    fn phases(&self, name: &str) -> Option<&[crate::decision::Phase]> {
        if crate::policy::did_you_mean(name, crate::rules::BUILTINS.iter().copied()).is_some() {
            return None;
        }
        Some(&[
            crate::decision::Phase::Before,
            crate::decision::Phase::After,
        ])
    }
    fn names(&self) -> Vec<&str> {
        Vec::new()
    }
    fn validate(&self, _: &crate::policy::Rule) -> Result<(), String> {
        Ok(())
    }
}

fn describe(e: &MacaroonError) -> String {
    match e {
        MacaroonError::DeserializationError(s) => s.clone(),
        MacaroonError::TooManyCaveats => format!("more than {MAX_CAVEATS} caveats"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_parses_units_and_rejects_nonsense() {
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(7 * 86_400));
        for bad in [
            "",
            "1",
            "h",
            "1x",
            "0s",
            "1h-",
            "99999999999999999999d",
            "400d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn expires_caveat_is_rfc3339_utc() {
        assert_eq!(
            expires_caveat(1_798_761_599_000 - 3_600_000, Duration::from_secs(3600)).unwrap(),
            "expires < 2026-12-31T23:59:59Z"
        );
    }

    #[test]
    fn decode_names_the_broken_part() {
        let err = |t: &str| decode(t, "token").unwrap_err().to_string();
        assert!(err("").contains("token: text: empty"));
        assert!(err("abc$def").contains("token: base64: character '$' at position 3"));
        assert!(err("A").contains("token: base64"));
        assert!(err("AQID").contains("token: macaroon: not a V2 binary macaroon"));
        assert!(err("AgID").contains("token: macaroon"));
        assert!(err("{\"v\":2").contains("token: V2JSON"));
        let huge = "A".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(
            decode(&huge, "token"),
            Err(TokenError::TooLarge { .. })
        ));
    }
}
