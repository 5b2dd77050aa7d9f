//! Custom enforcers: WebAssembly components run in a sandbox.
//!
//! One [`Runtime`] per process holds the wasmtime engine (pooling allocator, epoch
//! interruption driven by a 1 ms ticker thread) and the compile cache. Each enforcer keeps a
//! pre-linked `InstancePre`; every evaluation gets a fresh instance in a fresh store with a
//! CPU-time deadline and a memory cap, so no state leaks between callers. No WASI is linked: an
//! enforcer sees only its arguments and the host's `log`. Any failure (trap, timeout, memory
//! cap, malformed verdict) is an [`EnforcerError`], which the engine turns into a deny.

mod bindings;
mod cache;
mod cpu;
mod load;
mod store;
mod verdict;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

pub use bindings::guest;
pub use cache::ArtifactCache;
pub use load::{LoadedDir, componentize};
pub use verdict::Verdict;

use crate::decision::Phase;
use bindings::PolicyEnforcerPre;
use store::StoreState;

pub use crate::policy::MAX_MEMORY_MIB;

/// The check every guest verdict passes before the engine uses it, exposed for the fuzz
/// target `fuzz/fuzz_targets/verdict.rs` only: not part of the library's API.
#[doc(hidden)]
pub fn check_verdict(v: guest::Verdict, phase: Phase) -> Result<Verdict, String> {
    verdict::check(v, phase)
}

/// Epoch ticks per millisecond: deadlines are precise to about one tick.
const TICK: Duration = Duration::from_millis(1);

/// Why an enforcer could not give a verdict. The engine denies with this as the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforcerError {
    pub enforcer: Arc<str>,
    pub kind: FailureKind,
}

/// The cause of an enforcer failure, for the reason text and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    Timeout(u64),
    OutOfMemory(String),
    StackOverflow,
    Trap(String),
    Malformed(String),
}

impl fmt::Display for EnforcerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.enforcer;
        match &self.kind {
            FailureKind::Timeout(ms) => write!(f, "enforcer {name} timed out after {ms} ms"),
            FailureKind::OutOfMemory(m) => write!(f, "enforcer {name} ran out of memory: {m}"),
            FailureKind::StackOverflow => {
                write!(f, "enforcer {name} overflowed its stack (deep recursion)")
            }
            FailureKind::Trap(m) => write!(f, "enforcer {name} failed: {m}"),
            FailureKind::Malformed(m) => {
                write!(f, "enforcer {name} returned a malformed verdict: {m}")
            }
        }
    }
}

impl std::error::Error for EnforcerError {}

/// Per-enforcer sandbox limits after applying `config.limits` and its per-enforcer overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    pub timeout_ms: u64,
    pub memory_mib: u64,
}

/// Facts about a loaded enforcer, for `portcullis enforcers list` and traces.
#[derive(Debug, Clone)]
pub struct EnforcerInfo {
    pub name: Arc<str>,
    pub version: String,
    pub description: String,
    pub phases: Vec<Phase>,
    pub file: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// Time to read, componentize (if needed), compile or fetch from cache, and link.
    pub load_time: Duration,
    /// True when the compiled artifact came from the cache (memory or disk).
    pub cache_hit: bool,
    pub limits: SandboxLimits,
}

/// One loaded enforcer, ready to be instantiated per evaluation.
pub struct Enforcer {
    pub info: EnforcerInfo,
    pre: PolicyEnforcerPre<StoreState>,
    engine: Engine,
}

impl fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enforcer")
            .field("info", &self.info)
            .finish()
    }
}

