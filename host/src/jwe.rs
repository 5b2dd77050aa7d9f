//! Compact JWE (RFC 7516) with RSA keys in JWK form (RFC 7517/7518): what auth mode `jwe`
//! decrypts bearer tokens with, what `portcullis keys` generates, and what a client (or a
//! test) encrypts tokens with.
//!
//! Accepted: key management `RSA-OAEP-256` or `RSA-OAEP` (SHA-1, as older clients send), and
//! content encryption `A256GCM`. Refused: every other algorithm (`RSA1_5`, `dir`, AES key
//! wrap, ...), compressed payloads (`zip`: a decompression bomb in a bearer token), and
//! critical header extensions (`crit`), which this implementation understands none of.
//!
//! The framing is written here on top of RustCrypto's `rsa` (0.10: constant-time private-key
//! operations, unlike 0.9, see RUSTSEC-2023-0071) and `aes-gcm`. Failure to unwrap the content
//! key and failure to authenticate the content are one error: when OAEP decoding fails, a
//! random content key is used and the AES-GCM check fails as it would for a tampered token
//! (RFC 7516 section 11.5), so the two cannot be told apart.

use std::path::Path;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::array::Array;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BoxedUint, PrivateKey, PublicKey};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use thiserror::Error;
use zeroize::Zeroizing;

/// RSAES-OAEP with SHA-256 and MGF1 with SHA-256 (the recommended key management).
pub const RSA_OAEP_256: &str = "RSA-OAEP-256";
/// RSAES-OAEP with SHA-1 and MGF1 with SHA-1 (accepted for older clients).
pub const RSA_OAEP: &str = "RSA-OAEP";
/// AES-256 in Galois/Counter Mode, the only content encryption accepted.
pub const A256GCM: &str = "A256GCM";
/// Largest compact token accepted, in bytes (the same cap as any credential header).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Modulus size `portcullis keys generate` uses by default.
pub const DEFAULT_KEY_BITS: usize = 3072;
/// Smallest RSA modulus accepted when loading or generating keys.
pub const MIN_KEY_BITS: usize = 2048;
/// Largest RSA modulus accepted (bounds the work an attacker-chosen token can cause).
pub const MAX_KEY_BITS: usize = 8192;

const CEK_BYTES: usize = 32;
const IV_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// Why a key could not be loaded or a token not decrypted or encrypted. Messages never contain
/// key material or the token.
#[derive(Debug, Error)]
pub enum JweError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Key { origin: String, message: String },
    #[error("not a compact JWE: {0}")]
    Malformed(String),
    #[error("unsupported JWE: {0}")]
    Unsupported(String),
    #[error("no key with kid {0:?} on this server")]
    UnknownKey(String),
    #[error("the token does not decrypt with this server's key (wrong key or altered token)")]
    Decrypt,
    #[error("the decrypted payload is not a JSON object")]
    Payload,
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

/// One RSA key pair and its key id.
struct KeyPair {
    kid: String,
    key: PrivateKey,
}

/// The server's private keys (a JWKS with one or more RSA keys), to decrypt tokens with.
pub struct PrivateKeySet {
    keys: Vec<KeyPair>,
}

impl std::fmt::Debug for PrivateKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("PrivateKeySet")
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

/// A JWK as read: every member optional, so each missing one gets its own message.
#[derive(Debug, Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
}

/// The protected header members this implementation looks at.
#[derive(Debug, Deserialize)]
struct Header {
    alg: Option<String>,
    enc: Option<String>,
    kid: Option<String>,
    zip: Option<Value>,
    crit: Option<Value>,
}

fn b64_uint(origin: &str, kid: &str, name: &str, text: &str) -> Result<BoxedUint, JweError> {
    let bytes =
        Zeroizing::new(
            B64.decode(text.trim_end_matches('='))
                .map_err(|_| JweError::Key {
                    origin: origin.into(),
                    message: format!("key {kid:?}: member {name:?} is not base64url"),
                })?,
        );
    if bytes.is_empty() || bytes.len() > MAX_KEY_BITS / 8 {
        return Err(JweError::Key {
            origin: origin.into(),
            message: format!("key {kid:?}: member {name:?} has an impossible length"),
        });
    }
    Ok(BoxedUint::from_be_slice_vartime(&bytes))
}

