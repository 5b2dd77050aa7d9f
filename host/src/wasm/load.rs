//! Loading a folder of enforcers: read, hash, componentize core modules, compile (or fetch the
//! compiled artifact from cache), type-check against the world, and read metadata.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::bindings::{PolicyEnforcerPre, guest};
use super::cache::Lookup;
use super::{Enforcer, EnforcerInfo, EnforcerSet, MAX_MEMORY_MIB, Runtime, SandboxLimits};
use crate::decision::Phase;
use crate::policy::Limits;
use crate::rules::BUILTINS;

/// Largest `.wasm` file accepted (the JavaScript engine in a JS enforcer is ~12 MB).
pub const MAX_WASM_BYTES: u64 = 64 << 20;
/// The only import an enforcer may have.
pub const HOST_IMPORT: &str = "portcullis:policy/host@0.1.0";

/// The result of loading a folder: every enforcer that loaded, and a problem per file that
/// did not. A snapshot is built only when `errors` is empty.
pub struct LoadedDir {
    pub set: EnforcerSet,
    pub errors: Vec<(PathBuf, String)>,
}

/// Turns a core module carrying wit-bindgen's component-type section into a component.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .module(core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| {
            format!("cannot turn this core module into a component (was it built with wit-bindgen against wit/?): {e:#}")
        })
}

enum WasmKind {
    Component,
    CoreModule,
}

fn kind(bytes: &[u8]) -> Result<WasmKind, String> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Ok(WasmKind::CoreModule),
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(WasmKind::Component),
        Some([0, b'a', b's', b'm', ..]) => Err("unsupported WebAssembly version or layer".into()),
        _ => Err("not a WebAssembly file (no \\0asm header)".into()),
    }
}

