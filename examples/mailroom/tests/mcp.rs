//! Mailroom in process: rmcp's own client against the real server behind the example
//! policies, over an in-memory duplex stream, and against the bare server for comparison.

#![allow(deprecated)]

mod common;

use common::*;
use rmcp::ServiceExt;
use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
use serde_json::json;

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    let mut n: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    n.sort();
    n
}

#[tokio::test]
async fn tools_list_leaves_out_what_the_policy_denies() {
    let client = connect("mailroom.yaml", TestClient::new(Answer::Accept)).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(
        names(&tools),
        ["get_user_profile", "read_emails", "run_query", "send_email"]
    );
    for t in &tools {
        assert!(
            t.input_schema.get("properties").is_some(),
            "{} has no input schema",
            t.name
        );
        assert!(t.output_schema.is_some(), "{} has no output schema", t.name);
    }
    let bare = connect_bare(TestClient::new(Answer::Accept)).await;
    let all = bare.list_all_tools().await.unwrap();
    assert_eq!(
        names(&all),
        [
            "admin_tool",
            "get_user_profile",
            "read_emails",
            "run_query",
            "send_email"
        ]
    );
}

#[tokio::test]
async fn admin_tool_is_denied_with_the_reason_and_never_runs() {
    let client = connect("mailroom.yaml", TestClient::new(Answer::Accept)).await;
    let r = call_tool(&client, "admin_tool", json!({"action": "purge_sent"})).await;
    assert_denied(&r, &["Denied by policy", "admin_tool", "mailroom.yaml"]);
    let decision = &r.meta.as_ref().expect("decision in _meta").0["portcullis/decision"];
    assert_eq!(decision["effect"], "deny");
    // The sent folder is intact: the server was never called.
    let sent = call_tool(&client, "read_emails", json!({"folder": "sent"})).await;
    assert_eq!(structured(&sent)["total"], 1);
}

#[tokio::test]
async fn run_query_select_returns_rows() {
    let client = connect("mailroom.yaml", TestClient::new(Answer::Accept)).await;
    let r = call_tool(
        &client,
        "run_query",
        json!({"query": "SELECT id, name, plan FROM users ORDER BY id"}),
    )
    .await;
    let s = structured(&r);
    assert_eq!(s["columns"], json!(["id", "name", "plan"]));
    assert_eq!(s["row_count"], 3);
    assert_eq!(
        s["rows"][0],
        json!({"id": "u1", "name": "Ann Archer", "plan": "pro"})
    );
    let joined = call_tool(
        &client,
        "run_query",
        json!({"query": "SELECT u.name, sum(o.quantity) AS items FROM orders o JOIN users u ON u.id = o.user_id GROUP BY u.name ORDER BY items DESC"}),
    )
    .await;
    assert_eq!(structured(&joined)["rows"][0]["items"], 10);
}

#[tokio::test]
async fn sql_safety_denies_writes_and_stacked_statements() {
    let client = connect("mailroom.yaml", TestClient::new(Answer::Accept)).await;
    for (query, why) in [
        ("DROP TABLE users", "DROP"),
        ("DELETE FROM orders", "DELETE"),
        ("SELECT 1; DROP TABLE users", "statement"),
        ("SELECT 1; SELECT 2", "stacked statements"),
        ("/* harmless */ UPDATE users SET plan = 'free'", "UPDATE"),
        (
            "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
            "read-only",
        ),
    ] {
        let r = call_tool(&client, "run_query", json!({"query": query})).await;
        assert_denied(&r, &["sql_safety", why]);
    }
    // Nothing ran: every table and row is still there.
    let users = call_tool(
        &client,
        "run_query",
        json!({"query": "SELECT count(*) AS n FROM users"}),
    )
    .await;
    assert_eq!(structured(&users)["rows"][0]["n"], 3);
    let orders = call_tool(
        &client,
        "run_query",
        json!({"query": "SELECT count(*) AS n FROM orders"}),
    )
    .await;
    assert_eq!(structured(&orders)["rows"][0]["n"], 5);
}