/// RFC 7638 thumbprint of an RSA public key: the default key id.
fn thumbprint(n: &[u8], e: &[u8]) -> String {
    use sha2_11::Digest as _;
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        B64.encode(e),
        B64.encode(n)
    );
    B64.encode(sha2_11::Sha256::digest(canonical.as_bytes()))
}

fn uint_b64(v: &BoxedUint) -> String {
    B64.encode(v.to_be_bytes_trimmed_vartime())
}

impl PrivateKeySet {
    /// A new key pair of `bits` bits (2048 to 8192), from the operating system's RNG.
    pub fn generate(bits: usize) -> Result<Self, JweError> {
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) || !bits.is_multiple_of(8) {
            return Err(JweError::Generate(format!(
                "{bits} bits: expected a multiple of 8 from {MIN_KEY_BITS} to {MAX_KEY_BITS}"
            )));
        }
        let key = PrivateKey::new(&mut getrandom::SysRng, bits)
            .map_err(|e| JweError::Generate(e.to_string()))?;
        let kid = thumbprint(&key.n_bytes(), &key.e_bytes());
        Ok(PrivateKeySet {
            keys: vec![KeyPair { kid, key }],
        })
    }

    /// Reads a private JWKS (`{"keys": [...]}`) or a single private JWK from `path`.
    pub fn load(path: &Path) -> Result<Self, JweError> {
        let text = std::fs::read_to_string(path).map_err(|source| JweError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses a private JWKS or a single private JWK; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, JweError> {
        let err = |message: String| JweError::Key {
            origin: origin.into(),
            message,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| {
            err(format!(
                "not JSON (expected a JWKS {{\"keys\": [...]}}): {e}"
            ))
        })?;
        let items = match value.get("keys") {
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(err("member \"keys\" is not an array".into())),
            None if value.get("kty").is_some() => vec![value],
            None => return Err(err("expected a JWKS {\"keys\": [...]} or one JWK".into())),
        };
        if items.is_empty() {
            return Err(err("the JWKS has no keys".into()));
        }
        let mut keys = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let raw: RawJwk = serde_json::from_value(item)
                .map_err(|e| err(format!("key {i}: not a JWK object: {e}")))?;
            let name = raw.kid.clone().unwrap_or_else(|| format!("#{i}"));
            if raw.kty.as_deref() != Some("RSA") {
                return Err(err(format!(
                    "key {name:?}: kty is {:?}; only RSA keys are supported",
                    raw.kty.as_deref().unwrap_or("missing")
                )));
            }
            if let Some(u) = raw.use_.as_deref().filter(|u| *u != "enc") {
                return Err(err(format!(
                    "key {name:?}: \"use\" is {u:?}; a decryption key needs \"enc\""
                )));
            }
            let member = |m: &Option<String>, field: &str| {
                m.clone().ok_or_else(|| {
                    err(format!(
                        "key {name:?}: member {field:?} is missing (is this the public key? the server needs the private JWKS)"
                    ))
                })
            };
            let n = b64_uint(origin, &name, "n", &member(&raw.n, "n")?)?;
            let e = b64_uint(origin, &name, "e", &member(&raw.e, "e")?)?;
            let d = b64_uint(origin, &name, "d", &member(&raw.d, "d")?)?;
            let mut primes = Vec::new();
            if let (Some(p), Some(q)) = (&raw.p, &raw.q) {
                primes.push(b64_uint(origin, &name, "p", p)?);
                primes.push(b64_uint(origin, &name, "q", q)?);
            }
            let bits = n.bit_width_vartime() as usize;
            if bits < MIN_KEY_BITS {
                return Err(err(format!(
                    "key {name:?}: {bits}-bit modulus; at least {MIN_KEY_BITS} bits are required"
                )));
            }
            let key = PrivateKey::from_components(n, e, d, primes)
                .map_err(|e| err(format!("key {name:?}: not a valid RSA private key: {e}")))?;
            let kid = raw
                .kid
                .unwrap_or_else(|| thumbprint(&key.n_bytes(), &key.e_bytes()));
            keys.push(KeyPair { kid, key });
        }
        Ok(PrivateKeySet { keys })
    }

    /// The key ids, in file order.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// The private JWKS, with CRT parameters, as other JOSE libraries expect.
    pub fn to_private_jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| {
                let mut jwk = public_jwk(k);
                let obj = jwk.as_object_mut().expect("a JWK is an object");
                obj.insert("d".into(), uint_b64(k.key.d()).into());
                if let (Some(p), Some(q)) = (k.key.primes().first(), k.key.primes().get(1)) {
                    obj.insert("p".into(), uint_b64(p.as_ref()).into());
                    obj.insert("q".into(), uint_b64(q.as_ref()).into());
                }
                if let (Some(dp), Some(dq), Some(qi)) = (k.key.dp(), k.key.dq(), k.key.qinv()) {
                    obj.insert("dp".into(), uint_b64(dp).into());
                    obj.insert("dq".into(), uint_b64(dq).into());
                    obj.insert("qi".into(), uint_b64(&qi.retrieve()).into());
                }
                jwk
            })
            .collect();
        json!({ "keys": keys })
    }

    /// The public JWKS: what clients encrypt tokens for this server with.
    pub fn public_jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(public_jwk).collect::<Vec<_>>() })
    }

    /// Decrypts a compact JWE and returns its plaintext.
    pub fn decrypt(&self, token: &str) -> Result<Zeroizing<Vec<u8>>, JweError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JweError::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, key_b64, iv_b64, ct_b64, tag_b64] = parts[..] else {
            return Err(JweError::Malformed(format!(
                "expected 5 base64url parts separated by dots, found {}",
                parts.len()
            )));
        };
        let decode = |part: &str, what: &str| {
            B64.decode(part)
                .map_err(|_| JweError::Malformed(format!("the {what} is not base64url")))
        };
        let header_bytes = decode(header_b64, "protected header")?;
        let header: Header = serde_json::from_slice(&header_bytes)
            .map_err(|_| JweError::Malformed("the protected header is not a JSON object".into()))?;
        let alg = header.alg.as_deref().unwrap_or("");
        if alg != RSA_OAEP_256 && alg != RSA_OAEP {
            return Err(JweError::Unsupported(format!(
                "alg {alg:?}: expected {RSA_OAEP_256} or {RSA_OAEP}"
            )));
        }
        let enc = header.enc.as_deref().unwrap_or("");
        if enc != A256GCM {
            return Err(JweError::Unsupported(format!(
                "enc {enc:?}: expected {A256GCM}"
            )));
        }
        if header.zip.is_some() {
            return Err(JweError::Unsupported(
                "compressed payloads (zip) are not accepted".into(),
            ));
        }
        if header.crit.is_some() {
            return Err(JweError::Unsupported(
                "critical header extensions (crit) are not understood".into(),
            ));
        }
        let encrypted_key = decode(key_b64, "encrypted key")?;
        let iv = decode(iv_b64, "initialization vector")?;
        let ciphertext = decode(ct_b64, "ciphertext")?;
        let tag = decode(tag_b64, "authentication tag")?;
        let iv: Array<u8, _> = Array::try_from(iv.as_slice()).map_err(|_| {
            JweError::Malformed(format!("the initialization vector is not {IV_BYTES} bytes"))
        })?;
        if tag.len() != TAG_BYTES {
            return Err(JweError::Malformed(format!(
                "the authentication tag is not {TAG_BYTES} bytes"
            )));
        }
        let candidates: Vec<&KeyPair> = match &header.kid {
            Some(kid) => {
                let found: Vec<&KeyPair> = self.keys.iter().filter(|k| &k.kid == kid).collect();
                if found.is_empty() {
                    return Err(JweError::UnknownKey(kid.clone()));
                }
                found
            }
            None => self.keys.iter().collect(),
        };
        let mut sealed = ciphertext;
        sealed.extend_from_slice(&tag);
        for pair in candidates {
            let unwrapped = if alg == RSA_OAEP_256 {
                pair.key.oaep_decrypt::<sha2_11::Sha256>(&encrypted_key)
            } else {
                pair.key.oaep_decrypt::<sha1::Sha1>(&encrypted_key)
            };
            // RFC 7516 section 11.5: a bad key unwrap continues with a random key, so the
            // failure looks exactly like a failed authentication tag.
            let cek = match unwrapped {
                Ok(cek) if cek.len() == CEK_BYTES => Zeroizing::new(cek),
                _ => random_bytes::<CEK_BYTES>()?,
            };
            let Ok(cipher) = Aes256Gcm::new_from_slice(&cek) else {
                continue;
            };
            let payload = Payload {
                msg: &sealed,
                aad: header_b64.as_bytes(),
            };
            if let Ok(plain) = cipher.decrypt(&iv, payload) {
                return Ok(Zeroizing::new(plain));
            }
        }
        Err(JweError::Decrypt)
    }

    /// Decrypts a compact JWE whose payload is a JSON object (a JWT claims set).
    pub fn decrypt_claims(&self, token: &str) -> Result<Map<String, Value>, JweError> {
        let plain = self.decrypt(token)?;
        match serde_json::from_slice(&plain) {
            Ok(Value::Object(claims)) => Ok(claims),
            _ => Err(JweError::Payload),
        }
    }
}

