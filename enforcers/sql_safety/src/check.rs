//! The decision logic of `sql_safety`, free of any WebAssembly glue so that it compiles and is
//! tested on the host target.
//!
//! The SQL is parsed with `sqlparser` and judged on the syntax tree, never on the text, so
//! comments, mixed case and keywords inside string literals (`SELECT 'DROP TABLE x'`) cannot
//! fool it. Every nested statement and query is visited (CTEs, subqueries, set operations,
//! `INSERT ... SELECT`, `EXPLAIN ANALYZE`), so a data-modifying CTE or a `SELECT ... INTO` in
//! a union is found as well.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Query, Select, SetExpr, Statement, TableFactor, UtilityOption, Visit, Visitor,
};
use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

/// The action word of the policy line, mirrored from the WIT `action` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    Elicit,
}

/// The answer, mirrored from the WIT `verdict` variant (this enforcer never adds caveats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(String),
    Elicit(String),
}

/// Longer SQL is refused unparsed unless `max_bytes=` says otherwise. Tokens and syntax tree
/// take up to about 600 bytes of guest memory per byte of SQL (measured: long `UNION` chains
/// and column lists are the worst), and an enforcer runs under the host's memory cap (16 MiB
/// by default): running out is a trap, a deny without a message. 16 KiB fits the default cap
/// with room to spare.
const DEFAULT_MAX_BYTES: usize = 16 * 1024;
/// The largest `max_bytes=` accepted.
const MAX_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Deeper syntax trees are refused unchecked. The parser bounds nesting (parentheses,
/// subqueries) but builds chains like `a OR b OR c ...` and `... UNION ...` in a loop, so
/// their depth grows with the input; walking, printing or dropping a tree recurses once per
/// level, and wasmtime's call stack (512 KiB by default) overflows after a few thousand.
/// How much of a statement a message quotes.
const QUOTE_CHARS: usize = 80;
const MAX_DEPTH: usize = 400;

/// The SQL dialects a policy can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialectName {
    Generic,
    Sqlite,
    Postgres,
    Mysql,
}

impl DialectName {
    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "generic" => Ok(Self::Generic),
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" => Ok(Self::Mysql),
            _ => Err(format!(
                "unknown dialect \"{text}\": expected sqlite, postgres, mysql or generic"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }

    fn dialect(self) -> Box<dyn Dialect> {
        match self {
            Self::Generic => Box::new(GenericDialect {}),
            Self::Sqlite => Box::new(SQLiteDialect {}),
            Self::Postgres => Box::new(PostgreSqlDialect {}),
            Self::Mysql => Box::new(MySqlDialect {}),
        }
    }
}

/// Statement kinds that `deny=` and `require_where=` can name.
///
/// `Other` covers the rarer statements (`KILL`, `DECLARE`, `LISTEN`, ...): no list can name
/// it, and `read_only` refuses it like every kind but SELECT, EXPLAIN and SHOW.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Create,
    Drop,
    Alter,
    Truncate,
    Grant,
    Revoke,
    Attach,
    Detach,
    Pragma,
    Copy,
    Call,
    Set,
    Show,
    Explain,
    Use,
    Transaction,
    Execute,
    Prepare,
    Vacuum,
    Analyze,
    Load,
    Lock,
    Comment,
    Other,
}

/// Every nameable kind with its name, in the order messages list them.
const KINDS: [(Kind, &str); 28] = [
    (Kind::Select, "SELECT"),
    (Kind::Insert, "INSERT"),
    (Kind::Update, "UPDATE"),
    (Kind::Delete, "DELETE"),
    (Kind::Merge, "MERGE"),
    (Kind::Create, "CREATE"),
    (Kind::Drop, "DROP"),
    (Kind::Alter, "ALTER"),
    (Kind::Truncate, "TRUNCATE"),
    (Kind::Grant, "GRANT"),
    (Kind::Revoke, "REVOKE"),
    (Kind::Attach, "ATTACH"),
    (Kind::Detach, "DETACH"),
    (Kind::Pragma, "PRAGMA"),
    (Kind::Copy, "COPY"),
    (Kind::Call, "CALL"),
    (Kind::Set, "SET"),
    (Kind::Show, "SHOW"),
    (Kind::Explain, "EXPLAIN"),
    (Kind::Use, "USE"),
    (Kind::Transaction, "TRANSACTION"),
    (Kind::Execute, "EXECUTE"),
    (Kind::Prepare, "PREPARE"),
    (Kind::Vacuum, "VACUUM"),
    (Kind::Analyze, "ANALYZE"),
    (Kind::Load, "LOAD"),
    (Kind::Lock, "LOCK"),
    (Kind::Comment, "COMMENT"),
];

