//! Builds enforcers from core WAT for tests: a core module implementing the canonical ABI of
//! `wit/policy.wit`, with the world's component-type section embedded exactly as wit-bindgen
//! does, so the host's componentize-at-load path is exercised too.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use portcullis::Engine;
use portcullis::wasm::Runtime;

use wit_component::StringEncoding;
use wit_parser::Resolve;

/// Where verdict records are written in the module's memory.
const VERDICT_AT: u32 = 2048;
/// Where the reply text for `deny`/`elicit`/`replace` verdicts lives.
const TEXT_AT: u32 = 4096;

/// Encodes a little-endian u32 for a WAT data string.
fn le(v: u32) -> String {
    v.to_le_bytes()
        .iter()
        .map(|b| format!("\\{b:02x}"))
        .collect()
}

/// A WAT data string for arbitrary bytes.
fn bytes(s: &[u8]) -> String {
    s.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// What `enforce` does.
pub enum Body {
    /// Returns the given verdict: 0 allow([]), 1 deny(text), 2 elicit(text), 3 replace(text).
    Verdict(u8, String),
    /// Arbitrary WAT instructions ending in an i32 result (the verdict pointer).
    Raw(String),
}

/// A core module implementing the enforcer world, named `name`, supporting both phases.
pub fn enforcer_module(name: &str, body: Body) -> Vec<u8> {
    let (enforce, extra_data) = match body {
        Body::Verdict(disc, text) => {
            let record = format!(
                "\\{disc:02x}\\00\\00\\00{}{}",
                le(TEXT_AT),
                le(text.len() as u32)
            );
            (
                format!("i32.const {VERDICT_AT}"),
                format!(
                    "(data (i32.const {VERDICT_AT}) \"{record}\")\n(data (i32.const {TEXT_AT}) \"{}\")",
                    bytes(text.as_bytes())
                ),
            )
        }
        Body::Raw(code) => (code, String::new()),
    };
    let version = "1.0.0";
    let desc = "test enforcer";
    // info record at 512: name, version, description (strings), phases (list<phase>).
    let info = format!(
        "{}{}{}{}{}{}{}{}",
        le(16),
        le(name.len() as u32),
        le(128),
        le(version.len() as u32),
        le(160),
        le(desc.len() as u32),
        le(256),
        le(2)
    );
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 65536))
  (global $count (mut i32) (i32.const 0))
  (data (i32.const 16) "{name}")
  (data (i32.const 128) "{version}")
  (data (i32.const 160) "{desc}")
  (data (i32.const 256) "\00\01")
  (data (i32.const 512) "{info}")
  {extra_data}
  ;; A bump allocator that grows memory as needed.
  (func $alloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (if (local.get $old_size)
      (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (local.get $p))
  (func $recurse (param i32) (result i32)
    (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func (export "portcullis:policy/enforcer@0.1.0#metadata") (result i32)
    i32.const 512)
  (func (export "portcullis:policy/enforcer@0.1.0#validate")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    ;; result<_, string>::ok: a zero discriminant at a zeroed address.
    i32.const 1024)
  (func (export "portcullis:policy/enforcer@0.1.0#enforce") (param i32) (result i32)
    {enforce})
)"#
    );
    embed(&wat, &wit_dir(), "policy-enforcer")
}

/// The repository's WIT folder.
pub fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// Parses core WAT and embeds the component type of `world` from the WIT in `dir`.
pub fn embed(wat: &str, dir: &Path, world: &str) -> Vec<u8> {
    let mut module = wat::parse_str(wat).expect("valid WAT");
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve.push_dir(dir).expect("valid WIT");
    let world = resolve
        .select_world(&[pkg], Some(world))
        .expect("world exists");
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .expect("metadata embeds");
    module
}

/// A module for a world other than the enforcer's, from WIT written in the test.
pub fn foreign_module(wit: &str, world: &str, wat: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("world.wit"), wit).expect("write wit");
    embed(wat, dir.path(), world)
}

/// Bodies for misbehaving enforcers.
pub mod evil {
    /// Never returns.
    pub fn infinite_loop() -> String {
        "(loop $forever (br $forever)) unreachable".into()
    }
    /// Grows memory until something stops it.
    pub fn memory_bomb() -> String {
        "(loop $more (drop (memory.grow (i32.const 16))) (br $more)) unreachable".into()
    }
    /// Recurses without end.
    pub fn deep_recursion() -> String {
        "(call $recurse (i32.const 0))".into()
    }
    /// Traps at once.
    pub fn trap() -> String {
        "unreachable".into()
    }
    /// Returns `deny` with a 10 MB reason (memory grown to hold it).
    pub fn ten_mb_output() -> String {
        format!(
            "(drop (memory.grow (i32.const 160)))
             (i32.store8 (i32.const {v}) (i32.const 1))
             (i32.store (i32.const {p}) (i32.const 131072))
             (i32.store (i32.const {l}) (i32.const 10000000))
             i32.const {v}",
            v = super::VERDICT_AT,
            p = super::VERDICT_AT + 4,
            l = super::VERDICT_AT + 8
        )
    }
}

/// One sandbox per test binary, as in a server (no disk cache).
pub fn runtime() -> &'static Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(None).expect("runtime"))
}

/// Writes enforcer files and a policy (default deny, the given timeout) into a temp folder and
/// loads it; the error is the load error's text.
pub fn load(
    files: &[(&str, Vec<u8>)],
    rules: &str,
    timeout_ms: u64,
) -> Result<(tempfile::TempDir, Engine), String> {
    load_in(runtime(), files, rules, timeout_ms)
}

/// [`load`] on a given runtime.
pub fn load_in(
    runtime: &Arc<Runtime>,
    files: &[(&str, Vec<u8>)],
    rules: &str,
    timeout_ms: u64,
) -> Result<(tempfile::TempDir, Engine), String> {
    let dir = tempfile::tempdir().unwrap();
    let enf = dir.path().join("enf");
    std::fs::create_dir(&enf).unwrap();
    for (name, bytes) in files {
        std::fs::write(enf.join(name), bytes).unwrap();
    }
    let policy = format!(
        "config:\n  default_effect: deny\n  enforcers_dir: enf\n  limits: {{ timeout_ms: {timeout_ms} }}\npolicies:\n{rules}"
    );
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    match portcullis::engine::load_snapshot(&path, Some(runtime)) {
        Ok(s) => Ok((dir, Engine::new(s))),
        Err(e) => Err(e.to_string()),
    }
}

/// A call by the test caller to `tool`.
pub fn call(tool: &str) -> portcullis::Request {
    portcullis::Request::new(
        portcullis::Subject::user("mallory"),
        tool,
        serde_json::json!({"q": 1}),
    )
}

/// An enforcer named `healthy` that always allows.
pub fn healthy() -> (&'static str, Vec<u8>) {
    (
        "healthy.wasm",
        enforcer_module("healthy", Body::Verdict(0, String::new())),
    )
}
