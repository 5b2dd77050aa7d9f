//! `business_hours`: a Portcullis enforcer that lets a tool run only inside a weekly time
//! window in a given time zone, e.g. `bf:deploy:business_hours:allow:0900-1700:mon-fri:tz=Europe/Berlin`.
//!
//! The decision logic lives in [`schedule`] (plain Rust, tested on the host); this file is the
//! thin wit-bindgen layer that maps the WIT types onto it.

pub mod schedule;

use schedule::{Action as A, Verdict as V};

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
struct BusinessHours;

impl Guest for BusinessHours {
    fn metadata() -> Info {
        Info {
            name: "business_hours".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Allows a tool only inside a weekly time window (default 09:00-17:00 mon-fri UTC) in a time zone".into(),
            // Only before: once a tool has run, the time of day cannot undo it.
            phases: vec![Phase::Before],
        }
    }

    fn validate(caveat: Caveat) -> Result<(), String> {
        schedule::parse_params(&caveat.params).map(drop)
    }

    fn enforce(caveat: Caveat, _subject: Subject, request: Request) -> Verdict {
        let action = match caveat.action {
            Action::Allow => A::Allow,
            Action::Deny => A::Deny,
            Action::Elicit => A::Elicit,
        };
        match schedule::decide(action, &request.tool, &caveat.params, request.now_unix_ms) {
            V::Allow => Verdict::Allow(Vec::new()),
            V::Deny(reason) => Verdict::Deny(reason),
            V::Elicit(question) => Verdict::Elicit(question),
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(BusinessHours);

#[cfg(test)]
mod tests {
    use super::*;

    fn caveat(action: Action, params: &[&str]) -> Caveat {
        Caveat {
            raw: "bf:deploy:business_hours:allow:0900-1700".into(),
            phase: Phase::Before,
            tool: "deploy".into(),
            policy: "business_hours".into(),
            action,
            params: params.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn request(now_unix_ms: u64) -> Request {
        Request {
            tool: "deploy".into(),
            arguments: "{}".into(),
            result: None,
            now_unix_ms,
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

    /// Friday 2026-11-20 12:00 UTC and Saturday 2026-11-21 12:00 UTC.
    const FRIDAY_NOON: u64 = 1_795_176_000_000;
    const SATURDAY_NOON: u64 = FRIDAY_NOON + 86_400_000;

    #[test]
    fn metadata_names_the_enforcer() {
        let info = BusinessHours::metadata();
        assert_eq!(info.name, "business_hours");
        assert!(matches!(info.phases.as_slice(), [Phase::Before]));
    }

    #[test]
    fn validate_maps_to_result() {
        // The compact grammar's split of 09:00-17:00 is accepted.
        let split = ["09", "00-17", "00", "mon-fri", "tz=Europe/Berlin"];
        assert!(BusinessHours::validate(caveat(Action::Allow, &split)).is_ok());
        assert_eq!(
            BusinessHours::validate(caveat(Action::Allow, &["fr"])),
            Err(
                "unknown day \"fr\": expected mon..sun, a range like mon-fri, a list or daily"
                    .into()
            )
        );
    }

    #[test]
    fn enforce_maps_each_verdict() {
        let allowed =
            BusinessHours::enforce(caveat(Action::Allow, &[]), subject(), request(FRIDAY_NOON));
        assert!(
            matches!(allowed, Verdict::Allow(ref c) if c.is_empty()),
            "{allowed:?}"
        );
        let denied = BusinessHours::enforce(
            caveat(Action::Allow, &[]),
            subject(),
            request(SATURDAY_NOON),
        );
        assert!(
            matches!(denied, Verdict::Deny(ref m) if m == "deploy is only allowed 09:00-17:00 mon-fri UTC; it is now Sat 12:00 UTC"),
            "{denied:?}"
        );
        let asked = BusinessHours::enforce(
            caveat(Action::Elicit, &[]),
            subject(),
            request(SATURDAY_NOON),
        );
        assert!(
            matches!(asked, Verdict::Elicit(ref m) if m.ends_with("allow it anyway?")),
            "{asked:?}"
        );
    }
}
