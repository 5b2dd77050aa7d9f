//! The SQLite database behind `run_query`.
//!
//! The server runs whatever SQL it is given: deciding which statements are acceptable is the
//! policy's job (the `sql_safety` enforcer), and this example exists to show that. What the
//! server does guard against is resource exhaustion, which no policy can judge from the SQL
//! text: every query has a deadline (a progress handler interrupts it), a busy timeout, a row
//! cap, a cap on the bytes of values returned, and SQLite's own length limit on any one value.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Batch, Connection};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::data;

/// Limits that keep one bad query from hanging or exhausting the server.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Wall-clock time a query may run before it is interrupted.
    pub deadline: Duration,
    /// How long to wait for a lock held by another connection (a shared `--db` file).
    pub busy_timeout: Duration,
    /// Rows returned per statement; further rows are not read.
    pub max_rows: usize,
    /// Bytes of text and blobs returned in all; further rows are not read.
    pub max_bytes: usize,
    /// SQLite's limit on the length of any one string or blob (SQLITE_LIMIT_LENGTH).
    pub max_value_bytes: i32,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            deadline: Duration::from_secs(2),
            busy_timeout: Duration::from_secs(1),
            max_rows: 500,
            max_bytes: 1 << 20,
            max_value_bytes: 1 << 20,
        }
    }
}

/// What `run_query` returns: the rows of the last statement that produced any columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueryOutput {
    /// Column names, in order (a repeated name gets a `:2`, `:3`... suffix).
    pub columns: Vec<String>,
    /// One object per row, keyed by column name.
    pub rows: Vec<Map<String, Value>>,
    /// Number of rows returned.
    pub row_count: usize,
    /// Whether rows were left out because of the row or size cap.
    pub truncated: bool,
    /// Number of statements run.
    pub statements: usize,
    /// Rows inserted, updated or deleted by the statements.
    pub changes: u64,
}

/// A shared SQLite connection. Queries run on a blocking thread, one at a time.
#[derive(Clone)]
pub struct Database {
    conn: Arc<Mutex<Connection>>,
    limits: QueryLimits,
}

impl Database {
    /// A fresh in-memory database with the demo tables.
    pub fn in_memory() -> anyhow::Result<Database> {
        let conn = Connection::open_in_memory().context("cannot open an in-memory database")?;
        Database::setup(conn, "the in-memory database")
    }

    /// Opens (or creates) a database file, adding the demo tables when they are missing.
    pub fn open(path: &Path) -> anyhow::Result<Database> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        Database::setup(conn, &path.display().to_string())
    }

    fn setup(conn: Connection, name: &str) -> anyhow::Result<Database> {
        let limits = QueryLimits::default();
        conn.busy_timeout(limits.busy_timeout)
            .with_context(|| format!("{name}: cannot set the busy timeout"))?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
            .with_context(|| format!("{name}: cannot set the length limit"))?;
        seed(&conn).with_context(|| format!("{name}: cannot create the demo tables"))?;
        Ok(Database {
            conn: Arc::new(Mutex::new(conn)),
            limits,
        })
    }

    /// Uses `limits` for later queries.
    pub fn with_limits(mut self, limits: QueryLimits) -> Database {
        self.limits = limits;
        self
    }

    /// Runs `sql` (one or more statements) and returns the rows of the last statement that
    /// has columns. The error is SQLite's message, for the caller.
    pub async fn query(&self, sql: String) -> Result<QueryOutput, String> {
        let conn = self.conn.clone();
        let limits = self.limits;
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave the connection half-changed in a way
            // SQLite would not report itself, so a poisoned lock is still usable.
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            run(&mut conn, &sql, limits)
        })
        .await
        .map_err(|e| format!("the query task failed: {e}"))?
    }
}

fn run(conn: &mut Connection, sql: &str, limits: QueryLimits) -> Result<QueryOutput, String> {
    let deadline = Instant::now() + limits.deadline;
    conn.progress_handler(10_000, Some(move || Instant::now() >= deadline))
        .map_err(|e| e.to_string())?;
    let out = run_batch(conn, sql, limits).map_err(|e| {
        if Instant::now() >= deadline {
            format!(
                "query stopped: it ran longer than {} ms",
                limits.deadline.as_millis()
            )
        } else {
            e.to_string()
        }
    });
    let _ = conn.progress_handler(0, None::<fn() -> bool>);
    out
}

fn run_batch(
    conn: &Connection,
    sql: &str,
    limits: QueryLimits,
) -> Result<QueryOutput, rusqlite::Error> {
    let before = conn.total_changes();
    let mut out = QueryOutput {
        columns: Vec::new(),
        rows: Vec::new(),
        row_count: 0,
        truncated: false,
        statements: 0,
        changes: 0,
    };
    let mut batch = Batch::new(conn, sql);
    let mut bytes = 0usize;
    while let Some(mut stmt) = batch.next()? {
        out.statements += 1;
        let columns = column_names(&stmt);
        let mut rows = Vec::new();
        let mut truncated = false;
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor.next()? {
            if rows.len() == limits.max_rows || bytes > limits.max_bytes {
                truncated = true;
                break;
            }
            let mut object = Map::new();
            for (i, name) in columns.iter().enumerate() {
                let value = row.get_ref(i)?;
                bytes += match value {
                    ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
                    _ => 8,
                };
                object.insert(name.clone(), json_value(value));
            }
            rows.push(object);
        }
        if !columns.is_empty() {
            out.columns = columns;
            out.row_count = rows.len();
            out.rows = rows;
            out.truncated = truncated;
        }
    }
    out.changes = conn.total_changes().saturating_sub(before);
    Ok(out)
}