impl Kind {
    fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("OTHER", |(_, name)| name)
    }

    fn parse(text: &str) -> Option<Self> {
        KINDS
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(text))
            .map(|(k, _)| *k)
    }

    /// Reads but never writes, locks or changes session state (further checked per query).
    fn is_read_only(self) -> bool {
        matches!(self, Kind::Select | Kind::Explain | Kind::Show)
    }

    /// The kind a leading keyword stands for (statements without a dedicated match arm).
    fn from_keyword(word: &str) -> Self {
        match word.to_ascii_uppercase().as_str() {
            "SELECT" | "WITH" | "VALUES" | "TABLE" => Kind::Select,
            "INSERT" | "REPLACE" => Kind::Insert,
            "UPDATE" => Kind::Update,
            "DELETE" => Kind::Delete,
            "MERGE" => Kind::Merge,
            "CREATE" => Kind::Create,
            "DROP" => Kind::Drop,
            "ALTER" | "RENAME" => Kind::Alter,
            "TRUNCATE" => Kind::Truncate,
            "GRANT" | "DENY" => Kind::Grant,
            "REVOKE" => Kind::Revoke,
            "ATTACH" => Kind::Attach,
            "DETACH" => Kind::Detach,
            "PRAGMA" => Kind::Pragma,
            "COPY" => Kind::Copy,
            "CALL" => Kind::Call,
            "SET" | "RESET" => Kind::Set,
            "SHOW" => Kind::Show,
            "EXPLAIN" | "DESCRIBE" | "DESC" => Kind::Explain,
            "USE" => Kind::Use,
            "START" | "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "END" => {
                Kind::Transaction
            }
            "EXECUTE" | "EXEC" => Kind::Execute,
            "PREPARE" => Kind::Prepare,
            "VACUUM" => Kind::Vacuum,
            "ANALYZE" => Kind::Analyze,
            "LOAD" => Kind::Load,
            "LOCK" | "UNLOCK" => Kind::Lock,
            "COMMENT" => Kind::Comment,
            _ => Kind::Other,
        }
    }
}

/// A parsed, validated parameter list.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    arg: Option<String>,
    dialect: DialectName,
    read_only: bool,
    deny: BTreeSet<Kind>,
    no_multi: bool,
    require_where: BTreeSet<Kind>,
    max_bytes: usize,
}

const PARAM_NAMES: [&str; 7] = [
    "read_only",
    "no_multi",
    "arg",
    "dialect",
    "deny",
    "require_where",
    "max_bytes",
];
const EXPECTED_PARAMS: &str = "expected read_only, no_multi, arg=NAME, dialect=sqlite|postgres|mysql|generic, deny=KIND,..., require_where=DELETE,UPDATE or max_bytes=N";

/// Parses the rule's parameters (any order, each at most once).
pub fn parse_params(params: &[String]) -> Result<Config, String> {
    let mut config = Config {
        arg: None,
        dialect: DialectName::Generic,
        read_only: false,
        deny: BTreeSet::new(),
        no_multi: false,
        require_where: BTreeSet::new(),
        max_bytes: DEFAULT_MAX_BYTES,
    };
    let mut seen = BTreeSet::new();
    for param in params {
        let param = param.trim();
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (param.to_ascii_lowercase(), None),
        };
        if !seen.insert(key.clone()) && PARAM_NAMES.contains(&key.as_str()) {
            return Err(format!("parameter {key} given twice"));
        }
        match (key.as_str(), value) {
            ("read_only", None) => config.read_only = true,
            ("no_multi", None) => config.no_multi = true,
            ("read_only" | "no_multi", Some(_)) => {
                return Err(format!(
                    "parameter {key} takes no value (\"{param}\"): write just {key}"
                ));
            }
            ("arg" | "dialect" | "deny" | "require_where" | "max_bytes", None | Some("")) => {
                return Err(format!(
                    "parameter {key} needs a value (\"{param}\"): {}",
                    value_hint(&key)
                ));
            }
            ("arg", Some(name)) => config.arg = Some(name.to_string()),
            ("max_bytes", Some(n)) => {
                config.max_bytes = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_MAX_BYTES).contains(n))
                    .ok_or_else(|| {
                        format!("bad max_bytes \"{n}\": expected a whole number of bytes from 1 to {MAX_MAX_BYTES}")
                    })?;
            }
            ("dialect", Some(name)) => config.dialect = DialectName::parse(name)?,
            ("deny", Some(list)) => config.deny = parse_kinds("deny", list)?,
            ("require_where", Some(list)) => {
                config.require_where = parse_kinds("require_where", list)?;
                if let Some(kind) = config
                    .require_where
                    .iter()
                    .find(|k| !matches!(k, Kind::Delete | Kind::Update))
                {
                    return Err(format!(
                        "require_where: {} has no WHERE clause to require: expected DELETE, UPDATE or both",
                        kind.name()
                    ));
                }
            }
            _ => return Err(unknown_param(param, &key)),
        }
    }
    Ok(config)
}

