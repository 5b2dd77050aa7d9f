//! Integration tests for the `portcullis` command line: `check` and `eval`, their exit codes
//! (0 allow, 1 bad input or config, 2 deny, 3 elicit), their output and the audit log.

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

const EMAIL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../policies/email-compact.yaml"
);
const STRUCTURED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/structured.yaml");

const OK: i32 = 0;
const BAD_INPUT: i32 = 1;
const DENY: i32 = 2;
const ELICIT: i32 = 3;

/// The binary with a predictable log configuration (no inherited RUST_LOG).
fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// What one run of the binary produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Everything needed to understand a failed assertion.
    fn explain(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_with_env(args, &[])
}

fn run_with_env<I, S>(args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = cli();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the portcullis binary runs");
    Run {
        code: out
            .status
            .code()
            .expect("portcullis exited normally, not by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// `portcullis eval --config CONFIG ARGS...`.
fn eval(config: &str, args: &[&str]) -> Run {
    let mut all = vec!["eval", "--config", config];
    all.extend_from_slice(args);
    run(all)
}

/// `portcullis check --config CONFIG`.
fn check(config: &str) -> Run {
    run(["check", "--config", config])
}

/// Writes a policy file into `dir` and returns its path as the CLI will print it.
fn write_policy(dir: &TempDir, name: &str, text: &str) -> String {
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, text).expect("write temp policy");
    path.to_str().expect("temp path is UTF-8").to_string()
}

fn parse_json(text: &str, context: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{context}: not JSON ({e}):\n{text}"))
}

// ---------------------------------------------------------------------------------------------
// check: valid files
// ---------------------------------------------------------------------------------------------

/// The per-phase/policy/action rows of a `check` summary, as whitespace-separated tokens.
fn summary_rows(stdout: &str) -> BTreeSet<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|t| t.len() == 4 && (t[0] == "before" || t[0] == "after"))
        .collect()
}

fn rows(expected: &[[&str; 4]]) -> BTreeSet<Vec<String>> {
    expected
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn check_summarizes_both_example_policies() {
    struct Case {
        path: &'static str,
        file: &'static str,
        lines: &'static [&'static str],
        rows: &'static [[&'static str; 4]],
    }
    let cases = [
        Case {
            path: EMAIL,
            file: "email-compact.yaml",
            lines: &[
                "default_effect: deny",
                "elicit_expiry: 3600s",
                "redaction: replace",
                "rules: 11 (before 7, after 4)",
            ],
            rows: &[
                ["after", "field_access", "deny", "3"],
                ["after", "field_access", "elicit", "1"],
                ["before", "allow_attempts", "allow", "1"],
                ["before", "tool_access", "allow", "4"],
                ["before", "tool_access", "deny", "1"],
                ["before", "tool_access", "elicit", "1"],
            ],
        },
        Case {
            path: STRUCTURED,
            file: "structured.yaml",
            lines: &[
                "default_effect: deny",
                "elicit_expiry: 900s",
                "redaction: remove",
                "rules: 9 (before 7, after 2)",
            ],
            rows: &[
                ["after", "field_access", "deny", "1"],
                ["after", "field_access", "elicit", "1"],
                ["before", "tool_access", "allow", "4"],
                ["before", "tool_access", "deny", "2"],
                ["before", "tool_access", "elicit", "1"],
            ],
        },
    ];
    for case in cases {
        let r = check(case.path);
        assert_eq!(r.code, OK, "{}: {}", case.file, r.explain());
        let first = r.stdout.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("{}: OK", case.path),
            "{}: {}",
            case.file,
            r.explain()
        );
        assert!(first.contains(case.file));
        let trimmed: Vec<&str> = r.stdout.lines().map(str::trim).collect();
        for want in case.lines {
            assert!(
                trimmed.contains(want),
                "{}: missing line {want:?}\n{}",
                case.file,
                r.explain()
            );
        }
        assert_eq!(
            summary_rows(&r.stdout),
            rows(case.rows),
            "{}: {}",
            case.file,
            r.explain()
        );
        assert!(
            !r.stdout.contains("warning:"),
            "{}: unexpected warning\n{}",
            case.file,
            r.explain()
        );
        assert!(r.stderr.is_empty(), "{}: {}", case.file, r.explain());
    }
}

#[test]
fn check_accepts_short_config_flag() {
    let r = run(["check", "-c", EMAIL]);
    assert_eq!(r.code, OK, "{}", r.explain());
    assert!(
        r.stdout.starts_with(&format!("{EMAIL}: OK")),
        "{}",
        r.explain()
    );
}

// ---------------------------------------------------------------------------------------------
// check: invalid files
// ---------------------------------------------------------------------------------------------

