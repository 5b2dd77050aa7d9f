//! Root keys: the current one that mints, and retired ones that still verify.
//!
//! A secret is the UTF-8 text of an environment variable. The macaroon key is derived from it
//! exactly as libmacaroons and pymacaroons derive theirs (HMAC-SHA256 keyed with
//! `macaroons-key-generator`), so the same secret verifies the same tokens in all three. The
//! key that seals grants is derived from the same secret under another label, so a grant's
//! MAC can never be confused with a macaroon signature.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use libmacaroon::MacaroonKey;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::KeyError;
use crate::policy::{Config, check_key_id};

/// Shortest secret accepted, in bytes: 256 bits if the text is random.
pub const MIN_SECRET_BYTES: usize = 32;

/// The default secret hard-coded in mcp-macaroon-middleware; refused because it is public.
pub const SEED_DEFAULT_SECRET: &str = "this_is_a_secret_key";

/// The secret used by `--insecure-dev-key`: public, so tokens made with it prove nothing.
pub const DEV_SECRET: &str = "portcullis-insecure-development-key-do-not-deploy";

/// Key id of the development key, so its tokens are recognisable at a glance.
pub const DEV_KEY_ID: &str = "insecure-dev";

/// Domain-separation label for the grant-sealing key.
const GRANT_LABEL: &[u8] = b"portcullis/grant/v1";

/// The 32-byte key that seals grants; wiped from memory on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct GrantKey([u8; 32]);

impl GrantKey {
    /// A fresh HMAC-SHA256 instance keyed with this key.
    pub(super) fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

impl std::fmt::Debug for GrantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantKey([REDACTED])")
    }
}

/// One root key: its id and the two keys derived from its secret.
#[derive(Clone, Debug)]
pub struct RootKey {
    id: Arc<str>,
    macaroon: MacaroonKey,
    grant: GrantKey,
}

impl RootKey {
    /// Derives both keys from a secret. The secret itself is not kept.
    pub fn from_secret(id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        check_key_id(id).map_err(KeyError::BadId)?;
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
        mac.update(GRANT_LABEL);
        let grant = GrantKey(mac.finalize().into_bytes().into());
        Ok(RootKey {
            id: Arc::from(id),
            macaroon: MacaroonKey::generate(secret),
            grant,
        })
    }

    /// The id written into the identifier of tokens this key signs.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The macaroon root key (as libmacaroons derives it).
    pub fn macaroon_key(&self) -> &MacaroonKey {
        &self.macaroon
    }

    /// The key that seals grants.
    pub fn grant_key(&self) -> &GrantKey {
        &self.grant
    }
}

/// The keys a host holds: one that mints, any number that still verify.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: RootKey,
    retired: Vec<RootKey>,
    /// Names this exact set of keys (see [`Keyring::generation`]).
    generation: u64,
}

/// A generation number no keyring built so far has had.
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Keyring {
    /// A keyring from already-derived keys; ids must be distinct.
    pub fn new(current: RootKey, retired: Vec<RootKey>) -> Result<Self, KeyError> {
        let mut seen = vec![current.id()];
        for k in &retired {
            if seen.contains(&k.id()) {
                return Err(KeyError::DuplicateId(k.id().to_string()));
            }
            seen.push(k.id());
        }
        Ok(Keyring {
            current,
            retired,
            generation: next_generation(),
        })
    }

    /// Loads the current key from the variable named by `config.secret_key_env` and every
    /// retired key from its own variable, through `env` (the process environment in
    /// production, a map in tests). Every key must pass [`check_secret`].
    pub fn from_config(
        config: &Config,
        env: impl Fn(&str) -> Option<Result<String, ()>>,
    ) -> Result<Self, KeyError> {
        let load = |id: &str, var: &str| -> Result<RootKey, KeyError> {
            let secret = match env(var) {
                None => {
                    return Err(KeyError::Missing {
                        env: var.to_string(),
                        min: MIN_SECRET_BYTES,
                    });
                }
                Some(Err(())) => {
                    return Err(KeyError::NotUtf8 {
                        env: var.to_string(),
                    });
                }
                Some(Ok(s)) => Zeroizing::new(s),
            };
            check_secret(var, &secret)?;
            RootKey::from_secret(id, secret.as_bytes())
        };
        let current = load(&config.key_id, &config.secret_key_env)?;
        let retired = config
            .retired_keys
            .iter()
            .map(|r| load(&r.id, &r.env))
            .collect::<Result<Vec<_>, _>>()?;
        Keyring::new(current, retired)
    }

    /// [`Keyring::from_config`] reading the process environment.
    pub fn from_env(config: &Config) -> Result<Self, KeyError> {
        Keyring::from_config(config, |var| match std::env::var(var) {
            Ok(v) => Some(Ok(v)),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => Some(Err(())),
        })
    }

    /// The public development key. Logs a warning every time it is used, because anyone can
    /// mint tokens that this keyring accepts.
    pub fn insecure_dev() -> Self {
        tracing::warn!(
            target: crate::audit::TARGET,
            key_id = DEV_KEY_ID,
            "using the insecure development key (--insecure-dev-key): its secret is public, so anyone can mint tokens this host accepts; never use it outside a demo"
        );
        let key = RootKey::from_secret(DEV_KEY_ID, DEV_SECRET.as_bytes())
            .expect("the development key id is valid");
        Keyring {
            current: key,
            retired: Vec::new(),
            generation: next_generation(),
        }
    }

    /// The key new tokens and grants are made with.
    pub fn current(&self) -> &RootKey {
        &self.current
    }

    /// The key with this id, current or retired.
    pub fn get(&self, id: &str) -> Option<&RootKey> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|k| &*k.id == id)
    }

    /// Unique to each keyring built (a clone, which holds the same keys, keeps it). A keyring
    /// cannot change after it is built, so a cached verification tagged with this number can
    /// never answer for another key set, such as one with a retired key removed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Ids of the retired keys, for diagnostics.
    pub fn retired_ids(&self) -> impl Iterator<Item = &str> {
        self.retired.iter().map(RootKey::id)
    }
}

