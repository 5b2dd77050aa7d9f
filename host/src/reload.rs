//! Hot reload: watch the policy file and the enforcers folder, rebuild a complete snapshot off
//! the request path, and swap it in atomically.
//!
//! A snapshot that fails to build (a half-written `.wasm`, an invalid component, a policy that
//! names a missing enforcer, a YAML error) is discarded: the last good snapshot keeps serving,
//! the error is logged with the file and cause, and the next change is tried again. Calls in
//! flight finish on the snapshot they started with. Reloads and failures are audit events and
//! are counted in [`ReloadStats`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use crate::engine::{Engine, Snapshot, load_snapshot};
use crate::policy::LoadErrors;
use crate::wasm::Runtime;

/// How long file events are gathered before a reload: long enough to coalesce a copy's many
/// writes, short enough that a change is live well within a second.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// Counters an operator (or a test) can read.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub reloads: AtomicU64,
    pub failures: AtomicU64,
    /// The last failure's message, cleared by the next successful reload.
    pub last_error: Mutex<Option<String>>,
}

/// The outcome of one reload attempt, for callers that report it.
pub type ReloadOutcome = Result<ReloadSummary, LoadErrors>;

/// What a successful reload loaded.
#[derive(Debug, Clone)]
pub struct ReloadSummary {
    pub rules: usize,
    pub enforcers: usize,
    pub elapsed: Duration,
}

/// Rebuilds and swaps snapshots; owns the file watcher. Dropping it stops watching.
pub struct Reloader {
    shared: Arc<Shared>,
    /// The reload thread holds only a weak reference, so dropping the reloader stops the
    /// watcher, which closes the thread's channel and ends it.
    _watcher: Arc<Mutex<Debouncer>>,
}

type Debouncer = notify_debouncer_full::Debouncer<
    notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

struct Shared {
    engine: Arc<Engine>,
    policy: PathBuf,
    runtime: Option<Arc<Runtime>>,
    stats: ReloadStats,
    on_reload: Box<dyn Fn(&ReloadOutcome) + Send + Sync>,
}

impl Shared {
    fn reload(&self) -> ReloadOutcome {
        let start = Instant::now();
        let outcome =
            load_snapshot(&self.policy, self.runtime.as_ref()).map(|snapshot: Snapshot| {
                let summary = ReloadSummary {
                    rules: snapshot.rules().len(),
                    enforcers: snapshot.enforcers().by_name.len(),
                    elapsed: start.elapsed(),
                };
                self.engine.swap(snapshot);
                summary
            });
        match &outcome {
            Ok(s) => {
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.stats.last_error.lock() {
                    *last = None;
                }
                tracing::info!(
                    target: crate::audit::TARGET,
                    event = "reload",
                    ok = true,
                    policy = %self.policy.display(),
                    rules = s.rules,
                    enforcers = s.enforcers,
                    elapsed_ms = s.elapsed.as_secs_f64() * 1e3,
                    "policy reloaded"
                );
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.stats.last_error.lock() {
                    *last = Some(e.to_string());
                }
                tracing::error!(
                    target: crate::audit::TARGET,
                    event = "reload",
                    ok = false,
                    policy = %self.policy.display(),
                    error = %e,
                    "reload failed; the last good policy stays in force"
                );
            }
        }
        (self.on_reload)(&outcome);
        outcome
    }
}

