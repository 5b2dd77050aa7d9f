//! Who is calling: one identity mode per deployment (`config.auth`), turning a request's
//! credentials into a [`Subject`] (and, for macaroons, a verified token).
//!
//! Over HTTP the credentials are headers; a missing or bad one is answered with 401 and
//! `WWW-Authenticate: Bearer` by [`crate::mcp::http`]; a valid JWE token without a required
//! claim is answered with 403 naming the missing claims. Over stdio there are no headers: the
//! credential is read from the environment once at startup (`PORTCULLIS_API_KEY`,
//! `PORTCULLIS_JWT`, `PORTCULLIS_JWE`, `PORTCULLIS_TOKEN`) and checked on every request, so an expiring JWT or
//! token stops working when it expires; a failure is a JSON-RPC error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use http::HeaderMap;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::engine::Engine;
use crate::jwe::PrivateKeySet;
use crate::policy::{AuthConfig, AuthMode, JweConfig, JwtAlgorithm, JwtConfig};
use crate::request::{Subject, now_unix_ms};
use crate::token::{Keyring, VerifiedToken, VerifyOptions};

/// Environment variable a stdio client's API key is read from.
pub const API_KEY_ENV: &str = "PORTCULLIS_API_KEY";
/// Environment variable a stdio client's JWT is read from.
pub const JWT_ENV: &str = "PORTCULLIS_JWT";
/// Environment variable a stdio client's JWE token is read from.
pub const JWE_ENV: &str = "PORTCULLIS_JWE";
/// Seconds of clock skew allowed when checking `exp` and `nbf` (modes `jwt` and `jwe`).
const LEEWAY_SECS: i64 = 30;
/// Environment variable a stdio client's macaroon token is read from.
pub const TOKEN_ENV: &str = "PORTCULLIS_TOKEN";
/// User of mode `fixed` when `auth.user` is not set.
pub const DEFAULT_FIXED_USER: &str = "local";
/// Largest credential header accepted, in bytes.
const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// How requests reach the server; decides the default mode and where credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    Http,
}

/// The established caller.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: Subject,
    /// Mode `macaroon`: the caller's verified token, applied on top of the server policy.
    pub token: Option<Arc<VerifiedToken>>,
}

/// Why the identity layer could not be set up (bad configuration, unreadable key file, missing
/// environment variable). Reported at startup; the server does not start.
#[derive(Debug, Error)]
pub enum AuthSetupError {
    #[error("auth mode {mode} cannot be used over {transport}: {why}")]
    WrongTransport {
        mode: &'static str,
        transport: &'static str,
        why: &'static str,
    },
    #[error("auth: cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("auth: {path}: {message}")]
    KeysFile { path: String, message: String },
    #[error("auth: environment variable {name} {message}")]
    Env { name: String, message: String },
    #[error("auth: {0}")]
    Jwt(String),
    #[error("auth mode macaroon: {0}")]
    Macaroon(String),
    #[error("auth mode jwe: {0}")]
    Jwe(#[from] crate::jwe::JweError),
}

/// Why a request's credentials were refused. The message is safe to show the caller: it never
/// contains the credential.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AuthError {
    /// No credential, or one that is not valid: HTTP 401.
    #[error("{0}")]
    Invalid(String),
    /// A valid token that lacks claims this server requires (mode `jwe`): HTTP 403.
    #[error("the token lacks required claims: {}", .missing.join(", "))]
    MissingClaims { missing: Vec<String> },
}

impl AuthError {
    /// The claims a [`AuthError::MissingClaims`] names; empty otherwise.
    pub fn missing_claims(&self) -> &[String] {
        match self {
            AuthError::MissingClaims { missing } => missing,
            AuthError::Invalid(_) => &[],
        }
    }
}

/// One entry of an API key file: `KEY: {user: ..., roles: [...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    user: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    agent: Option<String>,
}

struct ApiKey {
    key: Vec<u8>,
    subject: Subject,
}

struct Jwt {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    config: JwtConfig,
}

struct Jwe {
    keys: PrivateKeySet,
    config: JweConfig,
    /// When set, the plaintext must be a JWT signed as this checks (a nested JWT).
    signed: Option<Jwt>,
}

enum Mode {
    Fixed(Subject),
    Headers,
    ApiKeys(Vec<ApiKey>),
    Jwt(Box<Jwt>),
    Jwe(Box<Jwe>),
    Macaroon {
        keys: Box<Keyring>,
        engine: Arc<Engine>,
    },
}