fn public_jwk(k: &KeyPair) -> Value {
    json!({
        "kty": "RSA",
        "kid": k.kid,
        "use": "enc",
        "alg": RSA_OAEP_256,
        "n": B64.encode(k.key.n_bytes()),
        "e": B64.encode(k.key.e_bytes()),
    })
}

fn random_bytes<const N: usize>() -> Result<Zeroizing<Vec<u8>>, JweError> {
    let mut bytes = Zeroizing::new(vec![0u8; N]);
    getrandom::fill(&mut bytes).map_err(|e| JweError::Encrypt(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// Encrypts `plaintext` as a compact JWE for the first RSA encryption key of the public JWKS
/// `jwks` (or a single JWK), with key management `alg` ([`RSA_OAEP_256`] or [`RSA_OAEP`]) and
/// A256GCM. What a token issuer does; also used by tests.
pub fn encrypt(jwks: &Value, alg: &str, plaintext: &[u8]) -> Result<String, JweError> {
    let candidates: Vec<&Value> = match jwks.get("keys") {
        Some(Value::Array(keys)) => keys.iter().collect(),
        _ => vec![jwks],
    };
    let jwk = candidates
        .into_iter()
        .find(|k| {
            k.get("kty").and_then(Value::as_str) == Some("RSA")
                && k.get("use").and_then(Value::as_str).unwrap_or("enc") == "enc"
        })
        .ok_or_else(|| JweError::Encrypt("the JWKS has no RSA encryption key".into()))?;
    let field = |name: &str| -> Result<BoxedUint, JweError> {
        let text = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| JweError::Encrypt(format!("the JWK has no {name:?}")))?;
        b64_uint("JWKS", "", name, text).map_err(|e| JweError::Encrypt(e.to_string()))
    };
    let public = PublicKey::new(field("n")?, field("e")?)
        .map_err(|e| JweError::Encrypt(format!("not a usable RSA public key: {e}")))?;
    let kid = jwk
        .get("kid")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| thumbprint(&public.n_bytes(), &public.e_bytes()));
    let header = json!({"alg": alg, "enc": A256GCM, "kid": kid, "typ": "JWT"});
    let header_b64 = B64.encode(header.to_string());
    let cek = random_bytes::<CEK_BYTES>()?;
    let encrypted_key = match alg {
        RSA_OAEP_256 => public.oaep_encrypt::<sha2_11::Sha256>(&cek),
        RSA_OAEP => public.oaep_encrypt::<sha1::Sha1>(&cek),
        other => {
            return Err(JweError::Unsupported(format!(
                "alg {other:?}: expected {RSA_OAEP_256} or {RSA_OAEP}"
            )));
        }
    }
    .map_err(|e| JweError::Encrypt(e.to_string()))?;
    let iv = random_bytes::<IV_BYTES>()?;
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|e| JweError::Encrypt(e.to_string()))?;
    let nonce: Array<u8, _> =
        Array::try_from(iv.as_slice()).map_err(|_| JweError::Encrypt("bad nonce length".into()))?;
    let mut sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: header_b64.as_bytes(),
            },
        )
        .map_err(|e| JweError::Encrypt(e.to_string()))?;
    let tag = sealed.split_off(sealed.len() - TAG_BYTES);
    Ok(format!(
        "{header_b64}.{}.{}.{}.{}",
        B64.encode(encrypted_key),
        B64.encode(iv.as_slice()),
        B64.encode(&sealed),
        B64.encode(&tag)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// One 2048-bit key for the module's tests: generation takes a while.
    fn keys() -> &'static PrivateKeySet {
        static KEYS: OnceLock<PrivateKeySet> = OnceLock::new();
        KEYS.get_or_init(|| PrivateKeySet::generate(2048).unwrap())
    }

    #[test]
    fn round_trip_with_both_algorithms_and_through_the_private_jwks() {
        let keys = keys();
        let reloaded =
            PrivateKeySet::from_json(&keys.to_private_jwks().to_string(), "mem").unwrap();
        assert_eq!(reloaded.kids(), keys.kids());
        for alg in [RSA_OAEP_256, RSA_OAEP] {
            let token = encrypt(&keys.public_jwks(), alg, br#"{"sub":"ann"}"#).unwrap();
            assert_eq!(reloaded.decrypt_claims(&token).unwrap()["sub"], "ann");
        }
    }

    #[test]
    fn tampering_anywhere_fails_with_one_error() {
        let keys = keys();
        let token = encrypt(&keys.public_jwks(), RSA_OAEP_256, br#"{"sub":"ann"}"#).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        for i in 1..5 {
            let mut bytes = B64.decode(parts[i]).unwrap();
            bytes[0] ^= 1;
            let mut changed: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            changed[i] = B64.encode(&bytes);
            let err = keys.decrypt(&changed.join(".")).unwrap_err();
            assert!(matches!(err, JweError::Decrypt), "part {i}: {err}");
        }
    }

    #[test]
    fn refuses_other_algorithms_compression_crit_and_garbage() {
        let keys = keys();
        let token = encrypt(&keys.public_jwks(), RSA_OAEP_256, b"{}").unwrap();
        let rest = token.split_once('.').unwrap().1;
        for (header, expected) in [
            (json!({"alg": "RSA1_5", "enc": A256GCM}), "alg \"RSA1_5\""),
            (json!({"alg": "dir", "enc": A256GCM}), "alg \"dir\""),
            (json!({"alg": RSA_OAEP_256, "enc": "A128CBC-HS256"}), "enc"),
            (
                json!({"alg": RSA_OAEP_256, "enc": A256GCM, "zip": "DEF"}),
                "zip",
            ),
            (
                json!({"alg": RSA_OAEP_256, "enc": A256GCM, "crit": ["exp"]}),
                "crit",
            ),
            (
                json!({"alg": RSA_OAEP_256, "enc": A256GCM, "kid": "other"}),
                "no key with kid",
            ),
        ] {
            let forged = format!("{}.{rest}", B64.encode(header.to_string()));
            let err = keys.decrypt(&forged).unwrap_err().to_string();
            assert!(err.contains(expected), "{header}: {err}");
        }
        for garbage in [
            "",
            "a.b",
            "a.b.c.d.e",
            "....",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(keys.decrypt(garbage).is_err());
        }
    }

    #[test]
    fn bad_key_files_name_the_problem() {
        let public = keys().public_jwks().to_string();
        for (text, expected) in [
            ("nope", "not JSON"),
            ("{}", "expected a JWKS"),
            (r#"{"keys": []}"#, "no keys"),
            (r#"{"keys": [{"kty": "EC"}]}"#, "only RSA"),
            (public.as_str(), "member \"d\" is missing"),
        ] {
            let err = PrivateKeySet::from_json(text, "k.json")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("k.json: "), "{err}");
            assert!(err.contains(expected), "{text}: {err}");
        }
        assert!(PrivateKeySet::generate(1024).is_err());
    }
}