#[tokio::test]
async fn the_bare_server_runs_whatever_sql_it_is_given() {
    // The same server without the layer: the enforcer, not the server, stopped DROP TABLE.
    let client = connect_bare(TestClient::new(Answer::Accept)).await;
    let r = call_tool(
        &client,
        "run_query",
        json!({"query": "SELECT 1 AS one; DROP TABLE orders"}),
    )
    .await;
    assert_eq!(structured(&r)["statements"], 2);
    let gone = call_tool(
        &client,
        "run_query",
        json!({"query": "SELECT * FROM orders"}),
    )
    .await;
    assert_eq!(gone.is_error, Some(true));
    assert!(text(&gone).contains("no such table"), "{}", text(&gone));
    // ... and shows the SSN.
    let p = call_tool(&client, "get_user_profile", json!({"user_id": "u1"})).await;
    assert_eq!(
        structured(&p)["user_pii"]["social_security_number"],
        "123-45-6789"
    );
}

#[tokio::test]
async fn profile_pii_is_redacted_in_both_views_and_matches_the_advertised_schema() {
    let client = connect("mailroom.yaml", TestClient::new(Answer::Accept)).await;
    let r = call_tool(&client, "get_user_profile", json!({"user_id": "u1"})).await;
    let s = structured(&r); // also checks the JSON text item says the same
    assert_eq!(s["user_pii"]["social_security_number"], "[REDACTED]");
    assert_eq!(s["user_pii"]["bank"]["account_number"], "[REDACTED]");
    assert_eq!(s["user_pii"]["bank"]["iban"], "DE89370400440532013000");
    assert_eq!(s["user_pii"]["phone"], "+1-202-555-0147");
    assert_eq!(s["addresses"][1]["city"], "Shelbyville");
    assert!(!text(&r).contains("123-45-6789"));
    let schema = output_schema(&client, "get_user_profile").await;
    assert_eq!(
        schema_errors(&schema, &s),
        Vec::<String>::new(),
        "schema: {schema}"
    );
    // The check has teeth: the same schema refuses a malformed profile.
    let mut broken = s.clone();
    broken["user_pii"]["bank"] = json!("gone");
    assert!(!schema_errors(&schema, &broken).is_empty());
    // Unknown users are a tool error naming the known ones.
    let missing = call_tool(&client, "get_user_profile", json!({"user_id": "u9"})).await;
    assert_eq!(missing.is_error, Some(true));
    assert!(text(&missing).contains("u1, u2, u3"), "{}", text(&missing));
}

#[tokio::test]
async fn profile_lookups_are_limited_by_allow_attempts() {
    let client = connect("mailroom.yaml", TestClient::new(Answer::Accept)).await;
    for i in 0..20 {
        let r = call_tool(&client, "get_user_profile", json!({"user_id": "u2"})).await;
        assert_ne!(r.is_error, Some(true), "call {i}: {}", text(&r));
    }
    let r = call_tool(&client, "get_user_profile", json!({"user_id": "u2"})).await;
    assert_denied(&r, &["get_user_profile", "20"]);
}

#[tokio::test]
async fn send_email_asks_once_and_remembers_an_approval() {
    let answers = TestClient::new(Answer::Accept);
    let client = connect("mailroom.yaml", answers.clone()).await;
    let mail = json!({"to": "bob@example.com", "subject": "hi", "body": "lunch?"});
    let r = call_tool(&client, "send_email", mail.clone()).await;
    assert_eq!(structured(&r)["to"], "bob@example.com");
    assert_eq!(answers.asked(), 1);
    let q = answers.last_question();
    assert!(q.contains("send_email") && q.contains("1 hour"), "{q}");
    let again = call_tool(&client, "send_email", mail).await;
    assert_eq!(structured(&again)["subject"], "hi");
    assert_eq!(answers.asked(), 1, "asked again after an approval");
    let sent = call_tool(&client, "read_emails", json!({"folder": "sent"})).await;
    assert_eq!(structured(&sent)["total"], 3);
}

#[tokio::test]
async fn send_email_declined_or_cancelled_is_denied_and_asked_again() {
    for answer in [Answer::Decline, Answer::Cancel] {
        let answers = TestClient::new(answer);
        let client = connect("mailroom.yaml", answers.clone()).await;
        let mail = json!({"to": "bob@example.com", "subject": "hi", "body": "x"});
        for round in 1..=2 {
            let r = call_tool(&client, "send_email", mail.clone()).await;
            assert_denied(&r, &["declined"]);
            assert_eq!(answers.asked(), round, "{answer:?}");
        }
        let sent = call_tool(&client, "read_emails", json!({"folder": "sent"})).await;
        assert_eq!(structured(&sent)["total"], 1, "{answer:?}: mail went out");
    }
}