/// Refuses secrets that are short or publicly known. `env` names the variable in the error.
pub fn check_secret(env: &str, secret: &str) -> Result<(), KeyError> {
    if secret == SEED_DEFAULT_SECRET {
        return Err(KeyError::SeedDefault {
            env: env.to_string(),
        });
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::TooShort {
            env: env.to_string(),
            len: secret.len(),
            min: MIN_SECRET_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RetiredKey;
    use std::collections::HashMap;

    const GOOD: &str = "0123456789abcdef0123456789abcdef";

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<Result<String, ()>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned().map(Ok)
    }

    #[test]
    fn refuses_missing_short_and_seed_default_keys() {
        let config = Config::default();
        let err = Keyring::from_config(&config, env(&[])).unwrap_err();
        assert!(matches!(err, KeyError::Missing { ref env, .. } if env == "PORTCULLIS_ROOT_KEY"));
        assert!(err.to_string().contains("--insecure-dev-key"));

        let err =
            Keyring::from_config(&config, env(&[("PORTCULLIS_ROOT_KEY", "short")])).unwrap_err();
        assert_eq!(
            err,
            KeyError::TooShort {
                env: "PORTCULLIS_ROOT_KEY".into(),
                len: 5,
                min: 32
            }
        );

        let err = Keyring::from_config(
            &config,
            env(&[("PORTCULLIS_ROOT_KEY", SEED_DEFAULT_SECRET)]),
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::SeedDefault { .. }), "{err}");

        let err = Keyring::from_config(&config, |_| Some(Err(()))).unwrap_err();
        assert!(matches!(err, KeyError::NotUtf8 { .. }));
    }

    #[test]
    fn loads_current_and_retired_keys() {
        let mut config = Config {
            key_id: "k2".into(),
            ..Config::default()
        };
        config.retired_keys.push(RetiredKey {
            id: "k1".into(),
            env: "OLD_KEY".into(),
        });
        let ring = Keyring::from_config(
            &config,
            env(&[("PORTCULLIS_ROOT_KEY", GOOD), ("OLD_KEY", &GOOD.repeat(2))]),
        )
        .unwrap();
        assert_eq!(ring.current().id(), "k2");
        assert!(ring.get("k1").is_some());
        assert!(ring.get("k3").is_none());
        assert_eq!(ring.retired_ids().collect::<Vec<_>>(), ["k1"]);

        let err = Keyring::from_config(&config, env(&[("PORTCULLIS_ROOT_KEY", GOOD)])).unwrap_err();
        assert!(matches!(err, KeyError::Missing { ref env, .. } if env == "OLD_KEY"));
    }

    #[test]
    fn derivation_matches_libmacaroons() {
        // pymacaroons: hmac.new(b"macaroons-key-generator".ljust(32, b"\0"), secret, sha256)
        let key = RootKey::from_secret("k1", GOOD.as_bytes()).unwrap();
        let expected = {
            let mut m =
                <Hmac<Sha256> as Mac>::new_from_slice(b"macaroons-key-generator\0\0\0\0\0\0\0\0\0")
                    .unwrap();
            m.update(GOOD.as_bytes());
            m.finalize().into_bytes()
        };
        let got: &[u8] = key.macaroon_key().as_ref();
        assert_eq!(got, expected.as_slice());
        // The grant key is something else entirely.
        assert_ne!(&key.grant_key().0[..], got);
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let a = RootKey::from_secret("k1", GOOD.as_bytes()).unwrap();
        let b = RootKey::from_secret("k1", GOOD.as_bytes()).unwrap();
        assert_eq!(
            Keyring::new(a, vec![b]).unwrap_err(),
            KeyError::DuplicateId("k1".into())
        );
        assert!(matches!(
            RootKey::from_secret("bad id", GOOD.as_bytes()),
            Err(KeyError::BadId(_))
        ));
    }
}