fn value_hint(key: &str) -> &'static str {
    match key {
        "arg" => "expected arg=NAME, the argument holding the SQL",
        "dialect" => "expected sqlite, postgres, mysql or generic",
        "require_where" => "expected a list such as DELETE,UPDATE",
        "max_bytes" => "expected a whole number of bytes, e.g. max_bytes=65536",
        _ => "expected a list of statement kinds such as DROP,TRUNCATE,ALTER",
    }
}

fn unknown_param(param: &str, key: &str) -> String {
    let normalized: String = key.chars().filter(char::is_ascii_alphanumeric).collect();
    let suggestion = PARAM_NAMES
        .iter()
        .find(|name| name.replace('_', "") == normalized)
        .map(|name| format!(" (did you mean {name}?)"))
        .unwrap_or_default();
    format!("unknown parameter \"{param}\"{suggestion}: {EXPECTED_PARAMS}")
}

/// `DROP,truncate, ALTER` -> kinds; empty lists, empty items and unknown kinds are errors.
fn parse_kinds(key: &str, list: &str) -> Result<BTreeSet<Kind>, String> {
    let mut kinds = BTreeSet::new();
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!(
                "{key}: empty item in \"{list}\": expected a comma-separated list such as DROP,TRUNCATE"
            ));
        }
        let kind = Kind::parse(item).ok_or_else(|| {
            let known: Vec<&str> = KINDS.iter().map(|(_, n)| *n).collect();
            format!(
                "{key}: unknown statement kind \"{item}\": expected one of {}",
                known.join(" ")
            )
        })?;
        kinds.insert(kind);
    }
    Ok(kinds)
}

/// The whole decision for one call.
///
/// Problems with the input itself (no SQL argument, not a string, bad parameters) deny
/// whatever the action; unparseable SQL and violations deny, or ask when the action is
/// `elicit`. An `allow` rule whose check fails denies: its allow was conditional on the check.
pub fn decide(action: Action, tool: &str, arguments: &str, params: &[String]) -> Verdict {
    let config = match parse_params(params) {
        Ok(c) => c,
        Err(e) => return Verdict::Deny(format!("sql_safety: {e}")),
    };
    let (arg, sql) = match find_sql(arguments, config.arg.as_deref(), config.max_bytes) {
        Ok(found) => found,
        Err(e) => return Verdict::Deny(format!("sql_safety: {e}")),
    };
    let problems = match violations(&config, &sql) {
        Ok(v) => v,
        Err(parse_error) => vec![format!(
            "cannot parse the SQL in argument {arg} as {} SQL: {parse_error}",
            config.dialect.name()
        )],
    };
    let Some(first) = problems.first() else {
        return Verdict::Allow;
    };
    let more = match problems.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    match action {
        Action::Elicit => Verdict::Elicit(format!(
            "{tool} wants to run SQL that sql_safety flags: {first}{more}. Run it anyway?"
        )),
        Action::Allow | Action::Deny => Verdict::Deny(format!("SQL refused: {first}{more}")),
    }
}

