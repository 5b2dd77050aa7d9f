//! The shipped enforcers (enforcers/dist, built by `bash enforcers/build.sh`), driven through the host exactly as a server would.
//! Table-driven: each row is a call and the verdict the contract promises.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::{NaiveDateTime, TimeZone};
use portcullis::wasm::Runtime;
use portcullis::{Effect, Engine, Request, Subject, ToolResult};
use serde_json::{Value, json};

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../enforcers/dist")
}

/// Compiled artifacts persist under the target directory, so the 12 MB JavaScript component
/// is compiled once, not on every test run.
fn runtime() -> &'static Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
        Runtime::new(Some(cache)).expect("runtime")
    })
}

fn engine(rules: &str) -> Engine {
    let dir = tempfile::tempdir().unwrap();
    for name in ["business_hours", "sql_safety", "pii_guard"] {
        let path = dist().join(format!("{name}.wasm"));
        assert!(
            path.exists(),
            "{} is missing: run `bash scripts/test.sh` (it builds the enforcers)",
            path.display()
        );
    }
    let policy = format!(
        "config:\n  default_effect: deny\n  enforcers_dir: {}\n  limits:\n    timeout_ms: 200\n    enforcers:\n      pii_guard: {{ timeout_ms: 2000, memory_mib: 64 }}\npolicies:\n{rules}",
        dist().display()
    );
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    let snapshot =
        portcullis::engine::load_snapshot(&path, Some(runtime())).unwrap_or_else(|e| panic!("{e}"));
    Engine::new(snapshot)
}

fn load_error(rules: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        "config:\n  enforcers_dir: {}\npolicies:\n{rules}",
        dist().display()
    );
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    match portcullis::engine::load_snapshot(&path, Some(runtime())) {
        Ok(_) => panic!("expected a load error for {rules}"),
        Err(e) => e.to_string(),
    }
}

fn sql(engine: &Engine, tool: &str, query: &str) -> (Effect, String) {
    let d = engine.before(&Request::new(
        Subject::user("u"),
        tool,
        json!({ "query": query }),
    ));
    (d.effect, d.reason.to_string())
}

#[test]
fn sql_safety_contract() {
    let e = engine(concat!(
        "  - \"bf:ro:tool_access:allow\"\n",
        "  - \"bf:ro:sql_safety:deny:read_only\"\n",
        "  - \"bf:guarded:tool_access:allow\"\n",
        "  - \"bf:guarded:sql_safety:deny:deny=DROP,TRUNCATE,ALTER:no_multi:require_where=DELETE,UPDATE\"\n",
        "  - \"bf:ask:tool_access:allow\"\n",
        "  - \"bf:ask:sql_safety:elicit:read_only\"\n",
        "  - \"bf:lite:tool_access:allow\"\n",
        "  - \"bf:lite:sql_safety:deny:read_only:dialect=sqlite\"\n",
        "  - \"bf:pg:tool_access:allow\"\n",
        "  - \"bf:pg:sql_safety:deny:require_where=DELETE:dialect=postgres\"\n",
        "  - \"bf:my:tool_access:allow\"\n",
        "  - \"bf:my:sql_safety:deny:read_only:dialect=mysql\"\n",
    ));
    use Effect::{Allow as A, Deny as D, Elicit as E};
    let rows: &[(&str, &str, Effect)] = &[
        ("ro", "SELECT * FROM users", A),
        ("ro", "-- a comment\nSELECT 1", A),
        ("ro", "/* DROP TABLE x */ SELECT 1", A),
        ("ro", "sElEcT name FrOm users WHERE id = 1", A),
        ("ro", "SELECT 'DROP TABLE users; DELETE FROM x'", A),
        ("ro", "WITH t AS (SELECT 1 AS x) SELECT x FROM t", A),
        ("ro", "EXPLAIN SELECT 1", A),
        ("ro", "DELETE FROM users", D),
        ("ro", "SELECT 1; DROP TABLE users", D),
        (
            "ro",
            "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
            D,
        ),
        ("ro", "SELECT * INTO backup FROM users", D),
        ("ro", "SELECT * FROM users FOR UPDATE", D),
        ("ro", "SELEC * FROM", D),
        ("guarded", "DROP TABLE users", D),
        ("guarded", "truncate users", D),
        ("guarded", "DELETE FROM users", D),
        ("guarded", "DELETE FROM users WHERE id = 3", A),
        ("guarded", "UPDATE users SET a = 1", D),
        ("guarded", "UPDATE users SET a = 1 WHERE id = 2", A),
        (
            "guarded",
            "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)",
            D,
        ),
        ("guarded", "INSERT INTO t VALUES (1)", A),
        ("ask", "DELETE FROM users", E),
        ("ask", "SELECT 1", A),
        ("lite", "PRAGMA table_info(users)", D),
        ("lite", "SELECT * FROM users LIMIT 5", A),
        (
            "pg",
            "DELETE FROM t USING u WHERE t.id = u.id RETURNING t.id",
            A,
        ),
        ("pg", "SELECT '1'::int", A),
        ("my", "SELECT `name` FROM `users`", A),
        ("my", "REPLACE INTO t VALUES (1)", D),
    ];
    for (tool, query, want) in rows {
        let (effect, reason) = sql(&e, tool, query);
        assert_eq!(effect, *want, "{tool}: {query:?} -> {reason}");
        if *want != A {
            assert!(
                reason.contains("sql_safety rule "),
                "reason names the rule: {reason}"
            );
        }
    }
    // Unparseable SQL carries the parser's message; a missing argument is refused.
    let (_, reason) = sql(&e, "ro", "SELEC * FROM");
    assert!(reason.to_lowercase().contains("expected"), "{reason}");
    let d = e.before(&Request::new(Subject::user("u"), "ro", json!({"other": 1})));
    assert_eq!(d.effect, D, "{}", d.reason);
}