impl Enforcer {
    /// Asks the enforcer whether a policy line's parameters make sense (at load time).
    pub fn validate(&self, caveat: &guest::Caveat) -> Result<(), String> {
        match self.call(|store, e| e.call_validate(store, caveat)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(message),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs the enforcer for one call. Every failure is an error naming the enforcer.
    pub fn enforce(
        &self,
        caveat: &guest::Caveat,
        subject: &guest::Subject,
        request: &guest::Request,
        phase: Phase,
    ) -> Result<Verdict, EnforcerError> {
        let raw = self.call(|store, e| e.call_enforce(store, caveat, subject, request))?;
        verdict::check(raw, phase).map_err(|m| self.error(FailureKind::Malformed(m)))
    }

    fn call<R>(
        &self,
        f: impl FnOnce(
            &mut Store<StoreState>,
            &bindings::exports::portcullis::policy::enforcer::Guest,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, EnforcerError> {
        let limits = self.info.limits;
        let state = StoreState::new(self.info.name.clone(), (limits.memory_mib as usize) << 20);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s);
        // Set before instantiation so start functions run under the deadline too; the
        // deadline counts from when it is set. `timeout_ms` is a CPU budget: when the
        // wall-clock deadline passes, the call goes on if this thread has used less CPU than
        // that since here (it may have been waiting for a CPU; see `cpu`).
        let budget = Duration::from_millis(limits.timeout_ms.max(1));
        let started = cpu::thread_time();
        store.set_epoch_deadline(limits.timeout_ms.max(1));
        store.epoch_deadline_callback(move |_| {
            Ok(
                match cpu::remaining_ticks(started, cpu::thread_time(), budget) {
                    Some(ticks) => UpdateDeadline::Continue(ticks),
                    None => UpdateDeadline::Interrupt,
                },
            )
        });
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| f(&mut store, instance.portcullis_policy_enforcer()));
        result.map_err(|e| self.classify(&e, store.data()))
    }

    fn classify(&self, e: &wasmtime::Error, state: &StoreState) -> EnforcerError {
        let kind = if state.hit_memory_limit {
            FailureKind::OutOfMemory(format!("limit is {} MiB", self.info.limits.memory_mib))
        } else {
            match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => FailureKind::Timeout(self.info.limits.timeout_ms),
                Some(Trap::StackOverflow) => FailureKind::StackOverflow,
                _ => FailureKind::Trap(one_line(&format!("{e:#}"))),
            }
        };
        self.error(kind)
    }

    fn error(&self, kind: FailureKind) -> EnforcerError {
        EnforcerError {
            enforcer: self.info.name.clone(),
            kind,
        }
    }
}

/// The enforcers of one folder, by name. Immutable once built; a reload builds a new one.
#[derive(Debug, Default)]
pub struct EnforcerSet {
    pub by_name: BTreeMap<Arc<str>, Arc<Enforcer>>,
}

impl EnforcerSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Enforcer>> {
        self.by_name.get(name)
    }
}

/// The process-wide sandbox: engine, linker, caches and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    reset: MemoryReset,
    linker: Linker<StoreState>,
    disk: Option<ArtifactCache>,
    /// Compiled components by source SHA-256, so a reload of unchanged files compiles
    /// nothing and reads nothing from disk.
    memo: std::sync::Mutex<BTreeMap<[u8; 32], Component>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("disk_cache", &self.disk)
            .finish()
    }
}

/// How an instance's linear memory is put back to its pristine state after an evaluation.
/// This is most of the fixed cost of a fresh instance per call, so it is chosen per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryReset {
    /// Linux 6.7+: the `PAGEMAP_SCAN` ioctl finds the pages the call dirtied and only those
    /// are restored, in place; nothing is unmapped, so the next call takes no page faults.
    Pagemap,
    /// Everywhere else: dirtied memory is handed back to the kernel (`madvise`) and faults
    /// in again on the next call.
    Madvise,
}

/// Linear memory restored in place per call (with [`MemoryReset::Pagemap`]); more is handed
/// back to the kernel. A Rust guest's stack, data and heap for a typical call fit.
const KEEP_RESIDENT: usize = 4 << 20;