/// Turns credentials into identities for one deployment.
pub struct Authenticator {
    mode: Mode,
    /// Stdio: the credential read from the environment at startup.
    stdio_credential: Option<String>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode_name())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Builds the authenticator `config` describes for `transport`, reading key files and
    /// environment variables now. `env` reads an environment variable (tests pass a map).
    pub fn from_config(
        config: &AuthConfig,
        transport: Transport,
        engine: &Arc<Engine>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthSetupError> {
        let mode = config.mode.unwrap_or(match transport {
            Transport::Stdio => AuthMode::Fixed,
            Transport::Http => AuthMode::Macaroon,
        });
        let transport_name = match transport {
            Transport::Stdio => "stdio",
            Transport::Http => "HTTP",
        };
        let built = match mode {
            AuthMode::Fixed => {
                let mut subject = Subject::user(
                    config
                        .user
                        .clone()
                        .unwrap_or_else(|| DEFAULT_FIXED_USER.into()),
                );
                subject.roles = config.roles.clone();
                Mode::Fixed(subject)
            }
            AuthMode::Headers => {
                if transport == Transport::Stdio {
                    return Err(AuthSetupError::WrongTransport {
                        mode: "headers",
                        transport: transport_name,
                        why: "stdio has no headers; use fixed, api_keys, jwt or macaroon",
                    });
                }
                Mode::Headers
            }
            AuthMode::ApiKeys => Mode::ApiKeys(load_api_keys(config, env)?),
            AuthMode::Jwt => Mode::Jwt(Box::new(load_jwt(config, env)?)),
            AuthMode::Jwe => {
                let jwe = config
                    .jwe
                    .clone()
                    .ok_or_else(|| AuthSetupError::Jwt("mode jwe has no jwe settings".into()))?;
                let signed = match config.jwt {
                    Some(_) => Some(load_jwt(config, env)?),
                    None => {
                        tracing::warn!(
                            "auth mode jwe without algorithm/issuer/audience: tokens are only encrypted, with a public key, so anyone can make one for any user; configure the signed JWT inside (a nested JWT) unless every client is trusted"
                        );
                        None
                    }
                };
                Mode::Jwe(Box::new(Jwe {
                    keys: PrivateKeySet::load(&jwe.key_file)?,
                    config: jwe,
                    signed,
                }))
            }
            AuthMode::Macaroon => {
                let keys = Keyring::from_config(engine.snapshot().config(), |var| env(var).map(Ok))
                    .map_err(|e| AuthSetupError::Macaroon(e.to_string()))?;
                Mode::Macaroon {
                    keys: Box::new(keys),
                    engine: engine.clone(),
                }
            }
        };
        let stdio_credential = match (transport, mode) {
            (Transport::Stdio, AuthMode::ApiKeys) => Some(API_KEY_ENV),
            (Transport::Stdio, AuthMode::Jwt) => Some(JWT_ENV),
            (Transport::Stdio, AuthMode::Jwe) => Some(JWE_ENV),
            (Transport::Stdio, AuthMode::Macaroon) => Some(TOKEN_ENV),
            _ => None,
        }
        .and_then(env);
        Ok(Authenticator {
            mode: built,
            stdio_credential,
        })
    }

    /// A fixed identity, for embedding servers and tests that do their own authentication.
    pub fn fixed(subject: Subject) -> Self {
        Authenticator {
            mode: Mode::Fixed(subject),
            stdio_credential: None,
        }
    }

    /// The keyring tokens are verified with (mode `macaroon`), so approvals can be sealed
    /// into the same tokens.
    pub fn keyring(&self) -> Option<&Keyring> {
        match &self.mode {
            Mode::Macaroon { keys, .. } => Some(keys),
            _ => None,
        }
    }

    /// The mode's name, for logs.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Fixed(_) => "fixed",
            Mode::Headers => "headers",
            Mode::ApiKeys(_) => "api_keys",
            Mode::Jwt(_) => "jwt",
            Mode::Jwe(_) => "jwe",
            Mode::Macaroon { .. } => "macaroon",
        }
    }

    /// Mode `jwe`: the public JWKS clients encrypt tokens with (served at
    /// `/.well-known/jwks.json`).
    pub fn public_jwks(&self) -> Option<serde_json::Value> {
        match &self.mode {
            Mode::Jwe(jwe) => Some(jwe.keys.public_jwks()),
            _ => None,
        }
    }

    /// Mode `jwe`: the claims every token must carry (`auth.required_claims` and the user
    /// claim), as served at `/.well-known/portcullis-auth`.
    pub fn required_claims(&self) -> Option<Vec<String>> {
        match &self.mode {
            Mode::Jwe(jwe) => {
                let mut claims = vec![jwe.config.user_claim.clone()];
                claims.extend(
                    jwe.config
                        .required_claims
                        .iter()
                        .filter(|c| **c != jwe.config.user_claim)
                        .cloned(),
                );
                Some(claims)
            }
            _ => None,
        }
    }

    /// Identifies an HTTP request by its headers.
    pub fn authenticate_headers(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        match &self.mode {
            Mode::Fixed(subject) => Ok(plain(subject.clone())),
            Mode::Headers => from_trusted_headers(headers),
            Mode::ApiKeys(keys) => {
                let key = header(headers, "x-api-key")?
                    .or(bearer(headers)?)
                    .ok_or_else(|| {
                        AuthError::Invalid(
                            "missing API key: send it as X-API-Key or Authorization: Bearer".into(),
                        )
                    })?;
                check_api_key(keys, &key)
            }
            Mode::Jwt(jwt) => {
                let token = bearer(headers)?.ok_or_else(|| {
                    AuthError::Invalid(
                        "missing bearer token: send Authorization: Bearer <JWT>".into(),
                    )
                })?;
                check_jwt(jwt, &token)
            }
            Mode::Jwe(jwe) => {
                let token = bearer(headers)?.ok_or_else(|| {
                    AuthError::Invalid(
                        "missing bearer token: send Authorization: Bearer <JWE>".into(),
                    )
                })?;
                check_jwe(jwe, &token)
            }
            Mode::Macaroon { keys, engine } => {
                let token = bearer(headers)?.ok_or_else(|| {
                    AuthError::Invalid(
                        "missing bearer token: send Authorization: Bearer <token>".into(),
                    )
                })?;
                check_macaroon(keys, engine, &token)
            }
        }
    }

    /// Identifies a stdio caller by the credential read from the environment at startup.
    pub fn authenticate_stdio(&self) -> Result<Identity, AuthError> {
        let missing = |name: &str| {
            AuthError::Invalid(format!(
                "no credential: set the environment variable {name} for the server process"
            ))
        };
        match &self.mode {
            Mode::Fixed(subject) => Ok(plain(subject.clone())),
            Mode::Headers => Err(AuthError::Invalid(
                "auth mode headers needs HTTP; stdio has no headers".into(),
            )),
            Mode::ApiKeys(keys) => {
                let key = self
                    .stdio_credential
                    .as_deref()
                    .ok_or_else(|| missing(API_KEY_ENV))?;
                check_api_key(keys, key)
            }
            Mode::Jwt(jwt) => {
                let token = self
                    .stdio_credential
                    .as_deref()
                    .ok_or_else(|| missing(JWT_ENV))?;
                check_jwt(jwt, token)
            }
            Mode::Jwe(jwe) => {
                let token = self
                    .stdio_credential
                    .as_deref()
                    .ok_or_else(|| missing(JWE_ENV))?;
                check_jwe(jwe, token)
            }
            Mode::Macaroon { keys, engine } => {
                let token = self
                    .stdio_credential
                    .as_deref()
                    .ok_or_else(|| missing(TOKEN_ENV))?;
                check_macaroon(keys, engine, token)
            }
        }
    }
}

