//! Capability tokens: macaroons minted, attenuated and verified offline, carrying policy
//! caveats and sealed approval grants.
//!
//! Any number of hosts that share the root key accept the same token and the grants inside
//! it, with no shared state. Whatever a holder appends can only restrict: caveats are
//! interpreted so that the effective decision is the server's policy AND the token's (see
//! [`crate::engine::Engine::before_with`]), an unknown caveat fails verification, and an
//! approval is a grant sealed with a key only hosts hold.
//!
//! ```
//! use portcullis::token::{self, Keyring, MintSpec, RootKey, VerifyOptions};
//! use portcullis::{Effect, Engine, Subject};
//! use serde_json::json;
//!
//! let keys = Keyring::new(RootKey::from_secret("k1", b"an example secret of 32+ bytes!!").unwrap(), vec![]).unwrap();
//! let engine = Engine::from_str("policies: [\"bf:*:tool_access:allow\"]", "p.yaml").unwrap();
//! let spec = MintSpec {
//!     user: "ann".into(),
//!     caveats: vec!["tool = read_*".into()],
//!     ..MintSpec::default()
//! };
//! let text = token::encode(&token::mint(&keys, &spec, 0, &token::UncheckedEnforcers).unwrap(), false).unwrap();
//!
//! let opts = VerifyOptions { now_unix_ms: 1_000, user: None };
//! let verified = engine.verify_token(&keys, &text, &[], &opts).unwrap();
//! let read = verified.request("read_mail", json!({})).at(1_000);
//! assert_eq!(engine.before_with(&read, Some(&verified)).effect, Effect::Allow);
//! let delete = verified.request("delete_mail", json!({})).at(1_000);
//! assert_eq!(engine.before_with(&delete, Some(&verified)).effect, Effect::Deny); // narrowed
//! ```

mod cache;
pub mod caveat;
mod error;
pub mod grant;
pub mod identifier;
mod key;
mod mint;
mod session;
mod verified_cache;
mod verify;

pub use cache::CaveatCache;
pub use caveat::Caveat;
pub use error::{KeyError, TokenError};
pub use grant::{Grant, GrantTarget};
pub use identifier::Identifier;
pub use key::{
    DEV_KEY_ID, GrantKey, Keyring, MIN_SECRET_BYTES, RootKey, SEED_DEFAULT_SECRET, check_secret,
};
pub use mint::{
    MintSpec, UncheckedEnforcers, add_third_party, attenuate, bind, decode, discharge, encode,
    expires_caveat, mint, parse_ttl,
};
pub use session::SessionTokens;
pub use verified_cache::VerifiedCache;
pub(crate) use verify::rfc3339;
pub use verify::{VerifiedToken, VerifyOptions, verify, verify_macaroon};

/// The location written into minted tokens.
pub const LOCATION: &str = "portcullis";

/// Largest serialized token accepted, in bytes (each discharge has the same cap).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Most caveats one token (or discharge) may carry, grants included.
pub const MAX_CAVEATS: usize = 64;

/// Most discharges accepted with one token.
pub const MAX_DISCHARGES: usize = 8;