/// One file with many semantic mistakes: every one must be reported, each with its location,
/// the quoted line and what was expected.
#[test]
fn check_lists_every_error_with_location_quote_and_expectation() {
    let lines = [
        /* 1 */ "config:",
        /* 2 */ "  default_effect: maybe",
        /* 3 */ "  secret_key: hunter2",
        /* 4 */ "policies:",
        /* 5 */ "  - \"bf:read_emails:tool_acess:allow\"",
        /* 6 */ "  - \"bf:send_email:tool_access:alow\"",
        /* 7 */ "  - \"bf:beta:tool_access:allow:time<2030\"",
        /* 8 */ "  - \"bf:foo[:tool_access:allow\"",
        /* 9 */ "  - name: limits",
        /* 10 */ "    tools: [get_x]",
        /* 11 */ "    when:",
        /* 12 */ "      - { field: args.limit, op: gt, value: \"ten\" }",
        /* 13 */ "    action: allow",
        /* 14 */ "  - name: re",
        /* 15 */ "    tools: [get_y]",
        /* 16 */ "    when:",
        /* 17 */ "      - { field: args.id, op: regex, value: \"(unclosed\" }",
        /* 18 */ "    action: deny",
        /* 19 */ "  - name: structured-typos",
        /* 20 */ "    tools: [get_z]",
        /* 21 */ "    policy: tool_acess",
        /* 22 */ "    action: alow",
        /* 23 */ "  - \"bf:fine_tool:tool_access:allow\"",
    ];
    let dir = TempDir::new().unwrap();
    let path = write_policy(&dir, "bad.yaml", &(lines.join("\n") + "\n"));
    // (line, column, message fragment)
    let expected: &[(usize, usize, &str)] = &[
        (
            2,
            19,
            "unknown default_effect \"maybe\": expected allow or deny",
        ),
        (3, 15, "config.secret_key is not accepted"),
        (
            5,
            5,
            "unknown policy \"tool_acess\" (did you mean \"tool_access\"?)",
        ),
        (
            6,
            5,
            "unknown action \"alow\": expected allow, deny or elicit",
        ),
        (
            7,
            5,
            "bad expiry \"time<2030\": expected time<YYYYMMDDTHHMMSSZ",
        ),
        (8, 5, "bad tool glob \"foo[\""),
        (
            9,
            5,
            "when[0]: operator gt needs a number, found string \"ten\"",
        ),
        (14, 5, "when[0]: invalid regex \"(unclosed\""),
        (
            19,
            5,
            "unknown action \"alow\": expected allow, deny or elicit",
        ),
        (
            19,
            5,
            "unknown policy \"tool_acess\" (did you mean \"tool_access\"?)",
        ),
    ];

    let r = check(&path);
    assert_eq!(r.code, BAD_INPUT, "{}", r.explain());
    assert!(
        r.stdout.is_empty(),
        "nothing on stdout for a bad file\n{}",
        r.explain()
    );
    for (line, column, message) in expected {
        let head = format!("error: {path}:{line}:{column}: {message}");
        assert!(
            r.stderr.contains(&head),
            "missing {head:?}\n{}",
            r.explain()
        );
        let quoted = format!("\n    | {}\n", lines[line - 1]);
        assert!(
            r.stderr.contains(&quoted),
            "missing quote {quoted:?}\n{}",
            r.explain()
        );
    }
    let reported = r
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("error: {path}:")))
        .count();
    assert_eq!(
        reported,
        expected.len(),
        "one error line per problem\n{}",
        r.explain()
    );
    let total = format!(
        "{path}: {} error(s); the policy was not loaded",
        expected.len()
    );
    assert!(
        r.stderr.contains(&total),
        "missing {total:?}\n{}",
        r.explain()
    );
    // The key's value must not be echoed beyond the quoted line (it is quoted once there).
    assert_eq!(r.stderr.matches("hunter2").count(), 1, "{}", r.explain());
}

/// Mistakes the YAML reader itself catches: one error each, still located and quoted.
#[test]
fn check_reports_yaml_level_mistakes_with_location() {
    struct Case {
        name: &'static str,
        text: &'static str,
        line: usize,
        column: usize,
        message: &'static str,
    }
    let cases = [
        Case {
            name: "unknown config field",
            text: "config:\n  default_effect: deny\n  colour: blue\npolicies: []\n",
            line: 3,
            column: 3,
            message: "unknown field `colour`",
        },
        Case {
            name: "unknown rule field",
            text: "policies:\n  - name: a\n    tools: [x]\n    action: allow\n    colour: red\n",
            line: 5,
            column: 5,
            message: "unknown field `colour`",
        },
        Case {
            name: "unknown top-level field",
            text: "policy:\n  - \"bf:a:tool_access:allow\"\n",
            line: 1,
            column: 1,
            message: "unknown field `policy`",
        },
        Case {
            name: "duplicate key",
            text: "config:\n  default_effect: deny\n  default_effect: allow\npolicies: []\n",
            line: 3,
            column: 3,
            message: "duplicate mapping key: default_effect",
        },
        Case {
            name: "duplicate rule name",
            text: "policies:\n  - name: a\n    tools: [x]\n    action: allow\n  - name: a\n    tools: [y]\n    action: allow\n",
            line: 5,
            column: 5,
            message: "duplicate rule name \"a\"",
        },
        Case {
            name: "unknown redaction",
            text: "config:\n  redaction: hide\npolicies: []\n",
            line: 2,
            column: 14,
            message: "unknown redaction \"hide\": expected replace",
        },
        Case {
            name: "yaml syntax",
            text: "policies:\n  - \"bf:a:tool_access:allow\"\n  - [unclosed\n",
            line: 3,
            column: 5,
            message: "unclosed bracket",
        },
    ];
    let dir = TempDir::new().unwrap();
    for (i, case) in cases.iter().enumerate() {
        let path = write_policy(&dir, &format!("case{i}.yaml"), case.text);
        let r = check(&path);
        assert_eq!(r.code, BAD_INPUT, "{}: {}", case.name, r.explain());
        assert!(r.stdout.is_empty(), "{}: {}", case.name, r.explain());
        let head = format!(
            "error: {path}:{}:{}: {}",
            case.line, case.column, case.message
        );
        assert!(
            r.stderr.contains(&head),
            "{}: missing {head:?}\n{}",
            case.name,
            r.explain()
        );
        let source_line = case.text.lines().nth(case.line - 1).unwrap();
        let quoted = format!("    | {source_line}");
        assert!(
            r.stderr.contains(&quoted),
            "{}: missing {quoted:?}\n{}",
            case.name,
            r.explain()
        );
        assert!(
            r.stderr
                .contains(&format!("{path}: 1 error(s); the policy was not loaded")),
            "{}: {}",
            case.name,
            r.explain()
        );
    }
}