fn column_names(stmt: &rusqlite::Statement<'_>) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(stmt.column_count());
    for name in stmt.column_names() {
        let mut unique = name.to_string();
        let mut n = 1;
        while names.contains(&unique) {
            n += 1;
            unique = format!("{name}:{n}");
        }
        names.push(unique);
    }
    names
}

fn json_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(format!("<blob, {} bytes>", b.len())),
    }
}

/// Creates the demo tables and rows when the `users` table does not exist yet.
fn seed(conn: &Connection) -> rusqlite::Result<()> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'users'",
        [],
        |r| r.get(0),
    )?;
    if exists {
        return Ok(());
    }
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE users (
             id TEXT PRIMARY KEY,
             name TEXT NOT NULL,
             email TEXT NOT NULL,
             plan TEXT NOT NULL,
             created_at TEXT NOT NULL
         );
         CREATE TABLE products (
             sku TEXT PRIMARY KEY,
             name TEXT NOT NULL,
             price_cents INTEGER NOT NULL
         );
         CREATE TABLE orders (
             id INTEGER PRIMARY KEY,
             user_id TEXT NOT NULL REFERENCES users(id),
             sku TEXT NOT NULL REFERENCES products(sku),
             quantity INTEGER NOT NULL,
             status TEXT NOT NULL,
             ordered_at TEXT NOT NULL
         );
         INSERT INTO products VALUES
             ('WID-1', 'Widget', 1299),
             ('GAD-7', 'Gadget', 4950),
             ('GIZ-3', 'Gizmo', 899);
",
    )?;
    let plans = ["pro", "free", "team"];
    let mut insert = conn.prepare("INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (i, u) in data::users().iter().enumerate() {
        insert.execute((
            &u.user_id,
            &u.name,
            &u.email,
            plans[i % plans.len()],
            format!("2026-0{}-15", i + 1),
        ))?;
    }
    drop(insert);
    // Orders last: they reference users (SQLite enforces foreign keys in this build).
    conn.execute_batch(
        "INSERT INTO orders (user_id, sku, quantity, status, ordered_at) VALUES
             ('u1', 'WID-1', 3, 'shipped', '2026-10-02'),
             ('u1', 'GAD-7', 1, 'processing', '2026-11-20'),
             ('u2', 'GIZ-3', 10, 'shipped', '2026-09-14'),
             ('u3', 'WID-1', 1, 'cancelled', '2026-11-01'),
             ('u3', 'GAD-7', 2, 'shipped', '2026-11-11');
         COMMIT;",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Database {
        Database::in_memory().unwrap()
    }

    #[tokio::test]
    async fn select_returns_rows_as_objects() {
        let out = db()
            .query("SELECT id, name FROM users ORDER BY id".into())
            .await
            .unwrap();
        assert_eq!(out.columns, ["id", "name"]);
        assert_eq!(out.row_count, 3);
        assert_eq!(out.rows[0]["name"], "Ann Archer");
        assert!(!out.truncated);
    }

    #[tokio::test]
    async fn the_server_itself_filters_nothing() {
        let db = db();
        let out = db
            .query(
                "DELETE FROM orders WHERE status = 'cancelled'; SELECT count(*) AS n FROM orders"
                    .into(),
            )
            .await
            .unwrap();
        assert_eq!(out.statements, 2);
        assert_eq!(out.changes, 1);
        assert_eq!(out.rows[0]["n"], 4);
        db.query("DROP TABLE orders".into()).await.unwrap();
        let err = db.query("SELECT * FROM orders".into()).await.unwrap_err();
        assert!(err.contains("no such table"), "{err}");
    }

    #[tokio::test]
    async fn runaway_queries_are_stopped() {
        let db = db().with_limits(QueryLimits {
            deadline: Duration::from_millis(200),
            ..QueryLimits::default()
        });
        let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT count(*) FROM c";
        let start = Instant::now();
        let err = db.query(endless.into()).await.unwrap_err();
        assert!(err.contains("ran longer than 200 ms"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
        // The connection still works afterwards.
        assert_eq!(
            db.query("SELECT 1 AS one".into()).await.unwrap().rows[0]["one"],
            1
        );
    }

    #[tokio::test]
    async fn rows_and_values_are_capped() {
        let many =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";
        let out = db().query(many.into()).await.unwrap();
        assert_eq!(out.row_count, QueryLimits::default().max_rows);
        assert!(out.truncated);
        let err = db()
            .query("SELECT zeroblob(100000000)".into())
            .await
            .unwrap_err();
        assert!(err.contains("too big"), "{err}");
    }

    #[test]
    fn a_file_database_is_seeded_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.db");
        drop(Database::open(&path).unwrap());
        // Opening again keeps what is there instead of seeding twice.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO users VALUES ('u4', 'Dan', 'dan@example.com', 'free', '2026-11-30')",
            [],
        )
        .unwrap();
        drop(conn);
        drop(Database::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 4);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            "this is not SQLite, just some text that is long enough",
        )
        .unwrap();
        let err = format!("{:#}", Database::open(&path).err().unwrap());
        assert!(err.contains("notes.txt"), "{err}");
    }
}