impl Reloader {
    /// Starts watching `policy` (its folder, since editors replace files by renaming) and the
    /// enforcers folder the current snapshot uses. `on_reload` sees every attempt.
    pub fn start(
        engine: Arc<Engine>,
        policy: PathBuf,
        runtime: Option<Arc<Runtime>>,
        on_reload: impl Fn(&ReloadOutcome) + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let enforcers_dir = engine.snapshot().config().enforcers_dir.clone();
        let shared = Arc::new(Shared {
            engine,
            policy: policy.clone(),
            runtime,
            stats: ReloadStats::default(),
            on_reload: Box::new(on_reload),
        });
        let (tx, rx) = mpsc::channel::<()>();
        let watch = Watched::new(&policy, enforcers_dir.as_deref());
        let filter = watch.clone();
        let mut watcher = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            let relevant = match result {
                Ok(events) => events
                    .iter()
                    .filter(|e| changes_content(&e.kind))
                    .flat_map(|e| e.paths.iter())
                    .any(|p| filter.concerns(p)),
                // A watcher error may have lost events: reload to be safe.
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(());
            }
        })
        .map_err(|e| format!("cannot start the file watcher: {e}"))?;
        watcher
            .watch(&watch.policy_dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", watch.policy_dir.display()))?;
        if let Some(dir) = &watch.enforcers_dir {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
            // The folder's own watch ends when the folder is deleted; its parent sees it come
            // back (see `rearm`).
            if let Some(parent) = watch.enforcers_parent()
                && parent != watch.policy_dir
                && let Err(e) = watcher.watch(&parent, RecursiveMode::NonRecursive)
            {
                tracing::debug!("cannot watch {}: {e}", parent.display());
            }
        }
        let watcher = Arc::new(Mutex::new(watcher));
        let weak = Arc::downgrade(&watcher);
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("portcullis-reload".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Coalesce a burst of changes into one rebuild.
                    while rx.try_recv().is_ok() {}
                    // Watch first, then read: a change after the watch is armed starts the
                    // next reload, one before it is in this one.
                    rearm(&weak, &watch);
                    let _ = worker.reload();
                }
            })
            .map_err(|e| format!("cannot start the reload thread: {e}"))?;
        Ok(Reloader {
            shared,
            _watcher: watcher,
        })
    }

    /// Rebuilds now (as a file change would) and reports the outcome.
    pub fn reload_now(&self) -> ReloadOutcome {
        self.shared.reload()
    }

    pub fn stats(&self) -> &ReloadStats {
        &self.shared.stats
    }
}

/// Watches the enforcers folder again if it exists. Deleting a watched folder ends its watch
/// (inotify drops it), so a folder deleted and recreated, or replaced by a rename, would
/// otherwise never be seen changing again. Watching a path already watched changes nothing.
fn rearm(watcher: &std::sync::Weak<Mutex<Debouncer>>, watch: &Watched) {
    let (Some(dir), Some(watcher)) = (&watch.enforcers_dir, watcher.upgrade()) else {
        return;
    };
    if !dir.is_dir() {
        return;
    }
    let Ok(mut watcher) = watcher.lock() else {
        return;
    };
    if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        tracing::warn!("cannot watch {}: {e}", dir.display());
    }
}

/// Whether an event can mean new content. Reads are not changes: a reload reads the policy
/// and the enforcers, so counting its own opens and closes would reload forever.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Which paths a reload cares about.
#[derive(Clone)]
struct Watched {
    policy_dir: PathBuf,
    policy_name: std::ffi::OsString,
    enforcers_dir: Option<PathBuf>,
}

impl Watched {
    fn new(policy: &Path, enforcers_dir: Option<&Path>) -> Self {
        let policy_dir = match policy.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Watched {
            policy_dir: canonical(&policy_dir),
            policy_name: policy
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default(),
            enforcers_dir: enforcers_dir.map(canonical),
        }
    }

    /// The folder holding the enforcers folder, watched to see the folder come back.
    fn enforcers_parent(&self) -> Option<PathBuf> {
        self.enforcers_dir
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    }

    /// The policy file itself, the enforcers folder (deleted, created or renamed), or a
    /// `.wasm` file in it (not hidden, so writers can stage `.x.wasm` or `x.wasm.tmp` and
    /// rename).
    fn concerns(&self, path: &Path) -> bool {
        let parent = path.parent().map(canonical);
        let name = path.file_name();
        if parent.as_deref() == Some(self.policy_dir.as_path())
            && name == Some(self.policy_name.as_os_str())
        {
            return true;
        }
        if let Some(dir) = &self.enforcers_dir
            && parent.as_deref() == dir.parent()
            && name.is_some()
            && name == dir.file_name()
        {
            return true;
        }
        let in_enforcers =
            self.enforcers_dir.is_some() && parent.as_deref() == self.enforcers_dir.as_deref();
        in_enforcers
            && path.extension().is_some_and(|x| x == "wasm")
            && !name
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
    }
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
