//! On-disk cache of compiled enforcers, so an unchanged file is never compiled twice, even
//! across restarts.
//!
//! An entry is `MAGIC ‖ sha256(payload) ‖ payload`, where the payload is wasmtime's serialized
//! component. Entries are keyed by the source's SHA-256 and wasmtime's engine-compatibility
//! hash, so a different wasmtime version or engine setting never reads them. Before an entry
//! is deserialized its digest is checked; a corrupt or foreign entry is deleted and the
//! component recompiled. Deserializing trusts the cache directory's owner, so the directory
//! is created private (0700) and should not be shared.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

const MAGIC: &[u8; 8] = b"PCWCACH1";

/// What a lookup found.
pub enum Lookup {
    Hit(Component),
    Miss,
    /// An entry existed but failed its integrity check; it has been removed.
    Corrupt(String),
}

/// A directory of compiled artifacts.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// Opens (creating if needed, private to this user) a cache directory.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
        })
    }

    /// The default location: `$PORTCULLIS_CACHE_DIR`, else `$XDG_CACHE_HOME/portcullis/wasm`,
    /// else `$HOME/.cache/portcullis/wasm`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("PORTCULLIS_CACHE_DIR") {
            return Some(PathBuf::from(d));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("portcullis").join("wasm"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    /// Looks up a compiled component.
    pub fn get(&self, engine: &Engine, key: &str) -> Lookup {
        let path = self.path(key);
        let Ok(bytes) = fs::read(&path) else {
            return Lookup::Miss;
        };
        match verify(&bytes) {
            Ok(payload) => {
                // SAFETY: the payload was written by `put` in this private directory (its
                // digest matches) for this wasmtime version and engine configuration (both
                // are part of the key), and is a component per `detect_precompiled`.
                match unsafe { Component::deserialize(engine, payload) } {
                    Ok(c) => Lookup::Hit(c),
                    Err(e) => self.discard(&path, format!("cannot be deserialized: {e}")),
                }
            }
            Err(why) => self.discard(&path, why),
        }
    }

    /// Stores a compiled component; failures only cost a recompile next time, so they are
    /// returned for logging rather than failing the load.
    pub fn put(&self, key: &str, component: &Component) -> Result<(), String> {
        let payload = component.serialize().map_err(|e| e.to_string())?;
        let digest = Sha256::digest(&payload);
        let path = self.path(key);
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&digest)?;
            f.write_all(&payload)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
    }

    fn discard(&self, path: &Path, why: String) -> Lookup {
        let _ = fs::remove_file(path);
        Lookup::Corrupt(format!("cache entry {} {why}; recompiling", path.display()))
    }
}

/// Checks the header and digest; returns the payload.
fn verify(bytes: &[u8]) -> Result<&[u8], String> {
    let header = MAGIC.len() + 32;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return Err("has no valid header".into());
    }
    let (digest, payload) = bytes[MAGIC.len()..].split_at(32);
    if Sha256::digest(payload).as_slice() != digest {
        return Err("failed its integrity check".into());
    }
    if Engine::detect_precompiled(payload) != Some(Precompiled::Component) {
        return Err("is not a precompiled component".into());
    }
    Ok(payload)
}