#[test]
fn check_missing_file_exits_1() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("does-not-exist.yaml");
    let path = path.to_str().unwrap();
    let r = check(path);
    assert_eq!(r.code, BAD_INPUT, "{}", r.explain());
    assert!(r.stdout.is_empty(), "{}", r.explain());
    assert!(
        r.stderr
            .contains(&format!("error: {path}: cannot read policy file")),
        "{}",
        r.explain()
    );
}

#[test]
fn check_enforces_the_one_mib_limit() {
    const MIB: usize = 1024 * 1024;
    /// A valid policy padded with a comment to exactly `len` bytes.
    fn padded(len: usize) -> String {
        let mut s = String::from("policies: []\n#");
        s.push_str(&"x".repeat(len - s.len() - 1));
        s.push('\n');
        assert_eq!(s.len(), len);
        s
    }
    let dir = TempDir::new().unwrap();

    let at_limit = write_policy(&dir, "at-limit.yaml", &padded(MIB));
    let r = check(&at_limit);
    assert_eq!(
        r.code,
        OK,
        "a file of exactly 1 MiB is accepted\n{}",
        r.explain()
    );

    let over = write_policy(&dir, "over.yaml", &padded(MIB + 1));
    let r = check(&over);
    assert_eq!(r.code, BAD_INPUT, "{}", r.explain());
    assert!(r.stdout.is_empty(), "{}", r.explain());
    assert!(r.stderr.contains("1 MiB"), "{}", r.explain());
    assert!(
        r.stderr
            .contains(&format!("{over}: policy file is {} bytes", MIB + 1)),
        "{}",
        r.explain()
    );
}

// ---------------------------------------------------------------------------------------------
// check: warnings
// ---------------------------------------------------------------------------------------------

/// Tools named in `warning: tool "X" has after-phase rules ...` lines.
fn warned_tools(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("warning: tool \""))
        .filter_map(|rest| {
            rest.split_once("\" has after-phase rules but no before-phase rule allows")
        })
        .map(|(tool, _)| tool.to_string())
        .collect()
}

#[test]
fn check_warns_about_tools_that_only_have_after_phase_rules() {
    struct Case {
        name: &'static str,
        text: &'static str,
        warned: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "deny default, one tool uncovered",
            text: "config:\n  default_effect: deny\npolicies:\n  - \"af:get_secret:field_access:deny:password\"\n  - \"bf:get_other:tool_access:allow\"\n  - \"af:get_other:field_access:deny:password\"\n",
            warned: &["get_secret"],
        },
        Case {
            name: "deny is the default default_effect",
            text: "policies:\n  - \"af:get_secret:field_access:deny:password\"\n",
            warned: &["get_secret"],
        },
        Case {
            name: "a before-phase deny does not count as covering",
            text: "config:\n  default_effect: deny\npolicies:\n  - \"af:get_secret:field_access:deny:password\"\n  - \"bf:get_*:tool_access:deny\"\n",
            warned: &["get_secret"],
        },
        Case {
            name: "a before-phase elicit glob covers",
            text: "config:\n  default_effect: deny\npolicies:\n  - \"af:get_secret:field_access:deny:password\"\n  - \"bf:get_*:tool_access:elicit\"\n",
            warned: &[],
        },
        Case {
            name: "allow_attempts covers",
            text: "policies:\n  - \"af:get_secret:field_access:deny:password\"\n  - \"bf:get_secret:allow_attempts:allow:3\"\n",
            warned: &[],
        },
        Case {
            name: "allow default never warns",
            text: "config:\n  default_effect: allow\npolicies:\n  - \"af:get_secret:field_access:deny:password\"\n",
            warned: &[],
        },
    ];
    let dir = TempDir::new().unwrap();
    for (i, case) in cases.iter().enumerate() {
        let path = write_policy(&dir, &format!("warn{i}.yaml"), case.text);
        let r = check(&path);
        assert_eq!(
            r.code,
            OK,
            "{}: warnings do not fail the check\n{}",
            case.name,
            r.explain()
        );
        let want: BTreeSet<String> = case.warned.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            warned_tools(&r.stdout),
            want,
            "{}: {}",
            case.name,
            r.explain()
        );
    }

    // The full wording, once.
    let path = write_policy(&dir, "wording.yaml", cases[0].text);
    let r = check(&path);
    assert!(
        r.stdout.contains(
            "  warning: tool \"get_secret\" has after-phase rules but no before-phase rule allows \
             or elicits it; with default_effect deny it can never be called\n"
        ),
        "{}",
        r.explain()
    );
}

// ---------------------------------------------------------------------------------------------
// eval: decisions and exit codes
// ---------------------------------------------------------------------------------------------

struct EvalCase {
    name: &'static str,
    args: &'static [&'static str],
    code: i32,
    /// Substrings stdout must contain.
    has: &'static [&'static str],
    /// Substrings stdout must not contain.
    lacks: &'static [&'static str],
}

fn run_eval_cases(config: &str, cases: &[EvalCase]) {
    for case in cases {
        let r = eval(config, case.args);
        assert_eq!(r.code, case.code, "{}: {}", case.name, r.explain());
        for want in case.has {
            let want = want.replace("{config}", config);
            assert!(
                r.stdout.contains(&want),
                "{}: stdout lacks {want:?}\n{}",
                case.name,
                r.explain()
            );
        }
        for unwanted in case.lacks {
            assert!(
                !r.stdout.contains(unwanted),
                "{}: stdout has {unwanted:?}\n{}",
                case.name,
                r.explain()
            );
        }
    }
}

