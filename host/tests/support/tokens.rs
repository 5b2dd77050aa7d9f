//! Shared helpers for token tests: a keyring, a fixed clock, minting and verifying.

#![allow(dead_code)]

use portcullis::Engine;
use portcullis::token::{
    self, Keyring, MintSpec, RootKey, TokenError, UncheckedEnforcers, VerifiedToken, VerifyOptions,
};

/// The test root secret (40 bytes).
pub const SECRET: &str = "portcullis-test-secret-0123456789abcdef!";

/// A fixed "now": 2027-01-15T08:00:00Z.
pub const NOW: u64 = 1_800_000_000_000;

/// A keyring with only `k1` from [`SECRET`].
pub fn keys() -> Keyring {
    keyring("k1", SECRET, &[])
}

/// A keyring with `current` and retired keys (`(id, secret)`).
pub fn keyring(id: &str, secret: &str, retired: &[(&str, &str)]) -> Keyring {
    let current = RootKey::from_secret(id, secret.as_bytes()).unwrap();
    let retired = retired
        .iter()
        .map(|(id, s)| RootKey::from_secret(id, s.as_bytes()).unwrap())
        .collect();
    Keyring::new(current, retired).unwrap()
}

/// Mints a V2 base64url token at [`NOW`] with no expiry.
pub fn mint_with(keys: &Keyring, user: &str, roles: &[&str], caveats: &[&str]) -> String {
    let spec = MintSpec {
        user: user.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ttl: None,
        caveats: caveats.iter().map(|c| c.to_string()).collect(),
    };
    token::encode(
        &token::mint(keys, &spec, NOW, &UncheckedEnforcers).unwrap(),
        false,
    )
    .unwrap()
}

/// [`mint_with`] under [`keys`].
pub fn mint(user: &str, caveats: &[&str]) -> String {
    mint_with(&keys(), user, &[], caveats)
}

/// Options for a request at `now`.
pub fn at(now: u64) -> VerifyOptions<'static> {
    VerifyOptions {
        now_unix_ms: now,
        user: None,
    }
}

/// Verifies through the engine's snapshot at [`NOW`].
pub fn verify(engine: &Engine, keys: &Keyring, token: &str) -> Result<VerifiedToken, TokenError> {
    engine.verify_token(keys, token, &[], &at(NOW))
}

/// Appends raw first-party caveats without any checks, as a hostile holder could.
pub fn append_raw(token: &str, caveats: &[&str]) -> String {
    let mut m = token::decode(token, "token").unwrap();
    for c in caveats {
        m.add_first_party_caveat(c.as_bytes()).unwrap();
    }
    token::encode(&m, false).unwrap()
}

/// The text of the token's last first-party caveat.
pub fn last_caveat(token: &str) -> String {
    let m = token::decode(token, "token").unwrap();
    let fp = m
        .caveats()
        .iter()
        .rev()
        .find_map(|c| c.as_first_party())
        .unwrap();
    String::from_utf8(fp.predicate().to_vec()).unwrap()
}
