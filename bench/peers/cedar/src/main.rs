//! The Cedar side of the peer benchmark; bench/run.sh runs it as `cedar-peers WORKDIR` after
//! bench/py/main.py has written WORKDIR/spec.json. Writes WORKDIR/cedar.json: per-decision
//! medians for Cedar on the spec's rule sets, timed and checked the way portcullis-peers times
//! Portcullis (the same harness and spec modules).

// Shared with portcullis-peers, which uses every item; this side needs fewer.
#[allow(dead_code)]
#[path = "../../src/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../src/spec.rs"]
mod spec;

mod cedar_side;

use std::path::PathBuf;

use serde::Serialize;

use harness::Row;

// The allocator of portcullis-peers (and of the `portcullis` binary): both sides run on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Serialize)]
struct Output {
    rows: Vec<Row>,
}

fn main() {
    let Some(workdir) = std::env::args_os().nth(1) else {
        eprintln!("usage: cedar-peers WORKDIR");
        std::process::exit(2);
    };
    let workdir = PathBuf::from(workdir);
    let spec: spec::Spec =
        serde_json::from_str(&std::fs::read_to_string(workdir.join("spec.json")).unwrap())
            .expect("spec.json");
    let mut rows = Vec::new();
    for set in &spec.rule_sets {
        cedar_side::decisions(set, &mut rows);
    }
    let out = serde_json::to_string_pretty(&Output { rows }).unwrap();
    std::fs::write(workdir.join("cedar.json"), out).unwrap();
}
