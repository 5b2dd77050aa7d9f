//! Session tokens for callers that hold no token themselves (stdio, local use): one token per
//! subject, minted on first use and kept in memory, so approvals work as they did in the
//! seed. The store is bounded (least recently used subjects are dropped first) and every
//! token expires, after which the next call starts a fresh one.

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lru::LruCache;

use super::error::TokenError;
use super::key::Keyring;
use super::mint::{self, MintSpec};
use crate::policy::NoEnforcers;
use crate::request::Subject;

/// Default number of subjects kept.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Default lifetime of a session token.
pub const DEFAULT_TTL: Duration = Duration::from_secs(8 * 3600);

struct Entry {
    token: String,
    roles: Vec<String>,
    expires_unix_ms: u64,
}

/// In-memory tokens by user id.
pub struct SessionTokens {
    entries: Mutex<LruCache<String, Entry>>,
    ttl: Duration,
}

impl Default for SessionTokens {
    fn default() -> Self {
        SessionTokens::new(
            NonZeroUsize::new(DEFAULT_CAPACITY).expect("nonzero"),
            DEFAULT_TTL,
        )
    }
}

impl SessionTokens {
    /// A store of at most `capacity` subjects whose tokens live for `ttl`.
    pub fn new(capacity: NonZeroUsize, ttl: Duration) -> Self {
        SessionTokens {
            entries: Mutex::new(LruCache::new(capacity)),
            ttl,
        }
    }

    /// The subject's token: the stored one while it lives and the roles are unchanged,
    /// otherwise a newly minted one (which replaces it).
    pub fn token_for(
        &self,
        keys: &Keyring,
        subject: &Subject,
        now_unix_ms: u64,
    ) -> Result<String, TokenError> {
        let mut entries = self.lock();
        if let Some(e) = entries.get(&subject.user)
            && e.roles == subject.roles
            && now_unix_ms < e.expires_unix_ms
        {
            return Ok(e.token.clone());
        }
        let spec = MintSpec {
            user: subject.user.clone(),
            roles: subject.roles.clone(),
            ttl: Some(self.ttl),
            caveats: Vec::new(),
        };
        let token = mint::encode(&mint::mint(keys, &spec, now_unix_ms, &NoEnforcers)?, false)?;
        let expires_unix_ms =
            now_unix_ms.saturating_add(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX));
        entries.put(
            subject.user.clone(),
            Entry {
                token: token.clone(),
                roles: subject.roles.clone(),
                expires_unix_ms,
            },
        );
        Ok(token)
    }

    /// The subject's token if it has a live one with the same roles; never mints, so callers
    /// that never needed a token cost one lookup.
    pub fn get(&self, subject: &Subject, now_unix_ms: u64) -> Option<String> {
        let mut entries = self.lock();
        entries
            .get(&subject.user)
            .filter(|e| e.roles == subject.roles && now_unix_ms < e.expires_unix_ms)
            .map(|e| e.token.clone())
    }

    /// Stores the subject's token after it changed (a grant was appended). Its expiry stays
    /// that of the session; a subject not in the store (evicted meanwhile) is not re-added.
    pub fn update(&self, subject: &Subject, token: String) {
        if let Some(e) = self.lock().get_mut(&subject.user)
            && e.roles == subject.roles
        {
            e.token = token;
        }
    }

    /// Forgets a subject's session (logout).
    pub fn remove(&self, user: &str) {
        self.lock().pop(user);
    }

    /// Number of subjects with a session.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no subject has a session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<String, Entry>> {
        // Entries are replaced whole; a panic elsewhere cannot leave one half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::key::RootKey;

    fn keys() -> Keyring {
        Keyring::new(RootKey::from_secret("k1", &[9; 32]).unwrap(), vec![]).unwrap()
    }

    #[test]
    fn one_token_per_subject_until_expiry_or_role_change() {
        let store = SessionTokens::new(NonZeroUsize::new(2).unwrap(), Duration::from_secs(60));
        let keys = keys();
        let ann = Subject::user("ann");
        let t1 = store.token_for(&keys, &ann, 1_000).unwrap();
        assert_eq!(store.token_for(&keys, &ann, 2_000).unwrap(), t1);
        let t2 = store.token_for(&keys, &ann, 61_000).unwrap();
        assert_ne!(t2, t1, "expired session is replaced");
        let t3 = store
            .token_for(&keys, &ann.clone().with_role("admin"), 62_000)
            .unwrap();
        assert_ne!(t3, t2, "a change of roles mints a new token");
        assert_eq!(
            store.get(&ann, 63_000),
            None,
            "get never mints, and roles must match"
        );
        assert_eq!(
            store
                .get(&ann.clone().with_role("admin"), 63_000)
                .as_deref(),
            Some(&*t3)
        );
        assert_eq!(
            store.get(&ann.clone().with_role("admin"), 122_000),
            None,
            "expired"
        );

        store.update(&ann.clone().with_role("admin"), "updated".into());
        assert_eq!(
            store
                .token_for(&keys, &ann.clone().with_role("admin"), 63_000)
                .unwrap(),
            "updated"
        );
    }

    #[test]
    fn bounded_least_recently_used() {
        let store = SessionTokens::new(NonZeroUsize::new(2).unwrap(), Duration::from_secs(60));
        let keys = keys();
        for u in ["a", "b", "c"] {
            store.token_for(&keys, &Subject::user(u), 0).unwrap();
        }
        assert_eq!(store.len(), 2);
        store.update(&Subject::user("a"), "ignored".into());
        assert_ne!(
            store.token_for(&keys, &Subject::user("a"), 0).unwrap(),
            "ignored",
            "evicted subject is not resurrected by update"
        );
        store.remove("a");
        assert_eq!(store.len(), 1);
    }
}
