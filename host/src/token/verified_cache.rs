//! A bounded cache of successful verifications, keyed by the exact token and discharge texts
//! and the keyring they were verified with.
//!
//! Verifying a token is dominated by its HMAC-SHA256 chain (about 1.3 µs per caveat on a CPU
//! without SHA extensions), and the result is a pure function of the token and discharge
//! bytes, the keys, the loaded enforcers and the request's clock. Only the clock changes from
//! call to call, so a success is remembered and its time-dependent parts (the earliest
//! `expires` of the token and its discharges) are judged again on every hit; grant expiry is
//! already judged per request by the engine ([`super::Grant::matches`] takes the request's
//! time). The expected user is checked again on every hit as well.
//!
//! Safety of the lookup: entries are found by a keyed hash (foldhash, randomly seeded per
//! process and per cache, so a client cannot aim collisions), then the stored bytes are
//! compared with the presented ones in constant time, so timing never reveals how much of a
//! valid token a forgery shares. Only successes are stored: a failure is always verified
//! afresh, so its error is exact. Each policy snapshot owns one cache (as with
//! [`super::CaveatCache`]), and every entry records the [`Keyring::generation`] it was verified
//! under, so neither a reload nor a key rotation can serve a stale success.

use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::fast::RandomState;
use lru::LruCache;
use subtle::{Choice, ConstantTimeEq};

use super::error::TokenError;
use super::key::Keyring;
use super::verify::{VerifiedToken, VerifyOptions};

/// Entries kept by [`VerifiedCache::default`].
pub const DEFAULT_CAPACITY: usize = 4096;

/// Tokens whose text (with discharges) is longer than this are verified every time rather
/// than cached, so the cache's memory stays bounded (capacity times a few times this).
pub const MAX_CACHED_BYTES: usize = 4 * 1024;

/// One remembered success and the exact inputs it was computed from.
struct Entry {
    keyring: u64,
    token: Box<[u8]>,
    discharges: Box<[Box<[u8]>]>,
    verified: Arc<VerifiedToken>,
}

impl Entry {
    /// Whether this entry was computed from exactly these inputs. Constant time in the bytes
    /// compared (lengths are not secret: they are visible on the wire).
    fn is_for(&self, keyring: u64, token: &str, discharges: &[&str]) -> bool {
        let mut same = Choice::from(u8::from(self.keyring == keyring))
            & self.token.ct_eq(token.as_bytes())
            & Choice::from(u8::from(self.discharges.len() == discharges.len()));
        for (stored, given) in self.discharges.iter().zip(discharges) {
            same &= stored.ct_eq(given.as_bytes());
        }
        same.into()
    }
}

/// Least-recently-used cache of successful verifications.
pub struct VerifiedCache {
    entries: Mutex<LruCache<u64, Entry, RandomState>>,
    hasher: RandomState,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens: they are bearer credentials.
        f.debug_struct("VerifiedCache")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for VerifiedCache {
    fn default() -> Self {
        VerifiedCache::new(NonZeroUsize::new(DEFAULT_CAPACITY).expect("nonzero"))
    }
}

impl VerifiedCache {
    /// A cache holding at most `capacity` verifications.
    pub fn new(capacity: NonZeroUsize) -> Self {
        VerifiedCache {
            entries: Mutex::new(LruCache::with_hasher(capacity, RandomState::default())),
            hasher: RandomState::default(),
        }
    }

