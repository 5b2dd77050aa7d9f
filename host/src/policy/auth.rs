//! The `config.auth` section: how the MCP layer establishes who is calling. One mode per
//! deployment. Only the shape is checked here (unknown modes, options that do not belong to
//! the mode, missing settings); reading key files and environment variables is the MCP
//! layer's job, at startup, so a policy file never holds a secret.

use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The identity modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// One configured user for every caller (the stdio default).
    Fixed,
    /// Trusted `x-user-id`, `x-user-roles`, `x-agent-id` headers from an authenticating gateway.
    Headers,
    /// Static API keys (`x-api-key` or `Authorization: Bearer`), compared in constant time.
    ApiKeys,
    /// A JWT bearer token (HS256 or RS256) with issuer, audience and expiry checks.
    Jwt,
    /// A Portcullis macaroon bearer token (the HTTP default).
    Macaroon,
    /// A JWE bearer token (RSA-OAEP-256 or RSA-OAEP, A256GCM) decrypted with the server's
    /// private key; its claims must include `required_claims`.
    Jwe,
}

impl AuthMode {
    /// The word used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Fixed => "fixed",
            AuthMode::Headers => "headers",
            AuthMode::ApiKeys => "api_keys",
            AuthMode::Jwt => "jwt",
            AuthMode::Macaroon => "macaroon",
            AuthMode::Jwe => "jwe",
        }
    }
}

/// JWT signature algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
}

/// `auth:` settings for mode `jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub algorithm: JwtAlgorithm,
    /// HS256: environment variable holding the shared secret.
    pub secret_env: Option<String>,
    /// RS256: PEM file with the public key, resolved against the policy file's folder.
    pub public_key_file: Option<PathBuf>,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Claim holding the user id (default `sub`).
    pub user_claim: String,
    /// Claim holding the roles: an array of strings or a space/comma separated string
    /// (default `roles`).
    pub roles_claim: String,
}

/// `auth:` settings for mode `jwe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JweConfig {
    /// The server's private JWKS (`portcullis keys generate`), resolved against the policy
    /// file's folder.
    pub key_file: PathBuf,
    /// Claims every token must carry (present and not null); a token without one is refused
    /// with 403 naming what is missing.
    pub required_claims: Vec<String>,
    /// Claim holding the user id (default `sub`); always required.
    pub user_claim: String,
    /// Claim holding the roles (default `roles`), as in mode `jwt`.
    pub roles_claim: String,
}

/// The `config.auth` section with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// `None`: the transport's default (stdio: `fixed`; HTTP: `macaroon`).
    pub mode: Option<AuthMode>,
    /// Mode `fixed`: the user every caller is (default `local`).
    pub user: Option<String>,
    /// Mode `fixed`: that user's roles.
    pub roles: Vec<String>,
    /// Mode `api_keys`: YAML/JSON file mapping each key to `{user, roles}`.
    pub keys_file: Option<PathBuf>,
    /// Mode `api_keys`: environment variable holding the same mapping as JSON.
    pub keys_env: Option<String>,
    /// Mode `jwt`.
    pub jwt: Option<JwtConfig>,
    /// Mode `jwe`.
    pub jwe: Option<JweConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub mode: Spanned<String>,
    pub user: Option<String>,
    pub roles: Option<Vec<String>>,
    pub keys_file: Option<String>,
    pub keys_env: Option<String>,
    pub algorithm: Option<String>,
    pub secret_env: Option<String>,
    pub public_key_file: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub user_claim: Option<String>,
    pub roles_claim: Option<String>,
    pub key_file: Option<String>,
    pub required_claims: Option<Vec<String>>,
}