#[test]
fn eval_email_compact_decisions() {
    run_eval_cases(
        EMAIL,
        &[
            EvalCase {
                name: "read_emails is allowed",
                args: &["--tool", "read_emails"],
                code: OK,
                has: &["effect:  allow", "phase:   before", "{config}:11"],
                lacks: &[],
            },
            EvalCase {
                name: "admin_tool is denied by its rule",
                args: &["--tool", "admin_tool"],
                code: DENY,
                has: &[
                    "effect:  deny",
                    "{config}:14",
                    "reason:  tool \"admin_tool\" denied by policy rule {config}:14",
                ],
                lacks: &["default_effect"],
            },
            EvalCase {
                name: "send_email needs approval",
                args: &["--tool", "send_email"],
                code: ELICIT,
                has: &[
                    "effect:  elicit",
                    "{config}:15",
                    "needs the user's approval",
                ],
                lacks: &[],
            },
            EvalCase {
                name: "an unmentioned tool falls to default_effect deny",
                args: &["--tool", "drop_database"],
                code: DENY,
                has: &[
                    "effect:  deny",
                    "default_effect",
                    "rules:   (none applied; default_effect decided)",
                ],
                lacks: &[],
            },
            EvalCase {
                name: "list_* glob allows list_contacts",
                args: &["--tool", "list_contacts"],
                code: OK,
                has: &["effect:  allow", "{config}:13"],
                lacks: &[],
            },
            EvalCase {
                name: "export_mailbox is allowed (allow_attempts 3, first call)",
                args: &["--tool", "export_mailbox", "--user", "alice"],
                code: OK,
                has: &["effect:  allow", "{config}:16", "allow_attempts"],
                lacks: &[],
            },
            EvalCase {
                name: "beta_search after its expiry falls to default deny",
                args: &["--tool", "beta_search", "--now", "2031-01-01T00:00:00Z"],
                code: DENY,
                has: &["effect:  deny", "default_effect"],
                lacks: &["{config}:23"],
            },
            EvalCase {
                name: "beta_search before its expiry is allowed",
                args: &["--tool", "beta_search", "--now", "2030-01-01T00:00:00Z"],
                code: OK,
                has: &["effect:  allow", "{config}:23"],
                lacks: &[],
            },
            EvalCase {
                name: "get_user_profile result has the SSN redacted",
                args: &[
                    "--tool",
                    "get_user_profile",
                    "--result",
                    r#"{"user_pii":{"name":"Ann","social_security_number":"123-45-6789","bank":{"account_number":"DE89370400440532013000"}}}"#,
                ],
                code: OK,
                has: &[
                    "effect:  allow",
                    "phase:   after",
                    "[REDACTED]",
                    "\"name\": \"Ann\"",
                    "field:   user_pii.social_security_number redacted (rule {config}:20)",
                    "field:   user_pii.bank.account_number redacted",
                ],
                lacks: &["123-45-6789", "DE89370400440532013000"],
            },
            EvalCase {
                name: "read_emails result with attachments awaits approval",
                args: &[
                    "--tool",
                    "read_emails",
                    "--result",
                    r#"{"subject":"hello","body":"the secret body","attachments":[{"name":"payslip.pdf"}]}"#,
                ],
                code: ELICIT,
                has: &[
                    "effect:  elicit",
                    "phase:   after",
                    "field:   attachments pending approval (rule {config}:19)",
                    "field:   body redacted (rule {config}:18)",
                    "\"attachments\": \"[REDACTED]\"",
                    "\"subject\": \"hello\"",
                ],
                lacks: &["payslip.pdf", "the secret body"],
            },
            EvalCase {
                name: "read_emails result without attachments is allowed",
                args: &[
                    "--tool",
                    "read_emails",
                    "--result",
                    r#"{"subject":"hello","body":"b0dy"}"#,
                ],
                code: OK,
                has: &["effect:  allow", "field:   body redacted"],
                lacks: &["pending approval", "b0dy"],
            },
            EvalCase {
                name: "contacts[*].phone is redacted in every item",
                args: &[
                    "--tool",
                    "list_contacts",
                    "--result",
                    r#"{"contacts":[{"name":"a","phone":"555-0101"},{"name":"b","phone":"555-0102"}]}"#,
                ],
                code: OK,
                has: &["field:   contacts[*].phone redacted"],
                lacks: &["555-0101", "555-0102"],
            },
            EvalCase {
                name: "--phase before with a result evaluates the before phase",
                args: &[
                    "--tool",
                    "admin_tool",
                    "--phase",
                    "before",
                    "--result",
                    "{}",
                ],
                code: DENY,
                has: &["phase:   before"],
                lacks: &["result:"],
            },
        ],
    );
}