fn plain(subject: Subject) -> Identity {
    Identity {
        subject,
        token: None,
    }
}

/// A header's value as text; present but not visible ASCII is an error, not "absent".
fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, AuthError> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    if v.len() > MAX_CREDENTIAL_BYTES {
        return Err(AuthError::Invalid(format!(
            "header {name} is longer than {MAX_CREDENTIAL_BYTES} bytes"
        )));
    }
    v.to_str()
        .map(|s| Some(s.trim().to_string()))
        .map_err(|_| AuthError::Invalid(format!("header {name} is not visible ASCII")))
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let Some(value) = header(headers, "authorization")? else {
        return Ok(None);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((&value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
        return Err(AuthError::Invalid(
            "the Authorization header is not of the form `Bearer <token>`".into(),
        ));
    }
    Ok(Some(rest.trim().to_string()))
}

fn from_trusted_headers(headers: &HeaderMap) -> Result<Identity, AuthError> {
    let user = header(headers, "x-user-id")?
        .filter(|u| !u.is_empty())
        .ok_or_else(|| AuthError::Invalid("missing x-user-id header".into()))?;
    let roles = header(headers, "x-user-roles")?
        .map(|r| split_roles(&r))
        .unwrap_or_default();
    let agent = header(headers, "x-agent-id")?.filter(|a| !a.is_empty());
    Ok(plain(Subject {
        user,
        roles,
        agent,
        attributes: BTreeMap::new(),
    }))
}

fn split_roles(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(String::from)
        .collect()
}

/// Compares against every key in constant time (no early exit), so timing tells nothing about
/// which key, or how much of one, matched.
fn check_api_key(keys: &[ApiKey], presented: &str) -> Result<Identity, AuthError> {
    let presented = presented.as_bytes();
    let mut found: Option<&Subject> = None;
    for k in keys {
        let equal: bool = k.key.ct_eq(presented).into();
        if equal && found.is_none() {
            found = Some(&k.subject);
        }
    }
    found
        .map(|s| plain(s.clone()))
        .ok_or_else(|| AuthError::Invalid("invalid API key".into()))
}

fn check_jwt(jwt: &Jwt, token: &str) -> Result<Identity, AuthError> {
    let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
        token,
        &jwt.key,
        &jwt.validation,
    )
    .map_err(|e| AuthError::Invalid(format!("invalid JWT: {e}")))?;
    subject_from_claims(
        &data.claims,
        &jwt.config.user_claim,
        &jwt.config.roles_claim,
        "JWT",
    )
}

