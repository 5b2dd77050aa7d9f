//! The CLI with enforcers: `check`, `eval`, `enforcers list`, `enforcers componentize` and
//! `watch` on the shipped enforcers and on WAT-built ones.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Body, enforcer_module};

fn portcullis() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    c.env_remove("RUST_LOG")
        .env(
            "PORTCULLIS_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache"),
        )
        .args(["--log", "off"]);
    c
}

fn example() -> String {
    format!("{}/../policies/enforcers.yaml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_and_eval_run_the_shipped_enforcers() {
    let out = portcullis()
        .args(["check", "--config", &example()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("before  sql_safety"), "{stdout}");
    assert!(stdout.contains("after   pii_guard"), "{stdout}");

    let eval = |args: &[&str]| {
        let out = portcullis()
            .args(["eval", "--config", &example()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = eval(&["--tool", "run_query", "--args", r#"{"query": "SELECT 1"}"#]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = eval(&[
        "--tool",
        "run_query",
        "--args",
        r#"{"query": "DROP TABLE users"}"#,
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("sql_safety rule"), "{out}");
    let (code, _) = eval(&[
        "--tool",
        "run_admin_query",
        "--args",
        r#"{"query": "DELETE FROM users"}"#,
    ]);
    assert_eq!(code, Some(3));
    let (code, out) = eval(&[
        "--tool",
        "get_customer",
        "--result",
        r#"{"email":"ann@example.com"}"#,
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("[REDACTED:email]") && !out.contains("ann@example.com"),
        "{out}"
    );
}

#[test]
fn enforcers_list_shows_every_enforcer_in_text_and_json() {
    let out = portcullis()
        .args(["enforcers", "list", "--config", &example()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["business_hours", "sql_safety", "pii_guard"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(
        text.contains("NAME") && text.contains("SHA256") && text.contains("CACHE"),
        "{text}"
    );

    let out = portcullis()
        .args(["enforcers", "list", "--config", &example(), "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pii = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "pii_guard")
        .unwrap();
    assert_eq!(pii["phases"], serde_json::json!(["after"]));
    assert_eq!(pii["memory_mib"], 64);
    assert_eq!(pii["sha256"].as_str().unwrap().len(), 64);
    assert!(pii["size"].as_u64().unwrap() > 1_000_000);
    assert!(pii["cache_hit"].is_boolean() && pii["load_ms"].is_number());
}

#[test]
fn enforcers_componentize_turns_a_core_module_into_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(
        &core,
        enforcer_module("made", Body::Verdict(0, String::new())),
    )
    .unwrap();
    let out_path = dir.path().join("enf/made.wasm");
    std::fs::create_dir(dir.path().join("enf")).unwrap();
    let out = portcullis()
        .args(["enforcers", "componentize"])
        .arg(&core)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    assert_eq!(
        &bytes[4..8],
        &[0x0d, 0, 1, 0],
        "a component, not a core module"
    );
    std::fs::write(dir.path().join("p.yaml"), "config:\n  enforcers_dir: enf\n").unwrap();
    let out = portcullis()
        .args(["enforcers", "list", "--config"])
        .arg(dir.path().join("p.yaml"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("made"));

    std::fs::write(&core, b"junk").unwrap();
    let out = portcullis()
        .args(["enforcers", "componentize"])
        .arg(&core)
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot turn this core module into a component")
    );
}

#[test]
fn watch_reports_reloads_and_rejected_changes() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "policies:\n  - \"bf:a:tool_access:allow\"\n").unwrap();
    let mut child = portcullis()
        .args(["watch", "--config"])
        .arg(&policy)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = |want: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            match lines.next() {
                Some(Ok(line)) if line.contains(want) => return line,
                Some(Ok(_)) => continue,
                _ => break,
            }
        }
        panic!("watch never printed {want:?}");
    };
    let first = next("watching");
    assert!(first.contains("1 rules"), "{first}");
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(
        &policy,
        "policies:\n  - \"bf:a:tool_access:allow\"\n  - \"bf:b:tool_access:deny\"\n",
    )
    .unwrap();
    let line = next("reloaded");
    assert!(line.contains("2 rules"), "{line}");
    std::fs::write(&policy, "policies:\n  - \"bf:a:tool_access:alow\"\n").unwrap();
    next("reload failed, keeping the last good policy");
    let line = next("unknown action");
    assert!(line.contains("p.yaml:2:5"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
}