#[tokio::test]
async fn attachments_are_shown_only_after_approval() {
    for (answer, shown) in [(Answer::Accept, true), (Answer::Decline, false)] {
        let answers = TestClient::new(answer);
        let client = connect("mailroom.yaml", answers.clone()).await;
        for _ in 0..2 {
            let r = call_tool(&client, "read_emails", json!({"limit": 5})).await;
            let s = structured(&r);
            let newest = &s["emails"][0];
            assert_eq!(newest["id"], "m3");
            assert!(newest["body"].as_str().is_some_and(|b| !b.is_empty()));
            if shown {
                assert_eq!(newest["attachments"][1]["name"], "temporary-password.txt");
            } else {
                assert_eq!(newest["attachments"], "[REDACTED]");
                assert!(!text(&r).contains("temporary-password"));
            }
            let schema = output_schema(&client, "read_emails").await;
            assert_eq!(schema_errors(&schema, &s), Vec::<String>::new());
        }
        assert_eq!(answers.asked(), 1, "{answer:?}: the answer is remembered");
        assert!(answers.last_question().contains("emails[*].attachments"));
    }
}

#[tokio::test]
async fn resources_and_prompts_follow_their_rules() {
    let answers = TestClient::new(Answer::Decline);
    let client = connect("mailroom.yaml", answers.clone()).await;
    let resources = client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(
        uris.contains(&"mail://inbox/m1") && uris.contains(&"mail://sent/s1"),
        "{uris:?}"
    );
    let inbox = client
        .read_resource(ReadResourceRequestParams::new("mail://inbox/m1"))
        .await
        .unwrap();
    assert_eq!(inbox.contents.len(), 1);
    let draft = client
        .read_resource(ReadResourceRequestParams::new("mail://drafts/d1"))
        .await
        .unwrap_err();
    assert!(draft.to_string().contains("declined"), "{draft}");
    assert_eq!(answers.asked(), 1);
    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["summarize_inbox"]);
    let summary = client
        .get_prompt(GetPromptRequestParams::new("summarize_inbox"))
        .await
        .unwrap();
    assert!(format!("{:?}", summary.messages).contains("Q3 numbers"));
    let reply = client
        .get_prompt(GetPromptRequestParams::new("draft_reply"))
        .await
        .unwrap_err();
    assert!(reply.to_string().contains("Denied by policy"), "{reply}");
    // The bare server lists and serves both prompts.
    let bare = connect_bare(TestClient::new(Answer::Accept)).await;
    assert_eq!(bare.list_all_prompts().await.unwrap().len(), 2);
}