#[test]
fn eval_structured_decisions() {
    run_eval_cases(
        STRUCTURED,
        &[
            EvalCase {
                name: "analyst reads with a small limit",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "analyst",
                    "--args",
                    r#"{"limit": 10}"#,
                ],
                code: OK,
                has: &["effect:  allow", "analysts-read "],
                lacks: &[],
            },
            EvalCase {
                name: "a numeric string limit under the cap counts as a number",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "analyst",
                    "--args",
                    r#"{"limit": "500"}"#,
                ],
                code: OK,
                has: &["effect:  allow", "analysts-read "],
                lacks: &["could not be evaluated"],
            },
            EvalCase {
                name: "a numeric string limit over the cap is compared as a number",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "analyst",
                    "--args",
                    r#"{"limit": "5000"}"#,
                ],
                code: DENY,
                has: &["effect:  deny", "default_effect"],
                lacks: &["analysts-read", "could not be evaluated"],
            },
            EvalCase {
                name: "a numeric limit over the cap",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "analyst",
                    "--args",
                    r#"{"limit": 5000}"#,
                ],
                code: DENY,
                has: &["effect:  deny"],
                lacks: &["analysts-read"],
            },
            EvalCase {
                name: "a non-numeric limit cannot be evaluated and the allow rule does not apply",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "analyst",
                    "--args",
                    r#"{"limit": "lots"}"#,
                ],
                code: DENY,
                has: &[
                    "note:    rule analysts-read: condition `args.limit lte` could not be evaluated",
                    "the allow rule does not apply",
                ],
                lacks: &[],
            },
            EvalCase {
                name: "no limit uses the default-page rule",
                args: &["--tool", "get_ticket", "--role", "analyst"],
                code: OK,
                has: &["effect:  allow", "analysts-read-default-page"],
                lacks: &[],
            },
            EvalCase {
                name: "without a role nothing applies",
                args: &["--tool", "get_ticket"],
                code: DENY,
                has: &["default_effect"],
                lacks: &[],
            },
            EvalCase {
                name: "wildcard delete is denied even for admins",
                args: &[
                    "--tool",
                    "delete_ticket",
                    "--role",
                    "admin",
                    "--args",
                    r#"{"id":"*"}"#,
                ],
                code: DENY,
                has: &[
                    "effect:  deny",
                    "reason:  tool \"delete_ticket\" denied by policy rule no-bulk-delete",
                    "no-bulk-delete  [tool_access, server, priority 100]",
                ],
                lacks: &[],
            },
            EvalCase {
                name: "admin deletes one ticket",
                args: &[
                    "--tool",
                    "delete_ticket",
                    "--role",
                    "admin",
                    "--args",
                    r#"{"id":"42"}"#,
                ],
                code: OK,
                has: &["effect:  allow", "admins-write"],
                lacks: &["no-bulk-delete"],
            },
            EvalCase {
                name: "analyst may not delete",
                args: &[
                    "--tool",
                    "delete_ticket",
                    "--role",
                    "analyst",
                    "--args",
                    r#"{"id":"42"}"#,
                ],
                code: DENY,
                has: &["default_effect"],
                lacks: &[],
            },
            EvalCase {
                name: "external export needs approval",
                args: &[
                    "--tool",
                    "export_report",
                    "--role",
                    "analyst",
                    "--args",
                    r#"{"destination":"s3"}"#,
                ],
                code: ELICIT,
                has: &["effect:  elicit", "confirm-external-export"],
                lacks: &[],
            },
            EvalCase {
                name: "internal export is allowed",
                args: &[
                    "--tool",
                    "export_report",
                    "--role",
                    "analyst",
                    "--args",
                    r#"{"destination":"internal"}"#,
                ],
                code: OK,
                has: &["effect:  allow", "internal-export"],
                lacks: &["confirm-external-export"],
            },
            EvalCase {
                name: "contractor outside support is denied by rule",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "contractor",
                    "--attr",
                    "department=sales",
                ],
                code: DENY,
                has: &["reason:  tool \"get_ticket\" denied by policy rule contractors-limited"],
                lacks: &["default_effect"],
            },
            EvalCase {
                name: "contractor in support with no allow rule is denied by default",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "contractor",
                    "--attr",
                    "department=support",
                ],
                code: DENY,
                has: &["reason:  no rule applies to tool \"get_ticket\"; default_effect is deny"],
                lacks: &["contractors-limited"],
            },
            EvalCase {
                name: "contractor-analyst in support is allowed (the deny rule does not apply)",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "contractor",
                    "--role",
                    "analyst",
                    "--attr",
                    "department=support",
                ],
                code: OK,
                has: &["effect:  allow"],
                lacks: &["contractors-limited"],
            },
            EvalCase {
                name: "contractor-analyst in sales: deny beats allow",
                args: &[
                    "--tool",
                    "get_ticket",
                    "--role",
                    "contractor",
                    "--role",
                    "analyst",
                    "--attr",
                    "department=sales",
                ],
                code: DENY,
                has: &[
                    "denied by policy rule contractors-limited",
                    "analysts-read-default-page",
                ],
                lacks: &[],
            },
        ],
    );
}

/// An MCP-shaped ticket result: the same JSON as a text item and as structuredContent.
fn mcp_ticket_result() -> String {
    let ticket = json!({
        "id": 7,
        "title": "printer on fire",
        "customer": {
            "name": "Bo",
            "email": "bo@example.com",
            "phone": "555-0199",
            "payment": { "card_number": "4111111111111111" }
        },
        "internal_notes": "VIP, handle with care"
    });
    json!({
        "content": [{ "type": "text", "text": ticket.to_string() }],
        "structuredContent": ticket,
    })
    .to_string()
}

const TICKET_SECRETS: &[&str] = &[
    "bo@example.com",
    "555-0199",
    "4111111111111111",
    "VIP, handle with care",
];