impl Runtime {
    /// Loads every `*.wasm` in `dir` (hidden files and other extensions are ignored).
    pub fn load_dir(&self, dir: &Path, limits: &Limits) -> LoadedDir {
        let mut errors = Vec::new();
        let mut set = EnforcerSet::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push((
                    dir.to_path_buf(),
                    format!("cannot read the enforcers folder: {e}"),
                ));
                return LoadedDir { set, errors };
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "wasm")
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        files.sort();
        let mut owner: BTreeMap<Arc<str>, PathBuf> = BTreeMap::new();
        let mut used = BTreeSet::new();
        for file in files {
            match self.load_file(&file, limits, &mut used) {
                Ok(enforcer) => {
                    let name = enforcer.info.name.clone();
                    if let Some(first) = owner.get(&name) {
                        errors.push((
                            file.clone(),
                            format!(
                                "enforcer name {name:?} is already used by {}; each enforcer needs its own name",
                                first.display()
                            ),
                        ));
                        continue;
                    }
                    owner.insert(name.clone(), file);
                    set.by_name.insert(name, Arc::new(enforcer));
                }
                Err(e) => errors.push((file, e)),
            }
        }
        // Forget compiled components no file uses any more.
        if let Ok(mut memo) = self.memo.lock() {
            memo.retain(|k, _| used.contains(k));
        }
        for name in limits.enforcers.keys() {
            if !set.by_name.contains_key(name.as_str()) {
                let hint = crate::policy::did_you_mean(name, set.by_name.keys().map(|k| &**k))
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
                errors.push((
                    dir.to_path_buf(),
                    format!(
                        "config.limits.enforcers names {name:?}{hint}, which is not in this folder"
                    ),
                ));
            }
        }
        LoadedDir { set, errors }
    }

    fn load_file(
        &self,
        file: &Path,
        limits: &Limits,
        used: &mut BTreeSet<[u8; 32]>,
    ) -> Result<Enforcer, String> {
        let start = Instant::now();
        let size = std::fs::metadata(file)
            .map_err(|e| format!("cannot read: {e}"))?
            .len();
        if size > MAX_WASM_BYTES {
            return Err(format!("is {size} bytes; the limit is {MAX_WASM_BYTES}"));
        }
        let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        used.insert(digest);
        let (component, cache_hit) = self.compile(&bytes, digest)?;
        self.check_imports(&component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(PolicyEnforcerPre::new)
            .map_err(|e| {
                format!(
                    "does not implement the world portcullis:policy/policy-enforcer@0.1.0 (see wit/policy.wit): {}",
                    super::one_line(&format!("{e:#}"))
                )
            })?;
        // Metadata is read with generous limits; the enforcer's own limits apply from then on.
        let mut enforcer = Enforcer {
            info: EnforcerInfo {
                name: Arc::from(file.file_stem().and_then(|s| s.to_str()).unwrap_or("?")),
                version: String::new(),
                description: String::new(),
                phases: Vec::new(),
                file: file.to_path_buf(),
                sha256: hex(&digest),
                size,
                load_time: start.elapsed(),
                cache_hit,
                limits: SandboxLimits {
                    timeout_ms: 1000,
                    memory_mib: MAX_MEMORY_MIB,
                },
            },
            pre,
            engine: self.engine.clone(),
        };
        let meta = enforcer
            .call(|store, e| e.call_metadata(store))
            .map_err(|e| format!("metadata() failed: {e}"))?;
        let (name, phases) = check_metadata(&meta)?;
        let over = limits.enforcers.get(&*name);
        enforcer.info.limits = SandboxLimits {
            timeout_ms: over.and_then(|o| o.timeout_ms).unwrap_or(limits.timeout_ms),
            memory_mib: over.and_then(|o| o.memory_mib).unwrap_or(limits.memory_mib),
        };
        enforcer.info.name = name;
        enforcer.info.version = meta.version;
        enforcer.info.description = meta.description;
        enforcer.info.phases = phases;
        enforcer.info.load_time = start.elapsed();
        Ok(enforcer)
    }

    /// Finds the compiled component in memory, then on disk, then compiles it.
    fn compile(&self, bytes: &[u8], digest: [u8; 32]) -> Result<(Component, bool), String> {
        if let Some(c) = self.memo.lock().ok().and_then(|m| m.get(&digest).cloned()) {
            return Ok((c, true));
        }
        let key = self.cache_key(&digest);
        if let Some(disk) = &self.disk {
            match disk.get(&self.engine, &key) {
                Lookup::Hit(c) => {
                    self.remember(digest, &c);
                    return Ok((c, true));
                }
                Lookup::Corrupt(why) => tracing::warn!("{why}"),
                Lookup::Miss => {}
            }
        }
        let component_bytes = match kind(bytes)? {
            WasmKind::Component => None,
            WasmKind::CoreModule => Some(componentize(bytes)?),
        };
        let source = component_bytes.as_deref().unwrap_or(bytes);
        let component = Component::new(&self.engine, source).map_err(|e| {
            format!(
                "is not a valid component: {}",
                super::one_line(&format!("{e:#}"))
            )
        })?;
        if let Some(disk) = &self.disk
            && let Err(e) = disk.put(&key, &component)
        {
            tracing::warn!("compile cache: {e}");
        }
        self.remember(digest, &component);
        Ok((component, false))
    }

    fn remember(&self, digest: [u8; 32], c: &Component) {
        if let Ok(mut memo) = self.memo.lock() {
            memo.insert(digest, c.clone());
        }
    }

    /// Source hash plus wasmtime's own hash of everything that makes artifacts compatible
    /// (version, target, engine settings).
    fn cache_key(&self, digest: &[u8; 32]) -> String {
        let mut h = std::hash::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{}-{:016x}", hex(digest), h.finish())
    }

    fn check_imports(&self, component: &Component) -> Result<(), String> {
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let wasi: Vec<&str> = imports
            .iter()
            .filter(|n| n.starts_with("wasi:"))
            .map(String::as_str)
            .collect();
        if !wasi.is_empty() {
            return Err(format!(
                "this enforcer needs WASI ({}), which Portcullis does not provide: enforcers must be pure (build with every WASI feature disabled)",
                wasi.join(", ")
            ));
        }
        let other: Vec<&str> = imports
            .iter()
            .filter(|n| *n != HOST_IMPORT)
            .map(String::as_str)
            .collect();
        if !other.is_empty() {
            return Err(format!(
                "imports {} but an enforcer may import only {HOST_IMPORT}",
                other.join(", ")
            ));
        }
        Ok(())
    }
}

fn check_metadata(m: &guest::Info) -> Result<(Arc<str>, Vec<Phase>), String> {
    let name = &m.name;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "metadata name {:?} is invalid: expected lowercase letters, digits and _ (starting with a letter, at most 64)",
            name.chars().take(80).collect::<String>()
        ));
    }
    if BUILTINS.contains(&name.as_str()) {
        return Err(format!(
            "metadata name {name:?} is a built-in policy; choose another name"
        ));
    }
    if m.version.len() > 256 || m.description.len() > 4096 {
        return Err("metadata version or description is too long (256 / 4096 bytes)".into());
    }
    if m.phases.is_empty() {
        return Err("metadata lists no phases: expected before, after or both".into());
    }
    let phases = m
        .phases
        .iter()
        .map(|p| match p {
            guest::Phase::Before => Phase::Before,
            guest::Phase::After => Phase::After,
        })
        .collect();
    Ok((Arc::from(name.as_str()), phases))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