/// Checks a raw `auth:` section; every problem is returned as a message for its line.
pub(super) fn compile(raw: &RawAuth) -> Result<AuthConfig, Vec<String>> {
    let mut errors = Vec::new();
    let mode = match raw.mode.value.as_str() {
        "fixed" => AuthMode::Fixed,
        "headers" => AuthMode::Headers,
        "api_keys" => AuthMode::ApiKeys,
        "jwt" => AuthMode::Jwt,
        "macaroon" => AuthMode::Macaroon,
        "jwe" => AuthMode::Jwe,
        other => {
            return Err(vec![format!(
                "unknown auth.mode {other:?}: expected fixed, headers, api_keys, jwt, jwe or macaroon"
            )]);
        }
    };
    // Options that belong to another mode are errors: a silently ignored setting is how a
    // deployment ends up less protected than its author believes.
    let foreign: [(&str, bool, &[AuthMode]); 13] = [
        ("user", raw.user.is_some(), &[AuthMode::Fixed]),
        ("roles", raw.roles.is_some(), &[AuthMode::Fixed]),
        ("keys_file", raw.keys_file.is_some(), &[AuthMode::ApiKeys]),
        ("keys_env", raw.keys_env.is_some(), &[AuthMode::ApiKeys]),
        (
            "algorithm",
            raw.algorithm.is_some(),
            &[AuthMode::Jwt, AuthMode::Jwe],
        ),
        (
            "secret_env",
            raw.secret_env.is_some(),
            &[AuthMode::Jwt, AuthMode::Jwe],
        ),
        (
            "public_key_file",
            raw.public_key_file.is_some(),
            &[AuthMode::Jwt, AuthMode::Jwe],
        ),
        (
            "issuer",
            raw.issuer.is_some(),
            &[AuthMode::Jwt, AuthMode::Jwe],
        ),
        (
            "audience",
            raw.audience.is_some(),
            &[AuthMode::Jwt, AuthMode::Jwe],
        ),
        (
            "user_claim",
            raw.user_claim.is_some(),
            &[AuthMode::Jwt, AuthMode::Jwe],
        ),
        (
            "roles_claim",
            raw.roles_claim.is_some(),
            &[AuthMode::Jwt, AuthMode::Jwe],
        ),
        ("key_file", raw.key_file.is_some(), &[AuthMode::Jwe]),
        (
            "required_claims",
            raw.required_claims.is_some(),
            &[AuthMode::Jwe],
        ),
    ];
    for (name, present, modes) in foreign {
        if present && !modes.contains(&mode) {
            errors.push(format!(
                "auth.{name} is not used by mode {}: it belongs to mode {}",
                mode.as_str(),
                modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
    }
    let mut config = AuthConfig {
        mode: Some(mode),
        user: raw.user.clone(),
        roles: raw.roles.clone().unwrap_or_default(),
        keys_file: raw.keys_file.as_ref().map(PathBuf::from),
        keys_env: raw.keys_env.clone(),
        jwt: None,
        jwe: None,
    };
    if let Some(user) = &raw.user
        && user.trim().is_empty()
    {
        errors.push("auth.user is empty: expected a user id".into());
    }
    if mode == AuthMode::ApiKeys && raw.keys_file.is_none() && raw.keys_env.is_none() {
        errors.push(
            "auth mode api_keys needs keys_file (a YAML file mapping each key to {user, roles}) or keys_env (an environment variable holding the same as JSON)".into(),
        );
    }
    if mode == AuthMode::Jwt {
        config.jwt = jwt(raw, &mut errors);
    }
    if mode == AuthMode::Jwe {
        config.jwe = jwe(raw, &mut errors);
        // With signature settings, the JWE must carry a signed JWT (a nested JWT), checked as
        // mode jwt checks one: encryption alone proves nothing, as the key is public.
        let signed = [
            raw.algorithm.is_some(),
            raw.secret_env.is_some(),
            raw.public_key_file.is_some(),
            raw.issuer.is_some(),
            raw.audience.is_some(),
        ];
        if signed.contains(&true) {
            let mut jwt_errors = Vec::new();
            config.jwt = jwt(raw, &mut jwt_errors);
            errors.extend(jwt_errors.into_iter().map(|e| {
                e.replace(
                    "auth mode jwt needs",
                    "auth mode jwe, to check the signed JWT inside, needs",
                )
            }));
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

fn jwe(raw: &RawAuth, errors: &mut Vec<String>) -> Option<JweConfig> {
    let user_claim = raw.user_claim.clone().unwrap_or_else(|| "sub".into());
    let roles_claim = raw.roles_claim.clone().unwrap_or_else(|| "roles".into());
    for (field, value) in [("user_claim", &user_claim), ("roles_claim", &roles_claim)] {
        if value.trim().is_empty() {
            errors.push(format!("auth.{field} is empty: expected a claim name"));
        }
    }
    let mut required_claims: Vec<String> = Vec::new();
    for claim in raw.required_claims.iter().flatten() {
        if claim.trim().is_empty() {
            errors.push("auth.required_claims has an empty entry: expected claim names".into());
        } else if required_claims.contains(claim) {
            errors.push(format!("auth.required_claims lists {claim:?} twice"));
        } else {
            required_claims.push(claim.clone());
        }
    }
    let Some(key_file) = raw.key_file.as_ref().filter(|f| !f.trim().is_empty()) else {
        errors.push(
            "auth mode jwe needs key_file: the server's private JWKS (make one with `portcullis keys generate --out DIR`)"
                .into(),
        );
        return None;
    };
    Some(JweConfig {
        key_file: PathBuf::from(key_file),
        required_claims,
        user_claim,
        roles_claim,
    })
}

fn jwt(raw: &RawAuth, errors: &mut Vec<String>) -> Option<JwtConfig> {
    let algorithm = match raw.algorithm.as_deref() {
        Some("HS256") => JwtAlgorithm::Hs256,
        Some("RS256") => JwtAlgorithm::Rs256,
        Some(other) => {
            errors.push(format!(
                "unknown auth.algorithm {other:?}: expected HS256 or RS256"
            ));
            return None;
        }
        None => {
            errors.push("auth mode jwt needs algorithm: HS256 or RS256".into());
            return None;
        }
    };
    match algorithm {
        JwtAlgorithm::Hs256 if raw.secret_env.is_none() => errors.push(
            "auth.algorithm HS256 needs secret_env: the environment variable holding the shared secret".into(),
        ),
        JwtAlgorithm::Hs256 if raw.public_key_file.is_some() => {
            errors.push("auth.public_key_file is for RS256, not HS256".into())
        }
        JwtAlgorithm::Rs256 if raw.public_key_file.is_none() => errors.push(
            "auth.algorithm RS256 needs public_key_file: a PEM file with the issuer's public key".into(),
        ),
        JwtAlgorithm::Rs256 if raw.secret_env.is_some() => {
            errors.push("auth.secret_env is for HS256, not RS256".into())
        }
        _ => {}
    }
    let (Some(issuer), Some(audience)) = (&raw.issuer, &raw.audience) else {
        errors.push(
            "auth mode jwt needs issuer and audience: tokens are only accepted for this deployment"
                .into(),
        );
        return None;
    };
    Some(JwtConfig {
        algorithm,
        secret_env: raw.secret_env.clone(),
        public_key_file: raw.public_key_file.as_ref().map(PathBuf::from),
        issuer: issuer.clone(),
        audience: audience.clone(),
        user_claim: raw.user_claim.clone().unwrap_or_else(|| "sub".into()),
        roles_claim: raw.roles_claim.clone().unwrap_or_else(|| "roles".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load_str;

    #[test]
    fn auth_and_hide_denied_tools_load_with_defaults() {
        let p = load_str("policies: []", "p.yaml").unwrap();
        assert!(p.config.hide_denied_tools);
        assert_eq!(p.config.auth, AuthConfig::default());
        let p = load_str(
            "config:\n  hide_denied_tools: false\n  auth: { mode: jwt, algorithm: HS256, secret_env: S, issuer: i, audience: a }\npolicies: []",
            "p.yaml",
        )
        .unwrap();
        assert!(!p.config.hide_denied_tools);
        let jwt = p.config.auth.jwt.unwrap();
        assert_eq!(
            (jwt.algorithm, jwt.user_claim.as_str()),
            (JwtAlgorithm::Hs256, "sub")
        );
    }

    #[test]
    fn jwe_section_loads_with_defaults() {
        let p = load_str(
            "config:\n  auth: { mode: jwe, key_file: keys/private.json, required_claims: [name, email] }\npolicies: []",
            "p.yaml",
        )
        .unwrap();
        assert_eq!(p.config.auth.mode, Some(AuthMode::Jwe));
        let jwe = p.config.auth.jwe.unwrap();
        assert_eq!(jwe.required_claims, ["name", "email"]);
        assert_eq!(
            (jwe.user_claim.as_str(), jwe.roles_claim.as_str()),
            ("sub", "roles")
        );
        assert_eq!(jwe.key_file, PathBuf::from("keys/private.json"));
        assert!(
            p.config.auth.jwt.is_none(),
            "no signed JWT inside asked for"
        );

        let nested = load_str(
            "config:\n  auth: { mode: jwe, key_file: k.json, algorithm: HS256, secret_env: S, issuer: i, audience: a }\npolicies: []",
            "p.yaml",
        )
        .unwrap();
        let jwt = nested
            .config
            .auth
            .jwt
            .expect("the signed JWT inside is checked");
        assert_eq!((jwt.issuer.as_str(), jwt.audience.as_str()), ("i", "a"));
    }

    #[test]
    fn bad_auth_sections_are_rejected_with_their_line() {
        for (auth, expected) in [
            ("{ mode: magic }", "unknown auth.mode \"magic\""),
            ("{ mode: api_keys }", "needs keys_file"),
            (
                "{ mode: jwe, key_file: k.json, algorithm: HS256, secret_env: S }",
                "auth mode jwe, to check the signed JWT inside, needs issuer and audience",
            ),
            (
                "{ mode: fixed, keys_env: K }",
                "auth.keys_env is not used by mode fixed",
            ),
            (
                "{ mode: jwt, algorithm: RS256, issuer: i, audience: a }",
                "needs public_key_file",
            ),
            (
                "{ mode: jwt, algorithm: HS256, secret_env: S }",
                "needs issuer and audience",
            ),
            ("{ mode: fixed, colour: red }", "unknown field"),
            ("{ mode: jwe }", "auth mode jwe needs key_file"),
            (
                "{ mode: jwe, key_file: k.json, required_claims: [email, email] }",
                "lists \"email\" twice",
            ),
            (
                "{ mode: jwe, key_file: k.json, required_claims: [\"\"] }",
                "required_claims has an empty entry",
            ),
            (
                "{ mode: jwe, key_file: k.json, issuer: i }",
                "auth mode jwe, to check the signed JWT inside, needs algorithm: HS256 or RS256",
            ),
            (
                "{ mode: jwe, key_file: k.json, keys_env: K }",
                "auth.keys_env is not used by mode jwe: it belongs to mode api_keys",
            ),
            (
                "{ mode: jwt, algorithm: HS256, secret_env: S, issuer: i, audience: a, required_claims: [x] }",
                "auth.required_claims is not used by mode jwt: it belongs to mode jwe",
            ),
        ] {
            let text = format!("config:\n  auth: {auth}\npolicies: []");
            let err = load_str(&text, "p.yaml").unwrap_err().to_string();
            assert!(err.contains(expected), "{auth}: {err}");
            assert!(err.contains("p.yaml:2:"), "{auth}: no line in {err}");
        }
    }
}