    /// The verification of `token` with `discharges` under `keys` at `opts`: a remembered
    /// success whose expiry and user still hold at `opts`, or else `verify()` (whose success
    /// is then remembered). An expired entry is dropped and verified again, so the caller
    /// gets the same `Expired` error an uncached verification gives.
    pub fn get_or_verify(
        &self,
        keys: &Keyring,
        token: &str,
        discharges: &[&str],
        opts: &VerifyOptions<'_>,
        verify: impl FnOnce() -> Result<VerifiedToken, TokenError>,
    ) -> Result<Arc<VerifiedToken>, TokenError> {
        let size = token.len() + discharges.iter().map(|d| d.len()).sum::<usize>();
        if size > MAX_CACHED_BYTES {
            return verify().map(Arc::new);
        }
        let generation = keys.generation();
        let hash = self.hasher.hash_one((generation, token, discharges));
        let hit = {
            let mut entries = self.lock();
            match entries.get(&hash) {
                Some(e) if e.is_for(generation, token, discharges) => {
                    let v = e.verified.clone();
                    let expired = v.expires_unix_ms.is_some_and(|exp| opts.now_unix_ms >= exp);
                    if expired {
                        entries.pop(&hash);
                        None
                    } else {
                        Some(v)
                    }
                }
                _ => None,
            }
        };
        if let Some(v) = hit
            && opts.user.is_none_or(|u| u == v.identifier.user)
        {
            return Ok(v);
        }
        // A miss, an expired entry or another user: verify in full (outside the lock), so
        // any error is exactly what an uncached verification reports.
        let verified = Arc::new(verify()?);
        self.lock().put(
            hash,
            Entry {
                keyring: generation,
                token: Box::from(token.as_bytes()),
                discharges: discharges.iter().map(|d| Box::from(d.as_bytes())).collect(),
                verified: verified.clone(),
            },
        );
        Ok(verified)
    }

    /// Number of remembered verifications.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<u64, Entry, RandomState>> {
        // Entries are inserted whole; a panic elsewhere cannot leave one half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::NoEnforcers;
    use crate::token::{self, CaveatCache, MintSpec, RootKey, UncheckedEnforcers};

    fn keys() -> Keyring {
        Keyring::new(RootKey::from_secret("k1", &[5; 32]).unwrap(), vec![]).unwrap()
    }

    fn mint(keys: &Keyring, user: &str) -> String {
        let spec = MintSpec {
            user: user.into(),
            ..MintSpec::default()
        };
        token::encode(
            &token::mint(keys, &spec, 0, &UncheckedEnforcers).unwrap(),
            false,
        )
        .unwrap()
    }

    fn opts() -> VerifyOptions<'static> {
        VerifyOptions {
            now_unix_ms: 1_000,
            user: None,
        }
    }

    fn check(
        cache: &VerifiedCache,
        keys: &Keyring,
        t: &str,
        calls: &mut usize,
    ) -> Arc<VerifiedToken> {
        let caveats = CaveatCache::default();
        cache
            .get_or_verify(keys, t, &[], &opts(), || {
                *calls += 1;
                token::verify(keys, t, &[], &opts(), &caveats, &NoEnforcers)
            })
            .unwrap()
    }

    #[test]
    fn is_bounded_and_evicts_the_least_recent() {
        let cache = VerifiedCache::new(NonZeroUsize::new(2).unwrap());
        let k = keys();
        let (a, b, c) = (mint(&k, "a"), mint(&k, "b"), mint(&k, "c"));
        let mut calls = 0;
        check(&cache, &k, &a, &mut calls);
        check(&cache, &k, &a, &mut calls);
        assert_eq!(calls, 1, "the second lookup is a hit");
        check(&cache, &k, &b, &mut calls);
        check(&cache, &k, &c, &mut calls);
        assert_eq!(cache.len(), 2);
        check(&cache, &k, &a, &mut calls);
        assert_eq!(calls, 4, "the evicted token is verified again");
    }

    #[test]
    fn failures_are_not_cached_and_another_keyring_misses() {
        let cache = VerifiedCache::default();
        let k = keys();
        let t = mint(&k, "a");
        let err = cache.get_or_verify(&k, &t, &[], &opts(), || Err(TokenError::BadSignature));
        assert_eq!(err.unwrap_err(), TokenError::BadSignature);
        assert!(cache.is_empty());
        let mut calls = 0;
        check(&cache, &k, &t, &mut calls);
        check(&cache, &k.clone(), &t, &mut calls);
        assert_eq!(calls, 1, "a clone holds the same keys");
        let same_secret = keys();
        check(&cache, &same_secret, &t, &mut calls);
        assert_eq!(calls, 2, "another keyring is verified afresh");
    }

    #[test]
    fn large_tokens_are_not_cached() {
        let cache = VerifiedCache::default();
        let k = keys();
        let t = mint(&k, "a");
        let caveats = CaveatCache::default();
        let large = "x".repeat(MAX_CACHED_BYTES + 1);
        for _ in 0..2 {
            cache
                .get_or_verify(&k, &large, &[], &opts(), || {
                    token::verify(&k, &t, &[], &opts(), &caveats, &NoEnforcers)
                })
                .unwrap();
        }
        assert!(cache.is_empty());
    }
}
