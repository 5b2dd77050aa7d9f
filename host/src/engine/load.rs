//! Building a snapshot from a policy file and the enforcers folder it names.

use std::path::Path;
use std::sync::Arc;

use super::Snapshot;
use crate::policy::{self, LoadError, LoadErrors};
use crate::wasm::{self, EnforcerSet, Runtime};

/// Loads a policy file, and its enforcers if it names an `enforcers_dir`, into a snapshot.
/// `runtime`: the sandbox to load enforcers into; `None` uses the process-wide one, created
/// only if the policy has enforcers.
pub fn load_snapshot(path: &Path, runtime: Option<&Arc<Runtime>>) -> Result<Snapshot, LoadErrors> {
    let (policy, enforcers) = policy::load_file_with(path, |config| {
        let Some(dir) = &config.enforcers_dir else {
            return (EnforcerSet::default(), Vec::new());
        };
        let runtime = match runtime.cloned().map(Ok).unwrap_or_else(wasm::shared) {
            Ok(r) => r,
            Err(e) => return (EnforcerSet::default(), vec![file_error(dir, e)]),
        };
        let loaded = runtime.load_dir(dir, &config.limits);
        let errors = loaded
            .errors
            .into_iter()
            .map(|(file, e)| file_error(&file, e))
            .collect();
        (loaded.set, errors)
    })?;
    Snapshot::with_enforcers(policy, Arc::new(enforcers))
}

fn file_error(file: &Path, message: String) -> LoadError {
    LoadError {
        file: file.display().to_string(),
        line: 0,
        column: 0,
        entry: None,
        message,
    }
}
