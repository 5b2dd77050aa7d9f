//! A bounded cache of parsed caveats, keyed by caveat text.
//!
//! Parsing a caveat (compiling globs and field paths, checking an enforcer's parameters) is a
//! pure function of its text and the loaded enforcers, and costs far more than a lookup. It
//! serves first verifications (a token already verified is remembered whole by
//! [`super::VerifiedCache`]). A cache belongs to one policy snapshot, so a reload that
//! changes the enforcers starts afresh.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use super::caveat::{self, Caveat};
use super::error::TokenError;
use crate::policy::EnforcerCatalog;

/// Entries kept by [`CaveatCache::default`].
pub const DEFAULT_CAPACITY: usize = 4096;

/// Caveats longer than this are parsed every time rather than cached, so the cache's memory
/// stays bounded by capacity times this.
pub const MAX_CACHED_BYTES: usize = 1024;

type Entry = Result<Arc<Caveat>, TokenError>;

/// Least-recently-used cache of caveat text -> parse result (errors included, so garbage
/// repeated by a client is rejected without re-parsing).
#[derive(Debug)]
pub struct CaveatCache {
    entries: Mutex<LruCache<Box<str>, Entry>>,
}

impl Default for CaveatCache {
    fn default() -> Self {
        CaveatCache::new(NonZeroUsize::new(DEFAULT_CAPACITY).expect("nonzero"))
    }
}

impl CaveatCache {
    /// A cache holding at most `capacity` caveats.
    pub fn new(capacity: NonZeroUsize) -> Self {
        CaveatCache {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The parse of `text`, from the cache or parsed now (and then cached).
    pub fn get_or_parse(&self, text: &str, catalog: &dyn EnforcerCatalog) -> Entry {
        if text.len() > MAX_CACHED_BYTES {
            return caveat::parse(text, catalog).map(Arc::new);
        }
        if let Some(hit) = self.lock().get(text) {
            return hit.clone();
        }
        // Parse outside the lock: an enforcer's validate() may take milliseconds.
        let parsed = caveat::parse(text, catalog).map(Arc::new);
        self.lock().put(Box::from(text), parsed.clone());
        parsed
    }

    /// Number of cached caveats.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Box<str>, Entry>> {
        // Entries are inserted whole; a panic elsewhere cannot leave one half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::NoEnforcers;

    #[test]
    fn caches_results_and_evicts_the_least_recent() {
        let cache = CaveatCache::new(NonZeroUsize::new(2).unwrap());
        let a = cache
            .get_or_parse("bf:a:tool_access:deny", &NoEnforcers)
            .unwrap();
        let again = cache
            .get_or_parse("bf:a:tool_access:deny", &NoEnforcers)
            .unwrap();
        assert!(Arc::ptr_eq(&a, &again), "second lookup is a cache hit");
        assert!(cache.get_or_parse("nonsense", &NoEnforcers).is_err());
        assert_eq!(cache.len(), 2);
        cache.get_or_parse("user = ann", &NoEnforcers).unwrap();
        assert_eq!(cache.len(), 2);
        let a2 = cache
            .get_or_parse("bf:a:tool_access:deny", &NoEnforcers)
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &a2), "evicted entry is parsed again");
    }

    #[test]
    fn long_caveats_are_not_cached() {
        let cache = CaveatCache::default();
        let long = format!("user = {}", "x".repeat(MAX_CACHED_BYTES));
        cache.get_or_parse(&long, &NoEnforcers).unwrap();
        assert!(cache.is_empty());
    }
}
