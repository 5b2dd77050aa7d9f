//! The Portcullis side of the peer benchmark; bench/run.sh runs it as
//! `portcullis-peers WORKDIR BUSINESS_HOURS_WASM` after bench/py/main.py has written
//! WORKDIR/spec.json. Writes WORKDIR/rust.json: per-decision medians for Portcullis (native
//! rules, a Rust WebAssembly enforcer, token verify + evaluate, redaction) and the per-call
//! cost of Portcullis' rmcp layer. Cedar is timed by the `cedar-peers` binary (cedar/).

mod harness;
mod mcp_side;
mod portcullis_side;
mod spec;

use std::path::PathBuf;

use serde::Serialize;

use harness::Row;

// The allocator the `portcullis` binary ships with (cedar-peers uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Serialize)]
struct Output {
    rows: Vec<Row>,
    mcp: mcp_side::McpResult,
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(workdir), Some(wasm)) = (args.next(), args.next()) else {
        eprintln!("usage: portcullis-peers WORKDIR BUSINESS_HOURS_WASM");
        std::process::exit(2);
    };
    let workdir = PathBuf::from(workdir);
    let spec: spec::Spec =
        serde_json::from_str(&std::fs::read_to_string(workdir.join("spec.json")).unwrap())
            .expect("spec.json");
    // Only the enforcer the policy names, so loading compiles nothing else.
    let enforcers = workdir.join("enforcers");
    std::fs::create_dir_all(&enforcers).unwrap();
    std::fs::copy(&wasm, enforcers.join("business_hours.wasm")).expect("business_hours.wasm");

    let mut rows = Vec::new();
    for set in &spec.rule_sets {
        portcullis_side::native(set, &mut rows);
        portcullis_side::wasm(set, &workdir, &enforcers, &mut rows);
        portcullis_side::token(set, &mut rows);
    }
    portcullis_side::redaction(&spec.redaction, &mut rows);
    let mcp = mcp_side::run(&spec);
    eprintln!("  rmcp in-memory tools/call p50: {:?}", mcp.p50_us);
    let out = serde_json::to_string_pretty(&Output { rows, mcp }).unwrap();
    std::fs::write(workdir.join("rust.json"), out).unwrap();
}