#[test]
fn sql_safety_rejects_bad_parameters_at_load() {
    let err = load_error("  - \"bf:q:sql_safety:deny:dialect=postgress\"\n");
    assert!(
        err.contains("enforcer sql_safety rejects this rule"),
        "{err}"
    );
    assert!(err.contains("postgress"), "{err}");
    let err = load_error("  - \"af:q:sql_safety:deny:read_only\"\n");
    assert!(
        err.contains("enforcer sql_safety does not run in the after phase"),
        "{err}"
    );
}

/// Unix ms for a local wall-clock time in a zone.
fn at(zone: chrono_tz::Tz, local: &str) -> u64 {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
    let t = zone.from_local_datetime(&naive).earliest().unwrap();
    t.timestamp_millis() as u64
}

#[test]
fn business_hours_contract() {
    let e = engine(concat!(
        "  - \"bf:office:business_hours:allow:0900-1700:mon-fri:tz=Europe/Berlin\"\n",
        "  - \"bf:night:business_hours:allow:2200-0600:mon-fri:tz=UTC\"\n",
        "  - \"bf:ny:business_hours:allow:0900-1700:daily:tz=America/New_York\"\n",
        "  - \"bf:asked:business_hours:elicit:0900-1700:mon-fri:tz=UTC\"\n",
        // An elicit rule is a guard: inside the window it has no objection, and this grants.
        "  - \"bf:asked:tool_access:allow\"\n",
    ));
    use chrono_tz::{America::New_York, Europe::Berlin, UTC};
    let rows: &[(&str, u64, Effect)] = &[
        // window edges (2026-11-18 is a Wednesday)
        ("office", at(Berlin, "2026-11-18 08:59:59"), Effect::Deny),
        ("office", at(Berlin, "2026-11-18 09:00:00"), Effect::Allow),
        ("office", at(Berlin, "2026-11-18 16:59:59"), Effect::Allow),
        ("office", at(Berlin, "2026-11-18 17:00:00"), Effect::Deny),
        // weekend
        ("office", at(Berlin, "2026-11-21 10:00:00"), Effect::Deny),
        // the zone matters: 09:30 in Berlin is 08:30 UTC
        ("office", at(UTC, "2026-11-18 08:30:00"), Effect::Allow),
        ("office", at(UTC, "2026-11-18 07:30:00"), Effect::Deny),
        // DST: the day after the spring change, 09:00 local is still the start
        ("office", at(Berlin, "2026-03-30 09:00:00"), Effect::Allow),
        ("office", at(Berlin, "2026-03-30 08:59:00"), Effect::Deny),
        // across midnight: Friday 23:00 and Saturday 05:59 belong to Friday's window
        ("night", at(UTC, "2026-11-20 23:00:00"), Effect::Allow),
        ("night", at(UTC, "2026-11-21 05:59:00"), Effect::Allow),
        ("night", at(UTC, "2026-11-21 23:00:00"), Effect::Deny),
        ("night", at(UTC, "2026-11-18 12:00:00"), Effect::Deny),
        // daily, in New York, across the autumn DST change (2026-11-01)
        ("ny", at(New_York, "2026-11-01 09:30:00"), Effect::Allow),
        ("ny", at(New_York, "2026-11-01 08:30:00"), Effect::Deny),
        // elicit instead of deny outside the window
        ("asked", at(UTC, "2026-11-21 10:00:00"), Effect::Elicit),
        ("asked", at(UTC, "2026-11-18 10:00:00"), Effect::Allow),
    ];
    for (tool, now, want) in rows {
        let d = e.before(&Request::new(Subject::user("u"), *tool, json!({})).at(*now));
        assert_eq!(d.effect, *want, "{tool} at {now}: {}", d.reason);
    }
    let err = load_error("  - \"bf:x:business_hours:allow:9-17\"\n");
    assert!(
        err.contains("enforcer business_hours rejects this rule"),
        "{err}"
    );
    let err = load_error("  - \"bf:x:business_hours:allow:tz=Europe/Berlinn\"\n");
    assert!(err.contains("Europe/Berlin"), "{err}");
}