fn assert_ticket_redacted(ticket: &Value, view: &str) {
    let obj = ticket
        .as_object()
        .unwrap_or_else(|| panic!("{view}: not an object: {ticket}"));
    // redaction: remove, so the keys are gone rather than replaced.
    assert!(!obj.contains_key("internal_notes"), "{view}: {ticket}");
    let customer = &ticket["customer"];
    assert!(customer.get("email").is_none(), "{view}: {ticket}");
    assert!(customer.get("phone").is_none(), "{view}: {ticket}");
    assert!(
        customer["payment"].get("card_number").is_none(),
        "{view}: {ticket}"
    );
    // Everything else survives.
    assert_eq!(ticket["id"], json!(7), "{view}: {ticket}");
    assert_eq!(
        ticket["title"],
        json!("printer on fire"),
        "{view}: {ticket}"
    );
    assert_eq!(customer["name"], json!("Bo"), "{view}: {ticket}");
    assert!(
        !ticket.to_string().contains("[REDACTED]"),
        "{view}: remove mode: {ticket}"
    );
}

#[test]
fn eval_after_phase_redacts_mcp_text_and_structured_content() {
    let result = mcp_ticket_result();
    let r = eval(
        STRUCTURED,
        &[
            "--tool",
            "get_ticket",
            "--role",
            "analyst",
            "--result",
            &result,
            "--json",
        ],
    );
    assert_eq!(
        r.code,
        ELICIT,
        "internal_notes is pending approval\n{}",
        r.explain()
    );
    for secret in TICKET_SECRETS {
        assert!(
            !r.stdout.contains(secret),
            "{secret:?} leaked\n{}",
            r.explain()
        );
    }
    let out = parse_json(&r.stdout, "eval --json");
    assert_eq!(out["decision"]["effect"], "elicit", "{}", r.explain());
    assert_eq!(out["decision"]["phase"], "after", "{}", r.explain());

    let shown = &out["result"];
    assert_ticket_redacted(&shown["structuredContent"], "structuredContent");
    let items = shown["content"].as_array().expect("content stays a list");
    assert_eq!(items.len(), 1, "{}", r.explain());
    assert_eq!(items[0]["type"], "text");
    let text = items[0]["text"].as_str().expect("text item keeps its text");
    assert_ticket_redacted(&parse_json(text, "redacted text item"), "content[0].text");

    let redactions: BTreeSet<(String, String, String)> = out["decision"]["redactions"]
        .as_array()
        .expect("redactions is a list")
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
                r["effect"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = |p: &str, rule: &str, e: &str| (p.to_string(), rule.to_string(), e.to_string());
    let want: BTreeSet<_> = [
        expect("customer.email", "hide-customer-pii", "deny"),
        expect("customer.phone", "hide-customer-pii", "deny"),
        expect("/customer/payment/card_number", "hide-customer-pii", "deny"),
        expect("internal_notes", "notes-need-approval", "elicit"),
    ]
    .into_iter()
    .collect();
    assert_eq!(redactions, want, "{}", r.explain());

    // The text rendering says the same.
    let r = eval(
        STRUCTURED,
        &[
            "--tool",
            "get_ticket",
            "--role",
            "analyst",
            "--result",
            &result,
        ],
    );
    assert_eq!(r.code, ELICIT, "{}", r.explain());
    assert!(
        r.stdout
            .contains("field:   internal_notes pending approval (rule notes-need-approval)"),
        "{}",
        r.explain()
    );
    assert!(
        r.stdout
            .contains("field:   customer.email redacted (rule hide-customer-pii)"),
        "{}",
        r.explain()
    );
    for secret in TICKET_SECRETS {
        assert!(
            !r.stdout.contains(secret),
            "{secret:?} leaked\n{}",
            r.explain()
        );
    }
}

#[test]
fn eval_after_phase_without_pending_fields_is_allowed() {
    // list_tickets has only the deny rule: redactions happen, nothing awaits approval.
    let result = json!({
        "tickets": [
            { "id": 1, "customer": { "name": "A", "email": "a@example.com" } },
            { "id": 2, "customer": { "name": "B", "email": "b@example.com" } }
        ]
    })
    .to_string();
    let r = eval(
        STRUCTURED,
        &[
            "--tool",
            "list_tickets",
            "--role",
            "analyst",
            "--result",
            &result,
        ],
    );
    assert_eq!(r.code, OK, "{}", r.explain());
    assert!(
        r.stdout
            .contains("field:   tickets[*].customer.email redacted"),
        "{}",
        r.explain()
    );
    assert!(!r.stdout.contains("a@example.com"), "{}", r.explain());
    assert!(!r.stdout.contains("b@example.com"), "{}", r.explain());
    assert!(!r.stdout.contains("pending approval"), "{}", r.explain());
}

// ---------------------------------------------------------------------------------------------
// eval --json
// ---------------------------------------------------------------------------------------------

#[test]
fn eval_json_output_has_the_decision_fields() {
    // A deny by rule.
    let r = eval(EMAIL, &["--tool", "admin_tool", "--json"]);
    assert_eq!(r.code, DENY, "{}", r.explain());
    let out = parse_json(&r.stdout, "eval --json");
    let d = &out["decision"];
    assert_eq!(out["tool"], "admin_tool", "{out}");
    assert_eq!(d["effect"], "deny", "{out}");
    assert_eq!(d["phase"], "before", "{out}");
    assert_eq!(d["by_default"], false, "{out}");
    let matched = d["matched"].as_array().expect("matched is a list");
    let ids: Vec<&str> = matched.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [format!("{EMAIL}:14")], "{out}");
    assert_eq!(matched[0]["policy"], "tool_access", "{out}");
    assert_eq!(matched[0]["effect"], "deny", "{out}");
    assert_eq!(d["redactions"], json!([]), "{out}");
    let elapsed = d["elapsed_us"].as_f64().expect("elapsed_us is a number");
    assert!((0.0..10_000_000.0).contains(&elapsed), "{out}");
    assert!(
        out.get("result").is_none(),
        "no result in the before phase: {out}"
    );

    // A deny by default.
    let r = eval(EMAIL, &["--tool", "drop_database", "--json"]);
    assert_eq!(r.code, DENY, "{}", r.explain());
    let out = parse_json(&r.stdout, "eval --json");
    assert_eq!(out["decision"]["by_default"], true, "{out}");
    assert_eq!(out["decision"]["matched"], json!([]), "{out}");
    assert!(
        out["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("default_effect"),
        "{out}"
    );

    // Elicit.
    let r = eval(EMAIL, &["--tool", "send_email", "--json"]);
    assert_eq!(r.code, ELICIT, "{}", r.explain());
    assert_eq!(
        parse_json(&r.stdout, "eval --json")["decision"]["effect"],
        "elicit"
    );

    // After phase: redactions and the redacted result.
    let r = eval(
        EMAIL,
        &[
            "--tool",
            "get_user_profile",
            "--result",
            r#"{"user_pii":{"name":"Ann","social_security_number":"123-45-6789"}}"#,
            "--json",
        ],
    );
    assert_eq!(r.code, OK, "{}", r.explain());
    let out = parse_json(&r.stdout, "eval --json");
    assert_eq!(out["decision"]["effect"], "allow", "{out}");
    assert_eq!(
        out["decision"]["redactions"],
        json!([{
            "path": "user_pii.social_security_number",
            "rule": format!("{EMAIL}:20"),
            "effect": "deny"
        }]),
        "{out}"
    );
    assert_eq!(
        out["result"],
        json!({"user_pii": {"name": "Ann", "social_security_number": "[REDACTED]"}}),
        "{out}"
    );
    assert!(!r.stdout.contains("123-45-6789"), "{}", r.explain());
}

// ---------------------------------------------------------------------------------------------
// eval: bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn eval_bad_input_exits_1_with_a_clear_message() {
    let dir = TempDir::new().unwrap();
    let broken = write_policy(
        &dir,
        "broken.yaml",
        "policies:\n  - \"bf:send_email:tool_access:alow\"\n",
    );
    let missing = dir
        .path()
        .join("missing.yaml")
        .to_str()
        .unwrap()
        .to_string();

    // (name, full argument list, stderr fragments)
    let cases: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        (
            "--args not JSON",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "read_emails",
                "--args",
                "{limit: 10",
            ],
            vec!["error: --args is not valid JSON".into()],
        ),
        (
            "--args a list",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "read_emails",
                "--args",
                "[1, 2]",
            ],
            vec!["error: --args must be a JSON object".into()],
        ),
        (
            "--args a string",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "read_emails",
                "--args",
                "\"x\"",
            ],
            vec!["error: --args must be a JSON object".into()],
        ),
        (
            "--result not JSON",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "read_emails",
                "--result",
                "{",
            ],
            vec!["error: --result is not valid JSON".into()],
        ),
        (
            "--phase after without --result",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "read_emails",
                "--phase",
                "after",
            ],
            vec!["error: --phase after needs --result".into()],
        ),
        (
            "--now not RFC 3339",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "beta_search",
                "--now",
                "tomorrow",
            ],
            vec!["error: --now \"tomorrow\" is not an RFC 3339 time".into()],
        ),
        (
            "--now before 1970",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "beta_search",
                "--now",
                "1960-01-01T00:00:00Z",
            ],
            vec!["--now \"1960-01-01T00:00:00Z\" is before 1970".into()],
        ),
        (
            "broken policy file",
            vec!["eval", "-c", &broken, "--tool", "send_email"],
            vec![
                format!("{broken}:2:5: unknown action \"alow\": expected allow, deny or elicit"),
                "    |   - \"bf:send_email:tool_access:alow\"".into(),
                format!("{broken}: the policy was not loaded"),
            ],
        ),
        (
            "missing policy file",
            vec!["eval", "-c", &missing, "--tool", "send_email"],
            vec![format!("{missing}: cannot read policy file")],
        ),
        (
            "unknown flag",
            vec!["eval", "-c", EMAIL, "--tool", "read_emails", "--bogus"],
            vec!["unexpected argument '--bogus'".into(), "Usage:".into()],
        ),
        (
            "missing --tool",
            vec!["eval", "-c", EMAIL],
            vec![
                "required arguments were not provided".into(),
                "--tool <TOOL>".into(),
            ],
        ),
        (
            "missing --config",
            vec!["eval", "--tool", "read_emails"],
            vec![
                "required arguments were not provided".into(),
                "--config <CONFIG>".into(),
            ],
        ),
        (
            "bad --phase value",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "read_emails",
                "--phase",
                "during",
            ],
            vec!["invalid value 'during' for '--phase".into()],
        ),
        (
            "--attr without =",
            vec![
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "read_emails",
                "--attr",
                "department",
            ],
            vec!["expected KEY=VALUE, found \"department\"".into()],
        ),
        (
            "bad --log-format",
            vec![
                "--log-format",
                "xml",
                "eval",
                "-c",
                EMAIL,
                "--tool",
                "read_emails",
            ],
            vec!["invalid value 'xml' for '--log-format".into()],
        ),
        (
            "unknown subcommand",
            vec!["evaluate", "-c", EMAIL, "--tool", "read_emails"],
            vec!["unrecognized subcommand 'evaluate'".into()],
        ),
        ("no subcommand", vec![], vec!["Usage:".into()]),
        (
            "check without --config",
            vec!["check"],
            vec!["--config <CONFIG>".into()],
        ),
    ];
    for (name, args, fragments) in &cases {
        let r = run(args);
        assert_eq!(r.code, BAD_INPUT, "{name}: {}", r.explain());
        assert!(
            r.stdout.is_empty(),
            "{name}: no decision on stdout\n{}",
            r.explain()
        );
        for f in fragments {
            assert!(
                r.stderr.contains(f.as_str()),
                "{name}: stderr lacks {f:?}\n{}",
                r.explain()
            );
        }
        assert!(!r.stderr.contains("panicked"), "{name}: {}", r.explain());
    }
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        vec!["--help"],
        vec!["eval", "--help"],
        vec!["check", "--help"],
        vec!["--version"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, OK, "{args:?}: {}", r.explain());
        assert!(!r.stdout.is_empty(), "{args:?}: {}", r.explain());
    }
    let r = run(["eval", "--help"]);
    assert!(r.stdout.contains("--tool <TOOL>"), "{}", r.explain());
    let r = run(["--version"]);
    assert!(r.stdout.starts_with("portcullis "), "{}", r.explain());
}