#[tokio::test]
async fn every_example_policy_loads() {
    require_enforcers();
    let mut checked = 0;
    for entry in std::fs::read_dir(policies()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // api-keys.yaml is a key file, not a policy.
        if path.extension().is_some_and(|e| e == "yaml") && text.contains("policies:") {
            portcullis::engine::load_snapshot(&path, Some(runtime()))
                .unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

fn api_key(key: &'static str) -> impl Fn(&str) -> Option<String> {
    move |name| (name == "PORTCULLIS_API_KEY").then(|| key.to_string())
}

const STAFF: &str = "mailroom-demo-staff-key-00001";
const SUPPORT: &str = "mailroom-demo-support-key-0002";
const ADMIN: &str = "mailroom-demo-admin-key-00003";
const BOT: &str = "mailroom-demo-bot-key-0000004";

#[tokio::test]
async fn structured_rules_follow_roles_and_conditions() {
    // Support: reads the inbox but not drafts, sees profiles without PII.
    let support = connect_with_env(
        "structured.yaml",
        TestClient::new(Answer::Accept),
        &api_key(SUPPORT),
    )
    .await;
    let listed = names(&support.list_all_tools().await.unwrap());
    assert_eq!(listed, ["get_user_profile", "read_emails"]);
    assert_ne!(
        call_tool(&support, "read_emails", json!({"limit": 50}))
            .await
            .is_error,
        Some(true)
    );
    assert_denied(
        &call_tool(&support, "read_emails", json!({"limit": 51})).await,
        &["read_emails"],
    );
    assert_denied(
        &call_tool(&support, "read_emails", json!({"folder": "drafts"})).await,
        &["support-not-in-drafts"],
    );
    let p = structured(&call_tool(&support, "get_user_profile", json!({"user_id": "u3"})).await);
    assert!(p.get("user_pii").is_none(), "{p}");
    assert_eq!(p["addresses"][0], json!({"city": "Paris"}));
    let schema = output_schema(&support, "get_user_profile").await;
    assert_eq!(
        schema_errors(&schema, &p),
        Vec::<String>::new(),
        "schema: {schema}"
    );

    // Staff (Ann): mail inside example.com, confirm mail to the board, no secrets by mail.
    let answers = TestClient::new(Answer::Accept);
    let staff = connect_with_env("structured.yaml", answers.clone(), &api_key(STAFF)).await;
    let inside = json!({"to": "carol@example.com", "subject": "notes", "body": "attached"});
    assert_ne!(
        call_tool(&staff, "send_email", inside).await.is_error,
        Some(true)
    );
    let outside = json!({"to": "someone@elsewhere.org", "subject": "notes", "body": "x"});
    assert_denied(
        &call_tool(&staff, "send_email", outside).await,
        &["send_email"],
    );
    let board = json!({"to": "board@example.com", "subject": "plan", "body": "x"});
    assert_ne!(
        call_tool(&staff, "send_email", board).await.is_error,
        Some(true)
    );
    assert_eq!(answers.asked(), 1);
    let secret = json!({"to": "carol@example.com", "subject": "My Password", "body": "x"});
    assert_denied(
        &call_tool(&staff, "send_email", secret).await,
        &["no-secrets-by-mail"],
    );
    let p = structured(&call_tool(&staff, "get_user_profile", json!({"user_id": "u1"})).await);
    assert!(p["user_pii"].get("social_security_number").is_none(), "{p}");
    assert_eq!(p["user_pii"]["phone"], "+1-202-555-0147");
    assert_ne!(
        call_tool(&staff, "run_query", json!({"query": "SELECT 1"}))
            .await
            .is_error,
        Some(true)
    );

    // Admin: may purge sent mail, may not reset the mailbox, runs no SQL.
    let admin = connect_with_env(
        "structured.yaml",
        TestClient::new(Answer::Accept),
        &api_key(ADMIN),
    )
    .await;
    let purge = call_tool(&admin, "admin_tool", json!({"action": "purge_sent"})).await;
    assert_eq!(structured(&purge)["message"], "1 sent emails deleted");
    assert_denied(
        &call_tool(&admin, "admin_tool", json!({"action": "reset_mailbox"})).await,
        &["admin_tool"],
    );
    assert_denied(
        &call_tool(&admin, "run_query", json!({"query": "SELECT 1"})).await,
        &["run_query"],
    );

    // The reporting agent reads the sent folder only.
    let bot = connect_with_env(
        "structured.yaml",
        TestClient::new(Answer::Accept),
        &api_key(BOT),
    )
    .await;
    assert_ne!(
        call_tool(&bot, "read_emails", json!({"folder": "sent"}))
            .await
            .is_error,
        Some(true)
    );
    assert_denied(
        &call_tool(&bot, "read_emails", json!({"folder": "inbox"})).await,
        &["read_emails"],
    );
}

#[tokio::test]
async fn a_wrong_api_key_is_refused() {
    let client = connect_with_env(
        "structured.yaml",
        TestClient::new(Answer::Accept),
        &api_key("not-a-key-but-long-enough"),
    )
    .await;
    let err = client.list_all_tools().await.unwrap_err();
    assert!(err.to_string().contains("unauthorized"), "{err}");
}

/// Whether `now` (Unix seconds) is inside 09:00-17:00 Monday to Friday, UTC.
fn utc_office_hours(now: u64) -> bool {
    // 1970-01-01 was a Thursday: day 0 = Thu, so days 2 and 3 of each week are Sat and Sun.
    let day = (now / 86_400) % 7;
    let hour = (now % 86_400) / 3600;
    !matches!(day, 2 | 3) && (9..17).contains(&hour)
}

#[tokio::test]
async fn the_shipped_enforcers_guard_sql_mask_pii_and_keep_hours() {
    // Destructive SQL asks; a declined question denies and nothing is deleted.
    let decline = TestClient::new(Answer::Decline);
    let client = connect("enforcers.yaml", decline.clone()).await;
    let r = call_tool(&client, "run_query", json!({"query": "DELETE FROM orders"})).await;
    assert_denied(&r, &["declined"]);
    assert!(
        decline.last_question().contains("sql_safety"),
        "{}",
        decline.last_question()
    );
    let careful = call_tool(
        &client,
        "run_query",
        json!({"query": "DELETE FROM orders WHERE status = 'cancelled'"}),
    )
    .await;
    assert_eq!(structured(&careful)["changes"], 1);
    assert_eq!(decline.asked(), 1, "a write with WHERE is not asked about");

    // pii_guard masks the addresses in query rows and in mail, in both views.
    let rows = call_tool(
        &client,
        "run_query",
        json!({"query": "SELECT name, email FROM users ORDER BY id"}),
    )
    .await;
    let s = structured(&rows);
    assert_eq!(
        s["rows"][0],
        json!({"name": "Ann Archer", "email": "[REDACTED:email]"})
    );
    let mail = call_tool(&client, "read_emails", json!({})).await;
    let s = structured(&mail);
    assert_eq!(s["emails"][0]["from"], "[REDACTED:email]");
    assert!(!text(&mail).contains("@example.com"));
    let p = structured(&call_tool(&client, "get_user_profile", json!({"user_id": "u1"})).await);
    assert_eq!(p["user_pii"]["phone"], "[REDACTED:phone]");

    // business_hours: admin_tool runs inside 09:00-17:00 Mon-Fri UTC and is asked about outside.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = call_tool(&client, "admin_tool", json!({"action": "purge_sent"})).await;
    if utc_office_hours(now) {
        assert_eq!(structured(&r)["action"], "purge_sent");
    } else {
        assert_denied(&r, &["declined"]);
        assert!(decline.last_question().contains("outside business hours"));
    }
}

#[test]
fn office_hours_arithmetic() {
    // 2026-11-30 is a Monday.
    let monday = 1_795_996_800; // 2026-11-30T00:00:00Z
    assert!(!utc_office_hours(monday + 8 * 3600));
    assert!(utc_office_hours(monday + 9 * 3600));
    assert!(!utc_office_hours(monday + 17 * 3600));
    assert!(!utc_office_hours(monday - 86_400 + 10 * 3600), "Sunday");
    assert!(
        !utc_office_hours(monday - 2 * 86_400 + 10 * 3600),
        "Saturday"
    );
    assert!(utc_office_hours(monday - 3 * 86_400 + 10 * 3600), "Friday");
}

#[tokio::test]
async fn a_policy_change_takes_effect_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let write = |rule: &str| {
        let text = format!(
            "config:\n  default_effect: deny\npolicies:\n  - \"bf:read_emails:tool_access:{rule}\"\n"
        );
        let tmp = dir.path().join(".policy.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write("allow");
    let policy = mailroom::Policy::load(
        &path,
        portcullis::mcp::Transport::Stdio,
        Some(runtime()),
        &|_| None,
    )
    .unwrap();
    let watcher = policy.watch(&path).unwrap();
    let server = policy.layer.wrap(mailroom::Mailroom::new(
        mailroom::Database::in_memory().unwrap(),
    ));
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let client = TestClient::new(Answer::Accept)
        .serve(client_io)
        .await
        .unwrap();
    assert_ne!(
        call_tool(&client, "read_emails", json!({})).await.is_error,
        Some(true)
    );
    write("deny");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = call_tool(&client, "read_emails", json!({})).await;
        if r.is_error == Some(true) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the change was not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A broken edit is refused and the last good policy stays.
    std::fs::write(&path, "config: [oops\n").unwrap();
    let failures = || {
        watcher
            .stats()
            .failures
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    while failures() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the broken edit was not seen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        call_tool(&client, "read_emails", json!({})).await.is_error,
        Some(true)
    );
}