/// The subject a token's claims describe, the same way for modes `jwt` and `jwe`: the user
/// from `user_claim`, roles from `roles_claim` (an array of strings or a space/comma separated
/// string), and every string claim as an attribute.
fn subject_from_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    user_claim: &str,
    roles_claim: &str,
    kind: &str,
) -> Result<Identity, AuthError> {
    let user = claims
        .get(user_claim)
        .and_then(|v| v.as_str())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            AuthError::Invalid(format!(
                "invalid {kind}: claim {user_claim:?} (the user id) is missing or not a string"
            ))
        })?;
    let roles = match claims.get(roles_claim) {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => split_roles(s),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|r| r.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "invalid {kind}: claim {roles_claim:?} must hold strings"
                ))
            })?,
        Some(_) => {
            return Err(AuthError::Invalid(format!(
                "invalid {kind}: claim {roles_claim:?} must be a string or an array of strings"
            )));
        }
    };
    let attributes = claims
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect();
    Ok(plain(Subject {
        user: user.to_string(),
        roles,
        agent: None,
        attributes,
    }))
}

/// Decrypts a JWE bearer token (401 if it does not decrypt or is expired or not yet valid),
/// then checks the required claims (403 naming every missing one) and maps the claims to a
/// subject as mode `jwt` does.
fn check_jwe(jwe: &Jwe, token: &str) -> Result<Identity, AuthError> {
    let claims = match &jwe.signed {
        None => jwe
            .keys
            .decrypt_claims(token)
            .map_err(|e| AuthError::Invalid(format!("invalid JWE: {e}")))?,
        Some(jwt) => {
            let inner = jwe
                .keys
                .decrypt(token)
                .map_err(|e| AuthError::Invalid(format!("invalid JWE: {e}")))?;
            let inner = std::str::from_utf8(&inner).map_err(|_| {
                AuthError::Invalid("invalid JWE: the payload is not a signed JWT".into())
            })?;
            jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                inner.trim(),
                &jwt.key,
                &jwt.validation,
            )
            .map_err(|e| {
                AuthError::Invalid(format!("invalid JWE: the JWT inside does not verify: {e}"))
            })?
            .claims
        }
    };
    check_time_claims(&claims, now_unix_ms() / 1000, "JWE")?;
    let absent = |c: &String| matches!(claims.get(c), None | Some(serde_json::Value::Null));
    let mut missing: Vec<String> = Vec::new();
    if absent(&jwe.config.user_claim) {
        missing.push(jwe.config.user_claim.clone());
    }
    for claim in &jwe.config.required_claims {
        if absent(claim) && !missing.contains(claim) {
            missing.push(claim.clone());
        }
    }
    if !missing.is_empty() {
        return Err(AuthError::MissingClaims { missing });
    }
    subject_from_claims(
        &claims,
        &jwe.config.user_claim,
        &jwe.config.roles_claim,
        "JWE",
    )
}

/// `exp` and `nbf`, when present, must be numbers (seconds since the epoch) and hold now,
/// give or take [`LEEWAY_SECS`].
fn check_time_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    now_secs: u64,
    kind: &str,
) -> Result<(), AuthError> {
    let now = i64::try_from(now_secs).unwrap_or(i64::MAX);
    let number = |name: &str| -> Result<Option<i64>, AuthError> {
        match claims.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| {
                    AuthError::Invalid(format!(
                        "invalid {kind}: claim {name:?} is not a number of seconds"
                    ))
                }),
        }
    };
    if let Some(exp) = number("exp")?
        && now > exp.saturating_add(LEEWAY_SECS)
    {
        return Err(AuthError::Invalid(format!(
            "invalid {kind}: expired {} seconds ago (exp {exp})",
            now - exp
        )));
    }
    if let Some(nbf) = number("nbf")?
        && now.saturating_add(LEEWAY_SECS) < nbf
    {
        return Err(AuthError::Invalid(format!(
            "invalid {kind}: not valid for another {} seconds (nbf {nbf})",
            nbf - now
        )));
    }
    Ok(())
}

