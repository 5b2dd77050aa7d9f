//! What can go wrong with a token or a key, one variant per cause so callers (and tests) can
//! tell a forged token from an expired one without parsing messages.

use thiserror::Error;

/// Why a token was refused, or could not be made or changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// The text is not a token: bad base64, a broken macaroon, or an identifier that is not
    /// Portcullis's. `part` names what was wrong (`base64`, `macaroon`, `identifier`,
    /// `discharge 2`, ...).
    #[error("malformed token: {part}: {detail}")]
    Malformed { part: String, detail: String },
    /// The HMAC chain does not check out: the token (or a discharge bound to it) was altered,
    /// a caveat was removed or reordered, or it was signed with another key.
    #[error(
        "token signature does not verify: the token or a discharge was altered (a caveat changed, removed or reordered) or signed with another key"
    )]
    BadSignature,
    /// An `expires < ...` caveat has passed.
    #[error("token expired at {at}")]
    Expired { at: String },
    /// A first-party caveat this host does not understand; unknown caveats fail closed.
    #[error("unknown caveat {caveat:?}: {why}")]
    UnknownCaveat { caveat: String, why: String },
    /// A caveat is understood but does not hold for this token or request.
    #[error("caveat not satisfied: {0}")]
    CaveatNotSatisfied(String),
    /// Over a size cap (bytes of the serialized token, caveats, discharges).
    #[error("token too large: {what} is {found}, the limit is {limit}")]
    TooLarge {
        what: &'static str,
        found: usize,
        limit: usize,
    },
    /// The identifier names a key id this host does not hold (never had it, or it was retired
    /// and then removed from `config.retired_keys`).
    #[error(
        "unknown key id {0:?}: this host holds no such key (a retired key verifies only while config.retired_keys lists it)"
    )]
    UnknownKey(String),
    /// Input to mint / attenuate / grant was unusable (empty user, bad role, bad caveat, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Why the root key (or a retired key) could not be loaded; the host must not start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error(
        "environment variable {env} is not set: it must hold the token root key (at least {min} bytes; e.g. `openssl rand -base64 48`), or pass --insecure-dev-key for a demo"
    )]
    Missing { env: String, min: usize },
    #[error("environment variable {env} is not valid UTF-8: the root key is read as UTF-8 text")]
    NotUtf8 { env: String },
    #[error(
        "the key in {env} is {len} bytes: at least {min} are required (e.g. `openssl rand -base64 48`)"
    )]
    TooShort { env: String, len: usize, min: usize },
    #[error(
        "the key in {env} is the seed's published default \"this_is_a_secret_key\": anyone could mint tokens; set a random key"
    )]
    SeedDefault { env: String },
    #[error("{0}")]
    BadId(String),
    #[error("key id {0:?} is used twice: every key needs its own id")]
    DuplicateId(String),
}
