//! Table-driven tests of the SQL checks: each row is parameters, SQL and what must happen.

use super::*;

/// What a row expects.
#[derive(Debug)]
enum Expect {
    /// No violation.
    Clean,
    /// At least one violation, the first containing this text.
    Flag(&'static str),
    /// The parser refuses the SQL with a message containing this text.
    ParseError(&'static str),
}
use Expect::{Clean, Flag, ParseError};

fn p(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn run_table(rows: &[(&[&str], &str, Expect)]) {
    for (params, sql, expect) in rows {
        let config = parse_params(&p(params)).unwrap_or_else(|e| panic!("{params:?}: {e}"));
        let got = violations(&config, sql);
        let ok = match (&got, expect) {
            (Ok(v), Clean) => v.is_empty(),
            (Ok(v), Flag(text)) => v.first().is_some_and(|first| first.contains(text)),
            (Err(e), ParseError(text)) => e.contains(text),
            _ => false,
        };
        assert!(ok, "{params:?} {sql:?}: expected {expect:?}, got {got:?}");
    }
}

#[test]
fn read_only_reads_the_tree_not_the_text() {
    let ro: &[&str] = &["read_only"];
    run_table(&[
        (ro, "SELECT 1", Clean),
        (ro, "-- x\nSELECT 1", Clean),
        (ro, "/* DROP */ SELECT 1", Clean),
        (ro, "SELECT 1 -- ; DROP TABLE t", Clean),
        (ro, "sElEcT * FrOm t WhErE a = 1", Clean),
        (ro, "SELECT 'DROP TABLE x'", Clean),
        (ro, "SELECT 'a''; DELETE FROM t; --'", Clean),
        (ro, "SELECT \"drop\" FROM \"delete\"", Clean),
        (ro, "SELECT a FROM t UNION SELECT b FROM u", Clean),
        (ro, "SELECT * FROM t WHERE id IN (SELECT id FROM u)", Clean),
        (ro, "VALUES (1), (2)", Clean),
        (
            ro,
            "DROP TABLE t",
            Flag("not read-only: DROP statement: \"DROP TABLE t\""),
        ),
        (ro, "dRoP tAbLe t", Flag("not read-only: DROP statement")),
        (
            ro,
            "/* SELECT */ DELETE FROM t",
            Flag("not read-only: DELETE statement"),
        ),
        (
            ro,
            "INSERT INTO t VALUES (1)",
            Flag("not read-only: INSERT"),
        ),
        (
            ro,
            "UPDATE t SET a = 1 WHERE b = 2",
            Flag("not read-only: UPDATE"),
        ),
        (ro, "CREATE TABLE t (a INT)", Flag("not read-only: CREATE")),
        (ro, "SET x = 1", Flag("not read-only: SET")),
        (ro, "BEGIN", Flag("not read-only: TRANSACTION")),
        (ro, "CALL p()", Flag("not read-only: CALL")),
        (ro, "", Flag("no SQL statement")),
        (ro, "-- only a comment", Flag("no SQL statement")),
    ]);
}

#[test]
fn ctes_read_only_and_data_modifying() {
    let ro: &[&str] = &["read_only"];
    let pg: &[&str] = &["read_only", "dialect=postgres"];
    run_table(&[
        (ro, "WITH c AS (SELECT 1 AS x) SELECT * FROM c", Clean),
        (
            ro,
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
            Clean,
        ),
        (
            pg,
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            Flag(
                "not read-only: DELETE statement inside another statement: \"DELETE FROM t RETURNING *\"",
            ),
        ),
        (
            pg,
            "WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u",
            Flag("not read-only: UPDATE statement inside another statement"),
        ),
        (
            pg,
            "WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM i",
            Flag("not read-only: INSERT statement inside another statement"),
        ),
        (
            ro,
            "WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c",
            Flag("not read-only: INSERT"),
        ),
        (
            pg,
            "SELECT * FROM a WHERE x IN (WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d)",
            Flag("not read-only: DELETE"),
        ),
    ]);
}

#[test]
fn select_into_and_locking_reads() {
    let ro: &[&str] = &["read_only"];
    let pg: &[&str] = &["read_only", "dialect=postgres"];
    let my: &[&str] = &["read_only", "dialect=mysql"];
    run_table(&[
        (
            pg,
            "SELECT * INTO t2 FROM t",
            Flag("not read-only: SELECT ... INTO creates a table"),
        ),
        (
            ro,
            "SELECT * INTO t2 FROM t",
            Flag("SELECT ... INTO creates a table"),
        ),
        (
            pg,
            "SELECT a FROM t UNION SELECT b INTO t2 FROM u",
            Flag("SELECT ... INTO creates a table"),
        ),
        (
            pg,
            "SELECT * FROM t FOR UPDATE",
            Flag("not read-only: FOR UPDATE locks rows"),
        ),
        (
            pg,
            "SELECT * FROM t FOR SHARE",
            Flag("not read-only: FOR SHARE locks rows"),
        ),
        (
            pg,
            "select * from t for update skip locked",
            Flag("FOR UPDATE"),
        ),
        (
            my,
            "SELECT * FROM t FOR UPDATE",
            Flag("FOR UPDATE locks rows"),
        ),
        (
            pg,
            "SELECT * FROM a WHERE id IN (SELECT id FROM t FOR UPDATE)",
            Flag("FOR UPDATE locks rows"),
        ),
        (
            pg,
            "WITH c AS (SELECT * FROM t FOR UPDATE) SELECT * FROM c",
            Flag("FOR UPDATE"),
        ),
        // Without read_only these are someone else's business.
        (&["dialect=postgres"], "SELECT * FROM t FOR UPDATE", Clean),
    ]);
}

#[test]
fn explain_plans_but_explain_analyze_runs() {
    let ro: &[&str] = &["read_only"];
    let pg: &[&str] = &["read_only", "dialect=postgres"];
    run_table(&[
        (ro, "EXPLAIN SELECT * FROM t", Clean),
        (ro, "EXPLAIN DELETE FROM t", Clean),
        (pg, "EXPLAIN ANALYZE SELECT * FROM t", Clean),
        (
            pg,
            "EXPLAIN ANALYZE DELETE FROM t",
            Flag(
                "not read-only: DELETE statement (EXPLAIN ANALYZE runs the statement it explains)",
            ),
        ),
        (
            pg,
            "EXPLAIN (ANALYZE) DELETE FROM t",
            Flag("EXPLAIN ANALYZE runs"),
        ),
        (
            pg,
            "EXPLAIN (ANALYZE true, VERBOSE) UPDATE t SET a = 1",
            Flag("EXPLAIN ANALYZE runs"),
        ),
        (pg, "EXPLAIN (ANALYZE false) DELETE FROM t", Clean),
        (pg, "EXPLAIN (ANALYZE off) DELETE FROM t", Clean),
        (pg, "EXPLAIN (VERBOSE) DELETE FROM t", Clean),
        (&["deny=DELETE"], "EXPLAIN DELETE FROM t", Clean),
        (
            &["deny=DELETE", "dialect=postgres"],
            "EXPLAIN ANALYZE DELETE FROM t",
            Flag("DELETE statements are not allowed"),
        ),
        (
            &["deny=EXPLAIN"],
            "EXPLAIN SELECT 1",
            Flag("EXPLAIN statements are not allowed"),
        ),
    ]);
}

#[test]
fn stacked_statements() {
    let nm: &[&str] = &["no_multi"];
    run_table(&[
        (nm, "SELECT 1", Clean),
        (nm, "SELECT 1;", Clean),
        (nm, "SELECT ';' AS semi", Clean),
        (nm, "SELECT 1 -- ; DROP TABLE t", Clean),
        (
            nm,
            "SELECT 1; DROP TABLE t",
            Flag(
                "stacked statements: 2 statements where one is allowed: \"SELECT 1; DROP TABLE t\"",
            ),
        ),
        (
            nm,
            "SELECT 1;SELECT 2;SELECT 3",
            Flag("stacked statements: 3 statements"),
        ),
        // Without no_multi each statement is judged on its own.
        (
            &["read_only"],
            "SELECT 1; DROP TABLE t",
            Flag("not read-only: DROP"),
        ),
        (&[], "SELECT 1; DROP TABLE t", Clean),
    ]);
}

#[test]
fn deny_lists() {
    let ddl: &[&str] = &["deny=DROP,TRUNCATE,ALTER"];
    run_table(&[
        (
            ddl,
            "DROP TABLE t",
            Flag("DROP statements are not allowed: \"DROP TABLE t\""),
        ),
        (ddl, "drop view v", Flag("DROP statements are not allowed")),
        (
            ddl,
            "TRUNCATE TABLE t",
            Flag("TRUNCATE statements are not allowed"),
        ),
        (
            ddl,
            "ALTER TABLE t ADD COLUMN c INT",
            Flag("ALTER statements are not allowed"),
        ),
        (ddl, "DELETE FROM t", Clean),
        (ddl, "CREATE TABLE t (a INT)", Clean),
        (ddl, "SELECT 'DROP TABLE t'", Clean),
        (
            &["deny=drop, truncate"],
            "DROP TABLE t",
            Flag("DROP statements"),
        ),
        (
            &["deny=CREATE"],
            "CREATE INDEX i ON t (a)",
            Flag("CREATE statements"),
        ),
        (
            &["deny=CREATE"],
            "CREATE VIEW v AS SELECT 1",
            Flag("CREATE statements"),
        ),
        (
            &["deny=GRANT,REVOKE"],
            "GRANT SELECT ON t TO u",
            Flag("GRANT statements"),
        ),
        (
            &["deny=GRANT,REVOKE"],
            "REVOKE SELECT ON t FROM u",
            Flag("REVOKE statements"),
        ),
        (&["deny=SELECT"], "SELECT 1", Flag("SELECT statements")),
        (
            &["deny=INSERT"],
            "INSERT INTO t VALUES (1)",
            Flag("INSERT statements"),
        ),
        (
            &["deny=UPDATE"],
            "UPDATE t SET a = 1 WHERE b = 1",
            Flag("UPDATE statements"),
        ),
        (
            &["deny=DELETE"],
            "DELETE FROM t WHERE a = 1",
            Flag("DELETE statements"),
        ),
        (
            &["deny=MERGE"],
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            Flag("MERGE statements"),
        ),
        (&["deny=CALL"], "CALL p(1)", Flag("CALL statements")),
        (&["deny=SET"], "SET x = 1", Flag("SET statements")),
        (
            &["deny=DELETE", "dialect=postgres"],
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            Flag("DELETE statements"),
        ),
        (
            &["deny=ATTACH", "dialect=sqlite"],
            "ATTACH DATABASE 'x.db' AS x",
            Flag("ATTACH statements"),
        ),
        (
            &["deny=PRAGMA", "dialect=sqlite"],
            "PRAGMA journal_mode = 'wal'",
            Flag("PRAGMA statements"),
        ),
        (
            &["deny=COPY", "dialect=postgres"],
            "COPY t FROM '/etc/passwd'",
            Flag("COPY statements"),
        ),
        (
            &["deny=INSERT", "dialect=mysql"],
            "REPLACE INTO t VALUES (1)",
            Flag("INSERT statements"),
        ),
        (
            &["deny=SHOW", "dialect=mysql"],
            "SHOW TABLES",
            Flag("SHOW statements"),
        ),
    ]);
}

#[test]
fn require_where() {
    let rw: &[&str] = &["require_where=DELETE,UPDATE"];
    run_table(&[
        (
            rw,
            "DELETE FROM t",
            Flag("DELETE without WHERE: \"DELETE FROM t\""),
        ),
        (rw, "delete from t", Flag("DELETE without WHERE")),
        (rw, "DELETE FROM t WHERE id = 1", Clean),
        (
            rw,
            "UPDATE t SET a = 1",
            Flag("UPDATE without WHERE: \"UPDATE t SET a = 1\""),
        ),
        (rw, "UPDATE t SET a = 1 WHERE id = 2", Clean),
        (
            rw,
            "-- WHERE id = 1\nDELETE FROM t",
            Flag("DELETE without WHERE"),
        ),
        (
            rw,
            "DELETE FROM t -- WHERE id = 1",
            Flag("DELETE without WHERE"),
        ),
        (rw, "UPDATE t SET a = 'WHERE'", Flag("UPDATE without WHERE")),
        (rw, "SELECT * FROM t", Clean),
        (
            &["require_where=DELETE", "dialect=postgres"],
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            Flag("DELETE without WHERE"),
        ),
        (
            &["require_where=DELETE", "dialect=mysql"],
            "DELETE FROM t LIMIT 10",
            Flag("DELETE without WHERE"),
        ),
        (&["require_where=DELETE"], "UPDATE t SET a = 1", Clean),
    ]);
}

#[test]
fn dialects() {
    run_table(&[
        // sqlite
        (
            &["read_only", "dialect=sqlite"],
            "PRAGMA table_info('t')",
            Flag("not read-only: PRAGMA"),
        ),
        (
            &["read_only", "dialect=sqlite"],
            "pragma user_version = 3",
            Flag("not read-only: PRAGMA"),
        ),
        // sqlparser does not know bare-word pragma values: refused as unparseable (fail closed).
        (
            &["read_only", "dialect=sqlite"],
            "PRAGMA journal_mode = WAL",
            ParseError("sql parser error"),
        ),
        (
            &["read_only", "dialect=sqlite"],
            "SELECT * FROM t LIMIT 1",
            Clean,
        ),
        (
            &["deny=DROP", "dialect=sqlite"],
            "DROP TABLE IF EXISTS t",
            Flag("DROP statements"),
        ),
        // mysql: backticks
        (
            &["read_only", "dialect=mysql"],
            "SELECT `select` FROM `from` WHERE `drop` = 1",
            Clean,
        ),
        (
            &["read_only", "dialect=mysql"],
            "DROP TABLE `t`",
            Flag("not read-only: DROP"),
        ),
        (&["read_only", "dialect=mysql"], "SHOW TABLES", Clean),
        (&["read_only", "dialect=mysql"], "DESCRIBE t", Clean),
        (
            &["read_only", "dialect=mysql"],
            "SELECT * FROM t LIMIT 5, 10",
            Clean,
        ),
        // postgres: casts, dollar quotes, RETURNING
        (
            &["read_only", "dialect=postgres"],
            "SELECT '1'::int, now()::date",
            Clean,
        ),
        (
            &["read_only", "dialect=postgres"],
            "SELECT $$DROP TABLE t$$",
            Clean,
        ),
        (
            &["read_only", "dialect=postgres"],
            "INSERT INTO t VALUES (1) RETURNING id",
            Flag("not read-only: INSERT"),
        ),
        (
            &["read_only", "dialect=postgres"],
            "SHOW search_path",
            Clean,
        ),
        // generic
        (&["read_only"], "SELECT CAST(a AS INT) FROM t", Clean),
        (
            &["read_only", "dialect=generic"],
            "TRUNCATE TABLE t",
            Flag("not read-only: TRUNCATE"),
        ),
    ]);
}

#[test]
fn unparseable_sql_reports_the_parser_message() {
    run_table(&[
        (&["read_only"], "SELEC 1", ParseError("sql parser error")),
        (&["read_only"], "SELECT * FROM", ParseError("Expected")),
        (
            &["read_only"],
            "SELECT 'unterminated",
            ParseError("Unterminated string literal"),
        ),
        (&[], "DROP", ParseError("sql parser error")),
        (
            &["dialect=sqlite"],
            "SELECT 1 FROM t WHERE",
            ParseError("Expected"),
        ),
    ]);
}

#[test]
fn verdicts_follow_the_action() {
    let ro = p(&["read_only"]);
    let select = r#"{"query": "SELECT 1"}"#;
    let drop = r#"{"sql": "DROP TABLE t"}"#;
    for action in [Action::Allow, Action::Deny, Action::Elicit] {
        assert_eq!(
            decide(action, "run_query", select, &ro),
            Verdict::Allow,
            "{action:?}"
        );
    }
    let reason = "SQL refused: not read-only: DROP statement: \"DROP TABLE t\"";
    assert_eq!(
        decide(Action::Deny, "run_query", drop, &ro),
        Verdict::Deny(reason.into())
    );
    // An allow rule grants only when its check passes.
    assert_eq!(
        decide(Action::Allow, "run_query", drop, &ro),
        Verdict::Deny(reason.into())
    );
    assert_eq!(
        decide(Action::Elicit, "run_query", drop, &ro),
        Verdict::Elicit(
            "run_query wants to run SQL that sql_safety flags: not read-only: DROP statement: \"DROP TABLE t\". Run it anyway?"
                .into()
        )
    );
    let stacked = r#"{"query": "SELECT 1; DROP TABLE t"}"#;
    match decide(
        Action::Deny,
        "run_query",
        stacked,
        &p(&["read_only", "no_multi"]),
    ) {
        Verdict::Deny(m) => assert!(
            m.starts_with("SQL refused: stacked statements") && m.ends_with("(and 1 more)"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unparseable_sql_denies_or_asks() {
    let bad = r#"{"query": "SELEC 1"}"#;
    let params = p(&["read_only", "dialect=sqlite"]);
    match decide(Action::Deny, "run_query", bad, &params) {
        Verdict::Deny(m) => assert!(
            m.starts_with("SQL refused: cannot parse the SQL in argument query as sqlite SQL: sql parser error: "),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    match decide(Action::Elicit, "run_query", bad, &params) {
        Verdict::Elicit(m) => assert!(m.contains("cannot parse the SQL in argument query"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn finding_the_sql_argument() {
    let ro = p(&["read_only"]);
    let deny =
        |args: &str, params: &[String]| match decide(Action::Elicit, "run_query", args, params) {
            Verdict::Deny(m) => m,
            other => panic!("{args}: {other:?}"),
        };
    // `query` wins over `sql`.
    assert_eq!(
        decide(
            Action::Deny,
            "t",
            r#"{"query": "SELECT 1", "sql": "DROP TABLE t"}"#,
            &ro
        ),
        Verdict::Allow
    );
    assert_eq!(
        deny("{}", &ro),
        "sql_safety: no SQL found in argument query or sql"
    );
    assert_eq!(
        deny(r#"{"q": "DROP TABLE t"}"#, &ro),
        "sql_safety: no SQL found in argument query or sql"
    );
    assert_eq!(
        deny(r#"{"query": 5}"#, &ro),
        "sql_safety: argument query is a number, not a string of SQL"
    );
    assert_eq!(
        deny(r#"{"sql": null}"#, &ro),
        "sql_safety: argument sql is null, not a string of SQL"
    );
    assert_eq!(
        deny(r#"{"query": ["SELECT 1"]}"#, &ro),
        "sql_safety: argument query is an array, not a string of SQL"
    );
    assert!(
        deny("not json", &ro).starts_with("sql_safety: the call's arguments are not valid JSON")
    );
    assert_eq!(
        deny("[1]", &ro),
        "sql_safety: the call's arguments are not a JSON object"
    );
    // arg= overrides the defaults entirely.
    let custom = p(&["read_only", "arg=statement"]);
    assert!(matches!(
        decide(Action::Deny, "t", r#"{"statement": "DROP TABLE t", "query": "SELECT 1"}"#, &custom),
        Verdict::Deny(m) if m.contains("DROP")
    ));
    assert_eq!(
        decide(Action::Deny, "t", r#"{"statement": "SELECT 1"}"#, &custom),
        Verdict::Allow
    );
    assert_eq!(
        deny(r#"{"query": "SELECT 1"}"#, &custom),
        "sql_safety: no SQL found in argument statement"
    );
    // Oversized SQL is refused unread.
    let huge =
        serde_json::json!({ "query": format!("SELECT '{}'", "x".repeat(DEFAULT_MAX_BYTES)) })
            .to_string();
    assert_eq!(
        deny(&huge, &ro),
        "sql_safety: the SQL in argument query is 16393 bytes; at most 16384 are checked (max_bytes=)"
    );
    let raised = p(&["read_only", "max_bytes=32768"]);
    assert_eq!(decide(Action::Deny, "t", &huge, &raised), Verdict::Allow);
    // Bad parameters at enforce time fail closed.
    assert_eq!(
        deny(r#"{"query": "SELECT 1"}"#, &p(&["dialect=oracle"])),
        "sql_safety: unknown dialect \"oracle\": expected sqlite, postgres, mysql or generic"
    );
}

#[test]
fn long_statements_are_quoted_short() {
    let sql = format!(
        "DROP TABLE {}",
        (0..40)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let config = parse_params(&p(&["read_only"])).expect("params");
    let found = violations(&config, &sql).expect("parses");
    let first = found.first().expect("a violation");
    assert!(first.ends_with("...\""), "{first}");
    assert!(first.len() < 140, "{first}");
    assert_eq!(quote("a  \n b"), "\"a b\"");
    assert_eq!(
        quote(&"é".repeat(100)),
        format!("\"{}...\"", "é".repeat(QUOTE_CHARS))
    );
}

#[test]
fn valid_parameter_lists() {
    for params in [
        &[][..],
        &["read_only"],
        &["READ_ONLY", "dialect=SQLite"],
        &["read_only", "dialect=postgres", "no_multi"],
        &["dialect=postgresql"],
        &["deny=DROP,TRUNCATE,ALTER"],
        &[
            "deny=select,insert,update,delete,merge,create,drop,alter,truncate,grant,revoke,attach,pragma,copy,call,set",
        ],
        &["require_where=DELETE,UPDATE"],
        &["require_where=update"],
        &["arg=statement", "no_multi"],
        &["max_bytes=1"],
        &["max_bytes=16777216"],
    ] {
        if let Err(e) = parse_params(&p(params)) {
            panic!("{params:?}: {e}");
        }
    }
}

#[test]
fn validation_messages() {
    let rows: &[(&[&str], &str)] = &[
        (
            &["dialect=postgress"],
            "unknown dialect \"postgress\": expected sqlite, postgres, mysql or generic",
        ),
        (
            &["readonly"],
            "unknown parameter \"readonly\" (did you mean read_only?): expected read_only, no_multi",
        ),
        (&["no-multi"], "(did you mean no_multi?)"),
        (&["foo"], "unknown parameter \"foo\": expected read_only"),
        (&["limit=5"], "unknown parameter \"limit=5\""),
        (
            &["deny="],
            "parameter deny needs a value (\"deny=\"): expected a list of statement kinds",
        ),
        (&["deny"], "parameter deny needs a value"),
        (&["deny=DROP,,ALTER"], "deny: empty item in \"DROP,,ALTER\""),
        (&["deny=DROP,"], "deny: empty item"),
        (
            &["deny=DROPP"],
            "deny: unknown statement kind \"DROPP\": expected one of SELECT INSERT",
        ),
        (&["require_where="], "parameter require_where needs a value"),
        (
            &["require_where=INSERT"],
            "require_where: INSERT has no WHERE clause to require",
        ),
        (
            &["require_where=DELET"],
            "require_where: unknown statement kind \"DELET\"",
        ),
        (&["read_only=true"], "parameter read_only takes no value"),
        (&["arg"], "parameter arg needs a value"),
        (&["arg="], "parameter arg needs a value"),
        (&["dialect="], "parameter dialect needs a value"),
        (
            &["read_only", "read_only"],
            "parameter read_only given twice",
        ),
        (&["deny=DROP", "deny=ALTER"], "parameter deny given twice"),
        (&["max_bytes="], "parameter max_bytes needs a value"),
        (
            &["max_bytes=0"],
            "bad max_bytes \"0\": expected a whole number of bytes from 1 to 16777216",
        ),
        (&["max_bytes=64k"], "bad max_bytes \"64k\""),
        (&["max_bytes=16777217"], "bad max_bytes"),
    ];
    for (params, want) in rows {
        match parse_params(&p(params)) {
            Err(e) => assert!(e.contains(want), "{params:?}: {e}"),
            Ok(c) => panic!("{params:?} accepted: {c:?}"),
        }
    }
}

#[test]
fn deep_trees_are_refused_before_anything_recurses() {
    let deep = [
        format!("SELECT 1{}", " + 1".repeat(20_000)),
        format!("DELETE FROM t WHERE a = 1{}", " OR a = 1".repeat(10_000)),
        format!("SELECT 1{}", " UNION SELECT 1".repeat(5_000)),
        format!("SELECT 1{}", "::int".repeat(10_000)),
    ];
    let config = parse_params(&p(&["read_only", "deny=SELECT"])).expect("params");
    for sql in &deep {
        let found = violations(&config, sql).expect("parses");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("nested more than 400 levels deep"),
            "{}",
            found[0]
        );
    }
    // Long but flat or shallow SQL is fine.
    let rows = (0..2_000)
        .map(|i| format!("({i}, 'x')"))
        .collect::<Vec<_>>()
        .join(", ");
    let ok = [
        format!("SELECT 1{}", " + 1".repeat(300)),
        format!(
            "SELECT a FROM t WHERE a IN ({})",
            (0..5_000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("INSERT INTO t VALUES {rows}"),
    ];
    let config = parse_params(&p(&["deny=DROP"])).expect("params");
    for sql in &ok {
        assert_eq!(violations(&config, sql), Ok(vec![]), "{}", &sql[..60]);
    }
}