/// The SQL text and the name of the argument it came from.
fn find_sql(
    arguments: &str,
    arg: Option<&str>,
    max_bytes: usize,
) -> Result<(String, String), String> {
    let value: serde_json::Value = serde_json::from_str(arguments)
        .map_err(|e| format!("the call's arguments are not valid JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "the call's arguments are not a JSON object".to_string())?;
    let (name, found) = match arg {
        Some(name) => (name, object.get(name)),
        None => ["query", "sql"]
            .iter()
            .find_map(|n| object.get(*n).map(|v| (*n, Some(v))))
            .unwrap_or(("query", None)),
    };
    let Some(found) = found else {
        return Err(match arg {
            Some(name) => format!("no SQL found in argument {name}"),
            None => "no SQL found in argument query or sql".to_string(),
        });
    };
    let sql = found.as_str().ok_or_else(|| {
        let what = match found {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
            serde_json::Value::String(_) => "a string",
        };
        format!("argument {name} is {what}, not a string of SQL")
    })?;
    if sql.len() > max_bytes {
        return Err(format!(
            "the SQL in argument {name} is {} bytes; at most {max_bytes} are checked (max_bytes=)",
            sql.len()
        ));
    }
    Ok((name.to_string(), sql.to_string()))
}

/// Every violation of the configured checks, or the parser's error message.
pub fn violations(config: &Config, sql: &str) -> Result<Vec<String>, String> {
    let dialect = config.dialect.dialect();
    let statements = Parser::parse_sql(dialect.as_ref(), sql).map_err(|e| e.to_string())?;
    let mut guard = DepthGuard::default();
    if statements.visit(&mut guard).is_break() {
        // Dropping the tree would recurse as deep as it is. In the guest the instance is
        // thrown away after this call, so leaking it costs nothing.
        std::mem::forget(statements);
        return Ok(vec![format!(
            "the SQL is nested more than {MAX_DEPTH} levels deep (a long chain of operators or UNIONs); too complex to check"
        )]);
    }
    let mut walker = Walker {
        config,
        frames: Vec::new(),
        found: Vec::new(),
    };
    if statements.is_empty() {
        walker.report("no SQL statement (only whitespace or comments)".to_string());
    }
    if config.no_multi && statements.len() > 1 {
        let all: Vec<String> = statements.iter().map(ToString::to_string).collect();
        walker.report(format!(
            "stacked statements: {} statements where one is allowed: {}",
            statements.len(),
            quote(&all.join("; "))
        ));
    }
    for statement in &statements {
        // The walker never breaks; it only collects.
        let _ = statement.visit(&mut walker);
    }
    Ok(walker.found)
}

/// Stops the walk (`Break`) at a node more than [`MAX_DEPTH`] levels deep, before anything
/// recurses further. Set operations have no visitor hook per level, so each query's chain of
/// them is measured without recursion.
#[derive(Default)]
struct DepthGuard {
    depth: usize,
}

impl DepthGuard {
    fn enter(&mut self, extra: usize) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth + extra > MAX_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

impl Visitor for DepthGuard {
    type Break = ();

    fn pre_visit_statement(&mut self, _: &Statement) -> ControlFlow<()> {
        self.enter(0)
    }
    fn post_visit_statement(&mut self, _: &Statement) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.enter(set_operation_depth(&query.body))
    }
    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_select(&mut self, _: &Select) -> ControlFlow<()> {
        self.enter(0)
    }
    fn post_visit_select(&mut self, _: &Select) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.enter(0)
    }
    fn post_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter(0)
    }
    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.leave()
    }
}

/// How deep the `UNION` / `EXCEPT` / `INTERSECT` tree of a query body goes, without recursion.
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(body, 0usize)];
    while let Some((node, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = node {
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        }
    }
    deepest
}

/// Why a statement is on the walker's stack.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// A statement that runs.
    Runs,
    /// `EXPLAIN` without `ANALYZE`: what it explains is planned, not run.
    ExplainOnly,
    /// `EXPLAIN ANALYZE`: what it explains runs.
    ExplainAnalyze,
}

/// Collects violations while sqlparser's visitor walks the tree.
struct Walker<'a> {
    config: &'a Config,
    frames: Vec<Frame>,
    found: Vec<String>,
}

impl Walker<'_> {
    /// Whether the node being visited is only planned (inside a plain `EXPLAIN`).
    fn planned_only(&self) -> bool {
        self.frames.contains(&Frame::ExplainOnly)
    }

    fn under_analyze(&self) -> bool {
        self.frames.contains(&Frame::ExplainAnalyze)
    }

    fn report(&mut self, violation: String) {
        if !self.found.contains(&violation) {
            self.found.push(violation);
        }
    }

    fn check_statement(&mut self, statement: &Statement) {
        let Some(kind) = kind_of(statement) else {
            return;
        };
        let label = || match kind {
            Kind::Other => leading_keyword(statement),
            _ => kind.name().to_string(),
        };
        if self.config.deny.contains(&kind) {
            self.report(format!(
                "{} statements are not allowed: {}",
                label(),
                quote(&statement.to_string())
            ));
        }
        if self.config.read_only && !kind.is_read_only() {
            let context = if self.under_analyze() {
                " (EXPLAIN ANALYZE runs the statement it explains)"
            } else if !self.frames.is_empty() {
                " inside another statement"
            } else {
                ""
            };
            self.report(format!(
                "not read-only: {} statement{context}: {}",
                label(),
                quote(&statement.to_string())
            ));
        }
        if self.config.require_where.contains(&kind) && lacks_where(statement) {
            self.report(format!(
                "{} without WHERE: {}",
                label(),
                quote(&statement.to_string())
            ));
        }
    }
}