// ---------------------------------------------------------------------------------------------
// Audit log on stderr
// ---------------------------------------------------------------------------------------------

/// The JSON audit events on stderr.
fn json_audit_events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_json(l, "a --log-format json stderr line"))
        .filter(|v| v["target"] == "portcullis::audit")
        .collect()
}

#[test]
fn log_format_json_writes_the_audit_event_as_a_json_line() {
    // --log-format is global: before or after the subcommand.
    let placements: [Vec<&str>; 2] = [
        vec![
            "--log-format",
            "json",
            "eval",
            "-c",
            EMAIL,
            "--tool",
            "admin_tool",
        ],
        vec![
            "eval",
            "-c",
            EMAIL,
            "--tool",
            "admin_tool",
            "--log-format",
            "json",
        ],
    ];
    for args in &placements {
        let r = run(args);
        assert_eq!(r.code, DENY, "{args:?}: {}", r.explain());
        let events = json_audit_events(&r.stderr);
        assert_eq!(
            events.len(),
            1,
            "{args:?}: one audit event\n{}",
            r.explain()
        );
        let e = &events[0];
        assert_eq!(e["tool"], "admin_tool", "{e}");
        assert_eq!(e["effect"], "deny", "{e}");
        assert_eq!(e["phase"], "before", "{e}");
        assert_eq!(e["rules"], format!("{EMAIL}:14"), "{e}");
        assert_eq!(e["level"], "INFO", "{e}");
        assert_eq!(e["by_default"], false, "{e}");
        // The decision itself still goes to stdout as text.
        assert!(r.stdout.contains("effect:  deny"), "{}", r.explain());
    }

    // After phase: the event lists the redacted paths but never the values.
    let r = run([
        "--log-format",
        "json",
        "eval",
        "-c",
        EMAIL,
        "--tool",
        "read_emails",
        "--user",
        "alice",
        "--role",
        "staff",
        "--result",
        r#"{"body":"the secret body","attachments":["payslip.pdf"]}"#,
    ]);
    assert_eq!(r.code, ELICIT, "{}", r.explain());
    let events = json_audit_events(&r.stderr);
    assert_eq!(events.len(), 1, "{}", r.explain());
    let e = &events[0];
    assert_eq!(e["tool"], "read_emails", "{e}");
    assert_eq!(e["effect"], "elicit", "{e}");
    assert_eq!(e["phase"], "after", "{e}");
    assert_eq!(e["user"], "alice", "{e}");
    assert_eq!(e["roles"], "staff", "{e}");
    assert_eq!(e["rules"], format!("{EMAIL}:18,{EMAIL}:19"), "{e}");
    assert_eq!(e["redacted"], "body,attachments", "{e}");
    assert!(!r.stderr.contains("the secret body"), "{}", r.explain());
    assert!(!r.stderr.contains("payslip.pdf"), "{}", r.explain());
}