fn check_macaroon(keys: &Keyring, engine: &Engine, token: &str) -> Result<Identity, AuthError> {
    let opts = VerifyOptions {
        now_unix_ms: now_unix_ms(),
        user: None,
    };
    let verified = engine
        .verify_token_shared(keys, token, &[], &opts)
        .map_err(|e| AuthError::Invalid(format!("invalid token: {e}")))?;
    Ok(Identity {
        subject: verified.subject.clone(),
        token: Some(verified),
    })
}

fn load_api_keys(
    config: &AuthConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ApiKey>, AuthSetupError> {
    let mut entries: Vec<(String, KeyEntry)> = Vec::new();
    if let Some(path) = &config.keys_file {
        let text = std::fs::read_to_string(path).map_err(|source| AuthSetupError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let map: BTreeMap<String, KeyEntry> =
            serde_saphyr::from_str(&text).map_err(|e| AuthSetupError::KeysFile {
                path: path.display().to_string(),
                message: format!("expected a mapping KEY: {{user: ID, roles: [..]}}: {e}"),
            })?;
        entries.extend(map);
    }
    if let Some(name) = &config.keys_env {
        let text = env(name).ok_or_else(|| AuthSetupError::Env {
            name: name.clone(),
            message: "is not set".into(),
        })?;
        let map: BTreeMap<String, KeyEntry> =
            serde_json::from_str(&text).map_err(|e| AuthSetupError::Env {
                name: name.clone(),
                message: format!(
                    "does not hold a JSON object {{\"KEY\": {{\"user\": ID, \"roles\": [..]}}}}: {e}"
                ),
            })?;
        entries.extend(map);
    }
    let origin = || {
        config
            .keys_file
            .as_deref()
            .map(|p| p.display().to_string())
            .or_else(|| config.keys_env.clone())
            .unwrap_or_default()
    };
    if entries.is_empty() {
        return Err(AuthSetupError::KeysFile {
            path: origin(),
            message: "no API keys: every caller would be refused".into(),
        });
    }
    let mut keys = Vec::with_capacity(entries.len());
    for (key, entry) in entries {
        if key.len() < 16 {
            return Err(AuthSetupError::KeysFile {
                path: origin(),
                message: format!(
                    "the key of user {:?} is {} characters; keys need at least 16",
                    entry.user,
                    key.len()
                ),
            });
        }
        if entry.user.trim().is_empty() {
            return Err(AuthSetupError::KeysFile {
                path: origin(),
                message: "a key has an empty user".into(),
            });
        }
        keys.push(ApiKey {
            key: key.into_bytes(),
            subject: Subject {
                user: entry.user,
                roles: entry.roles,
                agent: entry.agent,
                attributes: BTreeMap::new(),
            },
        });
    }
    Ok(keys)
}

fn load_jwt(
    config: &AuthConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Jwt, AuthSetupError> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let jwt = config
        .jwt
        .clone()
        .ok_or_else(|| AuthSetupError::Jwt("mode jwt has no jwt settings".into()))?;
    let (key, alg) = match jwt.algorithm {
        JwtAlgorithm::Hs256 => {
            let name = jwt.secret_env.clone().unwrap_or_default();
            let secret = env(&name).ok_or_else(|| AuthSetupError::Env {
                name: name.clone(),
                message: "is not set (auth mode jwt, HS256 secret)".into(),
            })?;
            if secret.len() < 32 {
                return Err(AuthSetupError::Env {
                    name,
                    message: "holds fewer than 32 bytes; an HS256 secret needs at least 32".into(),
                });
            }
            (
                DecodingKey::from_secret(secret.as_bytes()),
                Algorithm::HS256,
            )
        }
        JwtAlgorithm::Rs256 => {
            let path = jwt.public_key_file.clone().unwrap_or_default();
            let pem = read(&path)?;
            let key = DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                AuthSetupError::Jwt(format!(
                    "{} is not a PEM RSA public key: {e}",
                    path.display()
                ))
            })?;
            (key, Algorithm::RS256)
        }
    };
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[&jwt.issuer]);
    validation.set_audience(&[&jwt.audience]);
    validation.validate_exp = true;
    validation.leeway = LEEWAY_SECS as u64;
    validation.required_spec_claims = ["exp", "iss", "aud"]
        .into_iter()
        .map(String::from)
        .collect();
    Ok(Jwt {
        key,
        validation,
        config: jwt,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, AuthSetupError> {
    std::fs::read(path).map_err(|source| AuthSetupError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn engine() -> Arc<Engine> {
        Arc::new(Engine::from_str("policies: []", "p.yaml").unwrap())
    }

    fn api_keys() -> Authenticator {
        let config = AuthConfig {
            mode: Some(AuthMode::ApiKeys),
            keys_env: Some("KEYS".into()),
            ..AuthConfig::default()
        };
        let env = |n: &str| {
            (n == "KEYS").then(|| {
                r#"{"0123456789abcdef-ann": {"user": "ann", "roles": ["admin"]}}"#.to_string()
            })
        };
        Authenticator::from_config(&config, Transport::Http, &engine(), &env).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn api_keys_accept_the_right_key_in_either_header() {
        let auth = api_keys();
        let id = auth
            .authenticate_headers(&headers(&[("x-api-key", "0123456789abcdef-ann")]))
            .unwrap();
        assert_eq!(id.subject.user, "ann");
        assert_eq!(id.subject.roles, ["admin"]);
        let id = auth
            .authenticate_headers(&headers(&[(
                "authorization",
                "Bearer 0123456789abcdef-ann",
            )]))
            .unwrap();
        assert_eq!(id.subject.user, "ann");
    }

    #[test]
    fn api_keys_refuse_wrong_missing_and_prefix_keys() {
        let auth = api_keys();
        for h in [
            headers(&[("x-api-key", "0123456789abcdef-bob")]),
            headers(&[("x-api-key", "0123456789abcdef")]),
            headers(&[]),
            headers(&[("authorization", "Basic abc")]),
        ] {
            assert!(auth.authenticate_headers(&h).is_err());
        }
    }

    #[test]
    fn trusted_headers_give_user_roles_and_agent() {
        let config = AuthConfig {
            mode: Some(AuthMode::Headers),
            ..AuthConfig::default()
        };
        let auth =
            Authenticator::from_config(&config, Transport::Http, &engine(), &|_| None).unwrap();
        let id = auth
            .authenticate_headers(&headers(&[
                ("x-user-id", "ann"),
                ("x-user-roles", "analyst, admin"),
                ("x-agent-id", "claude"),
            ]))
            .unwrap();
        assert_eq!(id.subject.roles, ["analyst", "admin"]);
        assert_eq!(id.subject.agent.as_deref(), Some("claude"));
        assert!(auth.authenticate_headers(&headers(&[])).is_err());
        assert!(
            Authenticator::from_config(&config, Transport::Stdio, &engine(), &|_| None).is_err()
        );
    }

    #[test]
    fn jwt_checks_signature_issuer_audience_and_expiry() {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let secret = "s".repeat(40);
        let config = AuthConfig {
            mode: Some(AuthMode::Jwt),
            jwt: Some(JwtConfig {
                algorithm: JwtAlgorithm::Hs256,
                secret_env: Some("JWT_SECRET".into()),
                public_key_file: None,
                issuer: "https://issuer".into(),
                audience: "portcullis".into(),
                user_claim: "sub".into(),
                roles_claim: "roles".into(),
            }),
            ..AuthConfig::default()
        };
        let s = secret.clone();
        let env = move |n: &str| (n == "JWT_SECRET").then(|| s.clone());
        let auth = Authenticator::from_config(&config, Transport::Http, &engine(), &env).unwrap();
        let now = (now_unix_ms() / 1000) as i64;
        let token = |claims: serde_json::Value, key: &str| {
            let t = encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(key.as_bytes()),
            )
            .unwrap();
            headers(&[("authorization", &format!("Bearer {t}"))])
        };
        let good = serde_json::json!({"sub": "ann", "roles": ["analyst"], "iss": "https://issuer", "aud": "portcullis", "exp": now + 600});
        let id = auth
            .authenticate_headers(&token(good.clone(), &secret))
            .unwrap();
        assert_eq!(id.subject.user, "ann");
        assert_eq!(id.subject.roles, ["analyst"]);
        let mut expired = good.clone();
        expired["exp"] = (now - 3600).into();
        let mut wrong_aud = good.clone();
        wrong_aud["aud"] = "other".into();
        let mut wrong_iss = good.clone();
        wrong_iss["iss"] = "https://evil".into();
        for (claims, key) in [
            (expired, secret.as_str()),
            (wrong_aud, &secret),
            (wrong_iss, &secret),
            (good, &"x".repeat(40)),
        ] {
            assert!(auth.authenticate_headers(&token(claims, key)).is_err());
        }
    }

    /// A jwe authenticator over `transport` with a fresh 2048-bit key, required claims
    /// `name` and `email`; the token for stdio comes from `stdio_token`.
    fn jwe_auth(
        transport: Transport,
        stdio_token: Option<String>,
    ) -> (Authenticator, serde_json::Value, tempfile::TempDir) {
        let keys = crate::jwe::PrivateKeySet::generate(2048).unwrap();
        jwe_auth_with(&keys, transport, stdio_token)
    }

    fn jwe_auth_with(
        keys: &crate::jwe::PrivateKeySet,
        transport: Transport,
        stdio_token: Option<String>,
    ) -> (Authenticator, serde_json::Value, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.jwks.json");
        std::fs::write(&path, keys.to_private_jwks().to_string()).unwrap();
        let config = AuthConfig {
            mode: Some(AuthMode::Jwe),
            jwe: Some(JweConfig {
                key_file: path,
                required_claims: vec!["name".into(), "email".into()],
                user_claim: "sub".into(),
                roles_claim: "roles".into(),
            }),
            ..AuthConfig::default()
        };
        let env = move |n: &str| (n == JWE_ENV).then(|| stdio_token.clone()).flatten();
        let auth = Authenticator::from_config(&config, transport, &engine(), &env).unwrap();
        (auth, keys.public_jwks(), dir)
    }

    fn jwe_token(jwks: &serde_json::Value, claims: &serde_json::Value) -> String {
        crate::jwe::encrypt(
            jwks,
            crate::jwe::RSA_OAEP_256,
            claims.to_string().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn jwe_maps_claims_like_jwt_and_refuses_each_bad_token_its_own_way() {
        let (auth, public, _dir) = jwe_auth(Transport::Http, None);
        let now = (now_unix_ms() / 1000) as i64;
        let good = serde_json::json!({"sub": "ann", "name": "Ann", "email": "a@x", "roles": "analyst, admin", "exp": now + 600});
        let bearer = |t: &str| headers(&[("authorization", &format!("Bearer {t}"))]);
        let id = auth
            .authenticate_headers(&bearer(&jwe_token(&public, &good)))
            .unwrap();
        assert_eq!(id.subject.user, "ann");
        assert_eq!(id.subject.roles, ["analyst", "admin"]);
        assert_eq!(id.subject.attributes["email"], "a@x");

        let invalid = |h: HeaderMap| match auth.authenticate_headers(&h) {
            Err(AuthError::Invalid(m)) => m,
            other => panic!("expected 401, got {other:?}"),
        };
        assert!(invalid(headers(&[])).contains("missing bearer token"));
        let (_, other_public, _other_dir) = jwe_auth(Transport::Http, None);
        assert!(invalid(bearer(&jwe_token(&other_public, &good))).contains("no key with kid"));
        let token = jwe_token(&public, &good);
        let (head, tail) = token.rsplit_once('.').unwrap();
        let flipped = if tail.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{head}.{flipped}{}", &tail[1..]);
        assert!(invalid(bearer(&tampered)).contains("does not decrypt"));
        let mut expired = good.clone();
        expired["exp"] = (now - 120).into();
        assert!(invalid(bearer(&jwe_token(&public, &expired))).contains("expired"));
        let mut bad_exp = good.clone();
        bad_exp["exp"] = "tomorrow".into();
        assert!(invalid(bearer(&jwe_token(&public, &bad_exp))).contains("not a number"));
        let mut early = good.clone();
        early["nbf"] = (now + 120).into();
        assert!(invalid(bearer(&jwe_token(&public, &early))).contains("not valid for another"));
        let mut bad_roles = good.clone();
        bad_roles["roles"] = 7.into();
        assert!(invalid(bearer(&jwe_token(&public, &bad_roles))).contains("\"roles\""));

        let mut partial = good.clone();
        partial.as_object_mut().unwrap().remove("email");
        partial["name"] = serde_json::Value::Null;
        partial.as_object_mut().unwrap().remove("sub");
        match auth.authenticate_headers(&bearer(&jwe_token(&public, &partial))) {
            Err(AuthError::MissingClaims { missing }) => {
                assert_eq!(missing, ["sub", "name", "email"])
            }
            other => panic!("expected 403, got {other:?}"),
        }
        assert_eq!(
            auth.required_claims().unwrap(),
            ["sub", "name", "email"],
            "the discovery list"
        );
    }

    /// A nested JWT (signed, then encrypted): with signature settings, only a JWE carrying a
    /// JWT signed by the issuer is accepted; a plain-claims JWE, which anyone holding the
    /// public key can make, is refused, and so is a JWT signed with another key.
    #[test]
    fn jwe_with_signature_settings_accepts_only_a_signed_jwt_inside() {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let secret = "s".repeat(40);
        let keys = crate::jwe::PrivateKeySet::generate(2048).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.jwks.json");
        std::fs::write(&path, keys.to_private_jwks().to_string()).unwrap();
        let config = AuthConfig {
            mode: Some(AuthMode::Jwe),
            jwe: Some(JweConfig {
                key_file: path,
                required_claims: vec!["email".into()],
                user_claim: "sub".into(),
                roles_claim: "roles".into(),
            }),
            jwt: Some(JwtConfig {
                algorithm: JwtAlgorithm::Hs256,
                secret_env: Some("JWT_SECRET".into()),
                public_key_file: None,
                issuer: "https://issuer".into(),
                audience: "portcullis".into(),
                user_claim: "sub".into(),
                roles_claim: "roles".into(),
            }),
            ..AuthConfig::default()
        };
        let s = secret.clone();
        let env = move |n: &str| (n == "JWT_SECRET").then(|| s.clone());
        let auth = Authenticator::from_config(&config, Transport::Http, &engine(), &env).unwrap();
        let public = keys.public_jwks();
        let now = (now_unix_ms() / 1000) as i64;
        let claims = serde_json::json!({"sub": "ann", "email": "a@x", "roles": ["analyst"],
            "iss": "https://issuer", "aud": "portcullis", "exp": now + 600});
        let signed = |claims: &serde_json::Value, key: &str| {
            encode(
                &Header::default(),
                claims,
                &EncodingKey::from_secret(key.as_bytes()),
            )
            .unwrap()
        };
        let bearer = |plaintext: &str| {
            let t = crate::jwe::encrypt(&public, crate::jwe::RSA_OAEP_256, plaintext.as_bytes())
                .unwrap();
            headers(&[("authorization", &format!("Bearer {t}"))])
        };
        let id = auth
            .authenticate_headers(&bearer(&signed(&claims, &secret)))
            .unwrap();
        assert_eq!(id.subject.user, "ann");
        assert_eq!(id.subject.roles, ["analyst"]);
        let refused = |h: HeaderMap| match auth.authenticate_headers(&h) {
            Err(AuthError::Invalid(m)) => m,
            other => panic!("expected 401, got {other:?}"),
        };
        let forged = refused(bearer(&claims.to_string()));
        assert!(
            forged.contains("the JWT inside does not verify"),
            "{forged}"
        );
        let other_key = refused(bearer(&signed(&claims, &"x".repeat(40))));
        assert!(other_key.contains("InvalidSignature"), "{other_key}");
        let mut wrong_aud = claims.clone();
        wrong_aud["aud"] = "elsewhere".into();
        assert!(refused(bearer(&signed(&wrong_aud, &secret))).contains("does not verify"));
        let mut no_email = claims.clone();
        no_email.as_object_mut().unwrap().remove("email");
        assert_eq!(
            auth.authenticate_headers(&bearer(&signed(&no_email, &secret)))
                .unwrap_err(),
            AuthError::MissingClaims {
                missing: vec!["email".into()]
            }
        );
    }

    #[test]
    fn jwe_over_stdio_reads_portcullis_jwe() {
        let keys = crate::jwe::PrivateKeySet::generate(2048).unwrap();
        let (auth, public, _dir) = jwe_auth_with(&keys, Transport::Stdio, None);
        let err = auth.authenticate_stdio().unwrap_err();
        assert!(err.to_string().contains(JWE_ENV), "{err}");
        let good = serde_json::json!({"sub": "ann", "name": "Ann", "email": "a@x"});
        let (auth, _, _d) = jwe_auth_with(&keys, Transport::Stdio, Some(jwe_token(&public, &good)));
        assert_eq!(auth.authenticate_stdio().unwrap().subject.user, "ann");
        let (auth, _, _d) = jwe_auth_with(
            &keys,
            Transport::Stdio,
            Some(jwe_token(&public, &serde_json::json!({"sub": "ann"}))),
        );
        assert_eq!(
            auth.authenticate_stdio().unwrap_err(),
            AuthError::MissingClaims {
                missing: vec!["name".into(), "email".into()]
            }
        );
    }

    #[test]
    fn jwe_setup_errors_name_the_key_file() {
        let config = AuthConfig {
            mode: Some(AuthMode::Jwe),
            jwe: Some(JweConfig {
                key_file: "/nonexistent/private.jwks.json".into(),
                required_claims: vec![],
                user_claim: "sub".into(),
                roles_claim: "roles".into(),
            }),
            ..AuthConfig::default()
        };
        let err = Authenticator::from_config(&config, Transport::Http, &engine(), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth mode jwe") && err.contains("/nonexistent/private.jwks.json"),
            "{err}"
        );
    }
}
