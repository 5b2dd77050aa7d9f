//! The token identifier: who the token is for, which key signed it, when, and a nonce.
//!
//! Format (version 1, one line of text so it reads well in `token inspect` and in other
//! macaroon libraries):
//!
//! ```text
//! pc1:KEY_ID:ISSUED_UNIX_SECONDS:NONCE_HEX:ROLES:USER
//! pc1:k1:1798761599:9f86d081884c7d659a2feaa0c55ad015:analyst,oncall:ann
//! ```
//!
//! `ROLES` is a comma-separated list (possibly empty). `USER` is last, so it may contain any
//! character except control characters, including `:`. The subject's roles live in the
//! identifier, which no holder can change: a `role = R` caveat can therefore only confirm a
//! role the token was minted with, never add one.

use std::fmt::Write as _;

use crate::policy::check_key_id;
use crate::request::Subject;

/// Version prefix; a future format gets a new one.
pub const VERSION: &str = "pc1";

/// Longest user id accepted, in bytes.
pub const MAX_USER_BYTES: usize = 256;
/// Longest role name accepted, in bytes.
pub const MAX_ROLE_BYTES: usize = 64;
/// Most roles one token may carry.
pub const MAX_ROLES: usize = 32;

/// A parsed identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub key_id: String,
    pub issued_unix: u64,
    pub nonce: [u8; 16],
    pub roles: Vec<String>,
    pub user: String,
}

impl Identifier {
    /// The subject this token speaks for (user and roles; no agent or attributes).
    pub fn subject(&self) -> Subject {
        Subject {
            user: self.user.clone(),
            roles: self.roles.clone(),
            ..Subject::default()
        }
    }

    /// The nonce as hex, which also serves as the token's id in logs.
    pub fn nonce_hex(&self) -> String {
        hex(&self.nonce)
    }

    /// The identifier text.
    pub fn encode(&self) -> String {
        format!(
            "{VERSION}:{}:{}:{}:{}:{}",
            self.key_id,
            self.issued_unix,
            self.nonce_hex(),
            self.roles.join(","),
            self.user
        )
    }

    /// Parses identifier bytes; the error says which field is wrong and what was expected.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            "not UTF-8 text: expected pc1:KEY_ID:ISSUED:NONCE:ROLES:USER".to_string()
        })?;
        let mut parts = text.splitn(6, ':');
        let mut next = |name: &str| {
            parts.next().ok_or_else(|| {
                format!("{text:?} has no {name} field: expected pc1:KEY_ID:ISSUED:NONCE:ROLES:USER")
            })
        };
        let version = next("version")?;
        if version != VERSION {
            return Err(format!(
                "version {version:?} is not supported: expected {VERSION} (pc1:KEY_ID:ISSUED:NONCE:ROLES:USER)"
            ));
        }
        let key_id = next("key id")?;
        check_key_id(key_id)?;
        let issued = next("issue time")?;
        let issued_unix = issued
            .parse::<u64>()
            .ok()
            .filter(|_| issued.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("issue time {issued:?} is not a number of Unix seconds"))?;
        let nonce_text = next("nonce")?;
        let nonce = parse_nonce(nonce_text)?;
        let roles_text = next("roles")?;
        let roles: Vec<String> = if roles_text.is_empty() {
            Vec::new()
        } else {
            roles_text.split(',').map(str::to_string).collect()
        };
        for r in &roles {
            check_role(r)?;
        }
        if roles.len() > MAX_ROLES {
            return Err(format!("{} roles; at most {MAX_ROLES}", roles.len()));
        }
        let user = next("user")?;
        check_user(user)?;
        Ok(Identifier {
            key_id: key_id.to_string(),
            issued_unix,
            nonce,
            roles,
            user: user.to_string(),
        })
    }
}

/// A user id may be any text up to 256 bytes without control characters.
pub fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("user is empty: expected a user id".into());
    }
    if user.len() > MAX_USER_BYTES {
        return Err(format!(
            "user is {} bytes; at most {MAX_USER_BYTES}",
            user.len()
        ));
    }
    if user.chars().any(char::is_control) {
        return Err(format!("user {user:?} contains a control character"));
    }
    Ok(())
}

/// A role is 1 to 64 bytes without `,`, `:`, whitespace or control characters.
pub fn check_role(role: &str) -> Result<(), String> {
    let ok = !role.is_empty()
        && role.len() <= MAX_ROLE_BYTES
        && !role
            .chars()
            .any(|c| c == ',' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad role {role:?}: expected 1 to {MAX_ROLE_BYTES} bytes without ',', ':', spaces or control characters"
        ))
    }
}

fn parse_nonce(text: &str) -> Result<[u8; 16], String> {
    let bad = || format!("nonce {text:?} is not 32 lowercase hex digits");
    if text.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = &text[2 * i..2 * i + 2];
        if !pair.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Identifier {
        Identifier {
            key_id: "k1".into(),
            issued_unix: 1_798_761_599,
            nonce: [0xab; 16],
            roles: vec!["analyst".into(), "oncall".into()],
            user: "ann:smith".into(),
        }
    }

    #[test]
    fn round_trips_including_a_colon_in_the_user() {
        let id = sample();
        let text = id.encode();
        assert_eq!(
            text,
            "pc1:k1:1798761599:abababababababababababababababab:analyst,oncall:ann:smith"
        );
        assert_eq!(Identifier::parse(text.as_bytes()).unwrap(), id);
        let no_roles = Identifier {
            roles: vec![],
            ..sample()
        };
        assert_eq!(
            Identifier::parse(no_roles.encode().as_bytes()).unwrap(),
            no_roles
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: &[(&str, &str)] = &[
            ("user_ann", "version \"user_ann\""),
            ("pc2:k1:1:00:r:u", "version \"pc2\""),
            ("pc1:bad id:1:00:r:u", "bad key id"),
            (
                "pc1:k1:x1:abababababababababababababababab::u",
                "issue time",
            ),
            (
                "pc1:k1:+1:abababababababababababababababab::u",
                "issue time",
            ),
            ("pc1:k1:1:abab::u", "nonce"),
            ("pc1:k1:1:ABABABABABABABABABABABABABABABAB::u", "nonce"),
            (
                "pc1:k1:1:abababababababababababababababab:a b:u",
                "bad role",
            ),
            (
                "pc1:k1:1:abababababababababababababababab:a,,b:u",
                "bad role",
            ),
            (
                "pc1:k1:1:abababababababababababababababab:a:",
                "user is empty",
            ),
            (
                "pc1:k1:1:abababababababababababababababab:a",
                "no user field",
            ),
            (
                "pc1:k1:1:abababababababababababababababab::u\n",
                "control character",
            ),
        ];
        for (text, want) in cases {
            let err = Identifier::parse(text.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{text}: got {err:?}, want {want:?}");
        }
        assert!(
            Identifier::parse(&[0xff, 0xfe])
                .unwrap_err()
                .contains("UTF-8")
        );
    }
}