impl Runtime {
    /// Builds the engine, resetting memory the fastest way this host supports.
    /// `cache_dir`: where compiled artifacts persist (`None`: memory only).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Arc<Self>, String> {
        match Runtime::with_memory_reset(cache_dir.clone(), MemoryReset::Pagemap) {
            Ok(runtime) => Ok(runtime),
            Err(e) => {
                tracing::debug!("PAGEMAP_SCAN unavailable ({e}); resetting memory with madvise");
                Runtime::with_memory_reset(cache_dir, MemoryReset::Madvise)
            }
        }
    }

    /// Builds the engine with a given memory reset strategy; fails if the host lacks it.
    pub fn with_memory_reset(
        cache_dir: Option<PathBuf>,
        reset: MemoryReset,
    ) -> Result<Arc<Self>, String> {
        let engine = Engine::new(&engine_config(reset))
            .map_err(|e| format!("cannot create the wasm engine: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        bindings::PolicyEnforcer::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| format!("cannot link host functions: {e:#}"))?;
        let disk = cache_dir.and_then(|dir| match ArtifactCache::open(&dir) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "compile cache disabled: {e}");
                None
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("portcullis-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| format!("cannot start the epoch thread: {e}"))?
        };
        Ok(Arc::new(Runtime {
            engine,
            reset,
            linker,
            disk,
            memo: std::sync::Mutex::new(BTreeMap::new()),
            stop,
            ticker: Some(ticker),
        }))
    }

    /// How this runtime resets memory between evaluations.
    pub fn memory_reset(&self) -> MemoryReset {
        self.reset
    }

    /// The disk cache, if one is in use.
    pub fn disk_cache(&self) -> Option<&ArtifactCache> {
        self.disk.as_ref()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// The engine settings. Every evaluation instantiates afresh, so they favour cheap
/// instantiation and reset over peak guest speed:
/// - no signal-based traps, no guard pages: every memory access is bounds-checked in code, so
///   growing and resetting memory never change page protections. An `mprotect` in a process
///   with more than one thread costs a TLB shootdown across cores, twice per call; dropping it
///   halves the fixed cost of a call (see BENCHMARKS.md).
/// - the pooling allocator with slots reused per enforcer, and dirtied memory restored in
///   place where the kernel can say which pages were dirtied.
fn engine_config(reset: MemoryReset) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    // Each memory slot reserves MAX_MEMORY_MIB of address space (not RAM); 128 concurrent
    // evaluations is far more than the cores of any host running them.
    pool.total_component_instances(128)
        .total_core_instances(512)
        .total_memories(128)
        .total_tables(512)
        .max_memory_size((MAX_MEMORY_MIB as usize) << 20)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_core_instances_per_component(64)
        .table_elements(200_000)
        .max_core_instance_size(4 << 20)
        .max_component_instance_size(4 << 20)
        .table_keep_resident(64 << 10);
    match reset {
        MemoryReset::Pagemap => {
            pool.pagemap_scan(wasmtime::Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT);
        }
        // Without the scan, "keep resident" means restoring that many bytes by hand on every
        // call, dirty or not: slower than letting the kernel do it.
        MemoryReset::Madvise => {
            pool.pagemap_scan(wasmtime::Enabled::No);
        }
    }
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .max_wasm_stack(1 << 20)
        .signals_based_traps(false)
        .memory_guard_size(0)
        .memory_reservation(MAX_MEMORY_MIB << 20)
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = joined.len().min(600);
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    joined[..end].to_string()
}

/// The WIT `caveat` record for a rule, built once per rule when a snapshot is built.
pub fn guest_caveat(rule: &crate::policy::Rule) -> guest::Caveat {
    guest::Caveat {
        raw: rule.text.to_string(),
        phase: match rule.phase {
            Phase::Before => guest::Phase::Before,
            Phase::After => guest::Phase::After,
        },
        tool: rule
            .tools
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(","),
        policy: rule.policy.to_string(),
        action: match rule.action {
            crate::decision::Effect::Allow => guest::Action::Allow,
            crate::decision::Effect::Deny => guest::Action::Deny,
            crate::decision::Effect::Elicit => guest::Action::Elicit,
        },
        params: rule.params.clone(),
    }
}

impl crate::policy::EnforcerCatalog for EnforcerSet {
    fn phases(&self, name: &str) -> Option<&[Phase]> {
        self.get(name).map(|e| e.info.phases.as_slice())
    }

    fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(|k| &**k).collect()
    }

    fn validate(&self, rule: &crate::policy::Rule) -> Result<(), String> {
        match self.get(&rule.policy) {
            Some(e) => e.validate(&guest_caveat(rule)),
            None => Err(format!("enforcer {} is not loaded", rule.policy)),
        }
    }
}

/// The WIT `subject` record for a caller.
pub fn guest_subject(s: &crate::request::Subject) -> guest::Subject {
    guest::Subject {
        user: s.user.clone(),
        roles: s.roles.clone(),
        agent: s.agent.clone(),
        attributes: s
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The WIT `request` record for a call. `arguments` is the call's arguments as JSON text
/// (serialized once per phase by the caller); `result` is the MCP CallToolResult JSON.
pub fn guest_request(
    req: &crate::request::Request,
    arguments: String,
    result: Option<String>,
) -> guest::Request {
    guest::Request {
        tool: req.tool.clone(),
        arguments,
        result,
        now_unix_ms: req.now_unix_ms,
        session: req.session.clone(),
    }
}

static SHARED: std::sync::OnceLock<Result<Arc<Runtime>, String>> = std::sync::OnceLock::new();

/// The process-wide runtime (one wasmtime engine per process), created on first use with
/// the default compile cache directory.
pub fn shared() -> Result<Arc<Runtime>, String> {
    SHARED
        .get_or_init(|| Runtime::new(ArtifactCache::default_dir()))
        .clone()
}
