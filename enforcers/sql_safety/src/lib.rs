//! `sql_safety`: a Portcullis enforcer that parses the SQL a tool is about to run and refuses
//! writes, listed statement kinds, stacked statements or unbounded DELETE/UPDATE, e.g.
//! `bf:run_query:sql_safety:deny:read_only:dialect=sqlite`.
//!
//! The decision logic lives in [`check`] (plain Rust, tested on the host); this file is the
//! thin wit-bindgen layer that maps the WIT types onto it.

pub mod check;

use check::{Action as A, Verdict as V};

wit_bindgen::generate!({
    world: "policy-enforcer",
    path: "../../wit",
});

use exports::portcullis::policy::enforcer::{
    Action, Caveat, Guest, Info, Phase, Request, Subject, Verdict,
};

/// The exported component. `export!` only runs for wasm32: natively the `module:iface#func`
/// export names break the linker's version script, and natively this type exists so that
/// the glue is type-checked, linted and unit-tested.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct SqlSafety;

impl Guest for SqlSafety {
    fn metadata() -> Info {
        Info {
            name: "sql_safety".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Parses a tool's SQL argument and refuses writes (read_only), listed statement kinds (deny=), stacked statements (no_multi) and DELETE/UPDATE without WHERE (require_where=)".into(),
            // Only before: after the tool ran, the SQL has already done what it does.
            phases: vec![Phase::Before],
        }
    }

    fn validate(caveat: Caveat) -> Result<(), String> {
        check::parse_params(&caveat.params).map(drop)
    }

    fn enforce(caveat: Caveat, _subject: Subject, request: Request) -> Verdict {
        let action = match caveat.action {
            Action::Allow => A::Allow,
            Action::Deny => A::Deny,
            Action::Elicit => A::Elicit,
        };
        match check::decide(action, &request.tool, &request.arguments, &caveat.params) {
            V::Allow => Verdict::Allow(Vec::new()),
            V::Deny(reason) => {
                log(&reason);
                Verdict::Deny(reason)
            }
            V::Elicit(question) => Verdict::Elicit(question),
        }
    }
}

/// Refusals go to the host's log too (target `portcullis::enforcer`), where operators see
/// them next to the audit event. Natively (unit tests) there is no host to log to.
fn log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    portcullis::policy::host::log(portcullis::policy::host::Level::Debug, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = message;
}

#[cfg(target_arch = "wasm32")]
export!(SqlSafety);

#[cfg(test)]
mod tests {
    use super::*;

    fn caveat(action: Action, params: &[&str]) -> Caveat {
        Caveat {
            raw: "bf:run_query:sql_safety:deny:read_only".into(),
            phase: Phase::Before,
            tool: "run_*".into(),
            policy: "sql_safety".into(),
            action,
            params: params.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn request(arguments: &str) -> Request {
        Request {
            tool: "run_query".into(),
            arguments: arguments.into(),
            result: None,
            now_unix_ms: 0,
            session: String::new(),
        }
    }

    fn subject() -> Subject {
        Subject {
            user: "ann".into(),
            roles: vec![],
            agent: None,
            attributes: vec![],
        }
    }

    #[test]
    fn metadata_names_the_enforcer() {
        let info = SqlSafety::metadata();
        assert_eq!(info.name, "sql_safety");
        assert!(matches!(info.phases.as_slice(), [Phase::Before]));
    }

    #[test]
    fn validate_maps_to_result() {
        assert!(
            SqlSafety::validate(caveat(Action::Deny, &["read_only", "dialect=sqlite"])).is_ok()
        );
        assert_eq!(
            SqlSafety::validate(caveat(Action::Deny, &["dialect=postgress"])),
            Err(
                "unknown dialect \"postgress\": expected sqlite, postgres, mysql or generic".into()
            )
        );
    }

    #[test]
    fn enforce_maps_each_verdict() {
        let ro = ["read_only"];
        let ok = SqlSafety::enforce(
            caveat(Action::Deny, &ro),
            subject(),
            request(r#"{"query":"SELECT 1"}"#),
        );
        assert!(
            matches!(ok, Verdict::Allow(ref caveats) if caveats.is_empty()),
            "{ok:?}"
        );
        let drop = r#"{"query":"DROP TABLE t"}"#;
        let denied = SqlSafety::enforce(caveat(Action::Allow, &ro), subject(), request(drop));
        assert!(
            matches!(denied, Verdict::Deny(ref m) if m.contains("DROP")),
            "{denied:?}"
        );
        let asked = SqlSafety::enforce(caveat(Action::Elicit, &ro), subject(), request(drop));
        assert!(
            matches!(asked, Verdict::Elicit(ref m) if m.starts_with("run_query wants")),
            "{asked:?}"
        );
    }
}
