//! `portcullis eval`: evaluate one call and explain the decision.

use std::path::PathBuf;

use chrono::DateTime;
use serde_json::{Value, json};

use crate::decision::{Decision, Effect, Phase};
use crate::engine::Engine;
use crate::request::{Request, Subject};
use crate::result::ToolResult;
use crate::token::{Keyring, VerifiedToken, VerifyOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file.
    #[arg(long, short)]
    config: PathBuf,
    /// The tool being called.
    #[arg(long)]
    tool: String,
    /// Which phase to evaluate; defaults to `after` when --result is given, else `before`.
    #[arg(long, value_enum)]
    phase: Option<PhaseArg>,
    /// The caller's user id.
    #[arg(long, default_value = "anonymous")]
    user: String,
    /// A role of the caller (repeatable).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// The agent acting for the user.
    #[arg(long)]
    agent: Option<String>,
    /// A subject attribute KEY=VALUE (repeatable), visible to conditions as user.attributes.KEY.
    #[arg(long = "attr", value_parser = parse_attr)]
    attributes: Vec<(String, String)>,
    /// The call's arguments, a JSON object.
    #[arg(long)]
    args: Option<String>,
    /// The tool's result (after phase): an MCP CallToolResult object or any JSON value.
    #[arg(long)]
    result: Option<String>,
    /// Evaluate as of this RFC 3339 time instead of now (to test expiring rules).
    #[arg(long)]
    now: Option<String>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
    /// The caller's capability token (base64url V2 or V2JSON; `-` reads stdin). The subject
    /// comes from the token, and its caveats apply on top of the policy. The key comes from
    /// the variable named by the policy's config.secret_key_env.
    #[arg(long, conflicts_with_all = ["user", "roles"])]
    token: Option<String>,
    /// A discharge for one of the token's third-party caveats (repeatable).
    #[arg(long = "discharge", requires = "token")]
    discharges: Vec<String>,
    /// Verify --token with the public development key (demos only; logs a warning).
    #[arg(long, requires = "token")]
    insecure_dev_key: bool,
    /// When the decision is elicit, record the user's answer in the token as a sealed grant
    /// and print the new token.
    #[arg(long, value_enum, requires = "token")]
    grant: Option<GrantArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GrantArg {
    Accept,
    Decline,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PhaseArg {
    Before,
    After,
}

fn parse_attr(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, found {s:?}"))
}

pub fn run(args: &Args) -> u8 {
    match evaluate(args) {
        Ok(Outcome {
            decision,
            result,
            token,
        }) => {
            print_decision(args, &decision, result.as_ref(), token.as_deref());
            match decision.effect {
                Effect::Allow => 0,
                Effect::Deny => super::EXIT_DENY,
                Effect::Elicit => super::EXIT_ELICIT,
            }
        }
        Err(Failure::Input(message)) => {
            eprintln!("error: {message}");
            super::EXIT_BAD_INPUT
        }
        Err(Failure::Policy(errors, file)) => {
            eprintln!("{errors}");
            eprintln!("{file}: the policy was not loaded");
            super::EXIT_BAD_INPUT
        }
    }
}

/// Why eval could not decide: the policy file (already formatted per error) or the input.
enum Failure {
    Policy(crate::policy::LoadErrors, String),
    Input(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Input(s)
    }
}

impl From<&str> for Failure {
    fn from(s: &str) -> Self {
        Failure::Input(s.to_string())
    }
}

/// What eval produced: the decision, the (redacted) result, and the token with a new grant.
struct Outcome {
    decision: Decision,
    result: Option<Value>,
    token: Option<String>,
}

fn evaluate(args: &Args) -> Result<Outcome, Failure> {
    let engine = Engine::from_file(&args.config)
        .map_err(|e| Failure::Policy(e, args.config.display().to_string()))?;
    let arguments = match &args.args {
        None => Value::Object(Default::default()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err("--args must be a JSON object, e.g. '{\"limit\": 10}'".into());
            }
            Err(e) => return Err(format!("--args is not valid JSON: {e}").into()),
        },
    };
    let subject = Subject {
        user: args.user.clone(),
        roles: args.roles.clone(),
        agent: args.agent.clone(),
        attributes: args.attributes.iter().cloned().collect(),
    };
    let mut request = Request::new(subject, args.tool.clone(), arguments);
    if let Some(now) = &args.now {
        let t = DateTime::parse_from_rfc3339(now).map_err(|e| {
            format!("--now {now:?} is not an RFC 3339 time ({e}), e.g. 2026-12-31T09:30:00Z")
        })?;
        request.now_unix_ms = u64::try_from(t.timestamp_millis())
            .map_err(|_| format!("--now {now:?} is before 1970"))?;
    }
    let phase = match (args.phase, &args.result) {
        (Some(PhaseArg::Before), _) | (None, None) => Phase::Before,
        (Some(PhaseArg::After), _) | (None, Some(_)) => Phase::After,
    };
    let Some(token_text) = &args.token else {
        let (decision, result) = decide(&engine, &request, phase, args, None)?;
        return Ok(Outcome {
            decision,
            result,
            token: None,
        });
    };
    let keys = if args.insecure_dev_key {
        Keyring::insecure_dev()
    } else {
        Keyring::from_env(engine.snapshot().config()).map_err(|e| e.to_string())?
    };
    let text = super::token::token_arg(token_text).map_err(|e| format!("{e:#}"))?;
    let discharges: Vec<&str> = args.discharges.iter().map(String::as_str).collect();
    let opts = VerifyOptions {
        now_unix_ms: request.now_unix_ms,
        user: None,
    };
    let verified = match engine.verify_token(&keys, &text, &discharges, &opts) {
        Ok(v) => v,
        Err(e) => {
            // What a server would do: refuse the call, saying why.
            return Ok(Outcome {
                decision: engine.reject(&request, phase, &e),
                result: None,
                token: None,
            });
        }
    };
    request.subject.user = verified.subject.user.clone();
    request.subject.roles = verified.subject.roles.clone();
    let (mut decision, result) = decide(&engine, &request, phase, args, Some(&verified))?;
    decision.notes.extend(verified.notes.iter().cloned());
    let token = match args.grant {
        Some(answer) if decision.effect == Effect::Elicit => Some(
            engine
                .grant(
                    &keys,
                    &verified,
                    &request,
                    &decision,
                    answer == GrantArg::Accept,
                )
                .map_err(|e| e.to_string())?,
        ),
        _ => None,
    };
    Ok(Outcome {
        decision,
        result,
        token,
    })
}

/// Evaluates one phase, with the caller's token if there is one.
fn decide(
    engine: &Engine,
    request: &Request,
    phase: Phase,
    args: &Args,
    token: Option<&VerifiedToken>,
) -> Result<(Decision, Option<Value>), Failure> {
    match phase {
        Phase::Before => {
            // Ask the decision points of the pdp rules that apply, as a server would.
            let snapshot = engine.snapshot();
            let verdicts = crate::pdp::consult_blocking(&snapshot, request, token);
            if verdicts.is_empty() {
                return Ok((engine.before_with(request, token), None));
            }
            let mut asked = request.clone();
            asked.pdp = verdicts;
            Ok((engine.before_with(&asked, token), None))
        }
        Phase::After => {
            let text = args
                .result
                .as_ref()
                .ok_or("--phase after needs --result with the tool's result JSON")?;
            let value: Value = serde_json::from_str(text)
                .map_err(|e| format!("--result is not valid JSON: {e}"))?;
            let (mcp, result) = match ToolResult::from_mcp_json(&value) {
                Some(r) => (true, r),
                None => (false, ToolResult::from_json_value(value)),
            };
            let (decision, redacted) = engine.after_with(request, result, token);
            let shown = if mcp {
                redacted.to_mcp_json()
            } else {
                redacted.structured.unwrap_or(Value::Null)
            };
            Ok((decision, Some(shown)))
        }
    }
}

fn print_decision(args: &Args, d: &Decision, result: Option<&Value>, token: Option<&str>) {
    if args.json {
        let mut out = json!({ "tool": args.tool, "decision": d });
        if let Some(r) = result {
            out["result"] = r.clone();
        }
        if let Some(t) = token {
            out["token"] = Value::String(t.to_string());
        }
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return;
    }
    println!("effect:  {}", d.effect);
    println!("phase:   {}", d.phase);
    println!("reason:  {}", d.reason);
    if d.matched.is_empty() {
        println!(
            "rules:   (none applied{})",
            if d.by_default {
                "; default_effect decided"
            } else {
                ""
            }
        );
    } else {
        println!("rules:");
        for m in &d.matched {
            println!(
                "  {:<7} {}  [{}, {}, priority {}]",
                m.effect.as_str(),
                m.id,
                m.policy,
                m.origin.as_str(),
                m.priority
            );
        }
    }
    for r in &d.redactions {
        let how = if r.effect == Effect::Elicit {
            "pending approval"
        } else {
            "redacted"
        };
        println!("field:   {} {how} (rule {})", r.path, r.rule);
    }
    for n in &d.notes {
        println!("note:    {n}");
    }
    println!("elapsed: {:.1} µs", d.elapsed.as_secs_f64() * 1e6);
    if let Some(t) = token {
        println!("token:   {t}");
    }
    if let Some(r) = result {
        println!("result:");
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
    }
}