impl Visitor for Walker<'_> {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if !self.planned_only() {
            self.check_statement(statement);
        }
        self.frames.push(match statement {
            Statement::Explain {
                analyze, options, ..
            } if *analyze || options.as_deref().is_some_and(has_analyze_option) => {
                Frame::ExplainAnalyze
            }
            Statement::Explain { .. } => Frame::ExplainOnly,
            _ => Frame::Runs,
        });
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _statement: &Statement) -> ControlFlow<()> {
        self.frames.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if self.config.read_only
            && !self.planned_only()
            && let Some(lock) = query.locks.first()
        {
            self.report(format!(
                "not read-only: {lock} locks rows: {}",
                quote(&query.to_string())
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if self.config.read_only && !self.planned_only() && select.into.is_some() {
            self.report(format!(
                "not read-only: SELECT ... INTO creates a table: {}",
                quote(&select.to_string())
            ));
        }
        ControlFlow::Continue(())
    }
}

/// Postgres `EXPLAIN (ANALYZE [true|on|1]) ...`; `ANALYZE false|off|0` does not run it.
fn has_analyze_option(options: &[UtilityOption]) -> bool {
    let is_off = |arg: &Expr| {
        matches!(
            arg.to_string().to_ascii_lowercase().as_str(),
            "false" | "off" | "0"
        )
    };
    options.iter().any(|o| {
        o.name.value.eq_ignore_ascii_case("analyze") && !o.arg.as_ref().is_some_and(is_off)
    })
}

/// The kind of a statement, or `None` for a query whose body is itself a data-modifying
/// statement (`WITH ... INSERT ...`): that inner statement is visited and judged on its own.
fn kind_of(statement: &Statement) -> Option<Kind> {
    Some(match statement {
        Statement::Query(query) => match query.body.as_ref() {
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                return None;
            }
            _ => Kind::Select,
        },
        Statement::Insert(_) => Kind::Insert,
        Statement::Update(_) => Kind::Update,
        Statement::Delete(_) => Kind::Delete,
        Statement::Merge(_) => Kind::Merge,
        Statement::Explain { .. } | Statement::ExplainTable { .. } => Kind::Explain,
        Statement::Truncate(_) => Kind::Truncate,
        Statement::Drop { .. } => Kind::Drop,
        Statement::Grant(_) => Kind::Grant,
        Statement::Revoke(_) => Kind::Revoke,
        Statement::AttachDatabase { .. } | Statement::AttachDuckDBDatabase { .. } => Kind::Attach,
        Statement::DetachDuckDBDatabase { .. } => Kind::Detach,
        Statement::Pragma { .. } => Kind::Pragma,
        Statement::Copy { .. } | Statement::CopyIntoSnowflake { .. } => Kind::Copy,
        Statement::Call(_) => Kind::Call,
        Statement::Set(_) => Kind::Set,
        Statement::Use(_) => Kind::Use,
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Kind::Transaction,
        // The many CREATE / ALTER / DROP / SHOW variants and the rarer statements: their SQL
        // starts with the keyword that names them.
        other => Kind::from_keyword(&leading_keyword(other)),
    })
}

/// The first word of a statement's SQL, upper-cased (`CREATE`, `SHOW`, `KILL`).
fn leading_keyword(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or("UNKNOWN")
        .to_ascii_uppercase()
}

/// A DELETE or UPDATE with no WHERE clause (other statements never lack one).
fn lacks_where(statement: &Statement) -> bool {
    match statement {
        Statement::Delete(delete) => delete.selection.is_none(),
        Statement::Update(update) => update.selection.is_none(),
        _ => false,
    }
}

/// `"DELETE FROM t"`, with whitespace collapsed and long statements cut at a char boundary.
fn quote(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("\"{}...\"", &flat[..cut]),
        None => format!("\"{flat}\""),
    }
}

#[cfg(test)]
mod tests;