#[test]
fn default_text_log_has_the_audit_event() {
    let r = eval(EMAIL, &["--tool", "admin_tool"]);
    assert_eq!(r.code, DENY, "{}", r.explain());
    let audit: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("portcullis::audit"))
        .collect();
    assert_eq!(audit.len(), 1, "one audit line\n{}", r.explain());
    let line = audit[0];
    assert!(line.contains("effect=deny"), "{line}");
    assert!(line.contains("tool=admin_tool"), "{line}");
    assert!(line.contains("phase=before"), "{line}");
    assert!(line.contains(&format!("rules={EMAIL}:14")), "{line}");
    assert!(
        serde_json::from_str::<Value>(line).is_err(),
        "text mode is not JSON: {line}"
    );

    let r = eval(EMAIL, &["--tool", "read_emails"]);
    assert_eq!(r.code, OK, "{}", r.explain());
    assert!(r.stderr.contains("portcullis::audit"), "{}", r.explain());
    assert!(r.stderr.contains("effect=allow"), "{}", r.explain());
}

#[test]
fn log_filter_can_silence_the_audit_event() {
    let r = run(["--log", "off", "eval", "-c", EMAIL, "--tool", "admin_tool"]);
    assert_eq!(r.code, DENY, "{}", r.explain());
    assert!(r.stderr.is_empty(), "--log off\n{}", r.explain());

    let r = run_with_env(
        ["eval", "-c", EMAIL, "--tool", "admin_tool"],
        &[("RUST_LOG", "off")],
    );
    assert_eq!(r.code, DENY, "{}", r.explain());
    assert!(
        r.stderr.is_empty(),
        "RUST_LOG=off overrides the default filter\n{}",
        r.explain()
    );

    // check decides nothing, so it logs nothing by default.
    let r = run(["--log-format", "json", "check", "-c", EMAIL]);
    assert_eq!(r.code, OK, "{}", r.explain());
    assert!(r.stderr.is_empty(), "{}", r.explain());
}