#[test]
fn pii_guard_contract() {
    let e = engine(concat!(
        "  - \"af:profile:pii_guard:deny\"\n",
        "  - \"af:cards:pii_guard:deny:only=card\"\n",
        "  - \"af:ask:pii_guard:elicit\"\n",
    ));
    let result = json!({
        "name": "Ann",
        "email": "ann@example.com",
        "phone": "+1-202-555-0147",
        "card": "4111 1111 1111 1111",
        "order": "4111 1111 1111 1112",
        "released": "2024-01-15T10:30:00Z",
        "version": "1.2.3.4",
        "host": "192.168.1.1"
    });
    let run = |tool: &str| {
        e.after(
            &Request::new(Subject::user("u"), tool, json!({})),
            ToolResult::from_json_value(result.clone()),
        )
    };

    let (d, out) = run("profile");
    assert_eq!(d.effect, Effect::Allow, "{}", d.reason);
    let shown = out.to_mcp_json().to_string();
    for secret in ["ann@example.com", "555-0147", "4111 1111 1111 1111"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    let s: &Value = out.structured.as_ref().unwrap();
    assert_eq!(s["email"], "[REDACTED:email]");
    assert_eq!(s["card"], "[REDACTED:card]");
    // False positives survive.
    for keep in [
        "4111 1111 1111 1112",
        "2024-01-15T10:30:00Z",
        "1.2.3.4",
        "192.168.1.1",
        "Ann",
    ] {
        assert!(shown.contains(keep), "{keep} was masked: {shown}");
    }
    // Text and structured views agree.
    let portcullis::Content::Text(text) = &out.content[0] else {
        panic!()
    };
    assert_eq!(&serde_json::from_str::<Value>(text).unwrap(), s);

    let (_, out) = run("cards");
    let s = out.structured.unwrap();
    assert_eq!(s["card"], "[REDACTED:card]");
    assert_eq!(s["email"], "ann@example.com", "only=card leaves emails");

    let (d, out) = run("ask");
    assert_eq!(d.effect, Effect::Elicit);
    assert!(d.reason.contains("Show it unmasked?"), "{}", d.reason);
    assert!(out.is_error && !out.to_mcp_json().to_string().contains("ann@example.com"));

    let err = load_error("  - \"af:x:pii_guard:deny:only=ssn\"\n");
    assert!(
        err.contains("enforcer pii_guard rejects this rule"),
        "{err}"
    );
}

#[test]
fn shipped_enforcers_are_listed_with_metadata() {
    let e = engine("");
    let s = e.snapshot();
    let names: Vec<&str> = s.enforcers().by_name.keys().map(|k| &**k).collect();
    assert_eq!(names, ["business_hours", "pii_guard", "sql_safety"]);
    let pii = &s.enforcers().get("pii_guard").unwrap().info;
    assert_eq!(pii.phases, [portcullis::Phase::After]);
    assert_eq!((pii.limits.timeout_ms, pii.limits.memory_mib), (2000, 64));
    assert_eq!(pii.sha256.len(), 64);
}
