//! Asking external policy decision points (`pdp` rules) about a call, before the engine
//! evaluates it.
//!
//! The engine is synchronous and never touches the network; this module is the async step in
//! front of it. [`consult`] finds the `pdp` rules that apply to a request (the engine's own
//! matching: tool, subject, expiry, conditions), asks their decision points concurrently,
//! each within its `timeout_ms`, and returns their answers for [`Request::pdp`]. Whatever goes
//! wrong (no connection, a timeout, a non-2xx status, a body that is not the expected JSON, a
//! body over 64 KiB) becomes a [`PdpOutcome::Failed`] the engine denies with: fail closed.
//!
//! Redirects are not followed (a decision point that moved is a configuration error, not
//! something to chase), and answers are remembered only when the rule sets `cache_ttl_ms`.
//!
//! The MCP layer consults before every policed call; `portcullis eval` does too. An embedder
//! calling [`Engine::before`] directly must call [`consult`] (or [`with_answers`]) first, or
//! its `pdp` rules deny every call ("not consulted").

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::engine::{Engine, Snapshot};
use crate::request::Request;
use crate::rules::pdp::{MAX_ANSWER_BYTES, PdpOutcome, PdpSpec, PdpVerdict};
use crate::token::VerifiedToken;

/// Target of the per-query log events, next to the audit trail's decision events.
pub const TARGET: &str = "portcullis::pdp";

/// One HTTP client for every decision point: a pool of connections, rustls with the system's
/// roots, no redirects.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Asks every decision point whose rule applies to `req` (under `snapshot`, with the caller's
/// `token`) and returns their answers. Empty, without any work, when the policy has no `pdp`
/// rule.
pub async fn consult(
    snapshot: &Snapshot,
    req: &Request,
    token: Option<&VerifiedToken>,
) -> Vec<PdpVerdict> {
    if !snapshot.has_pdp() {
        return Vec::new();
    }
    let rules = snapshot.pdp_rules(req, token);
    match rules.len() {
        0 => Vec::new(),
        1 => {
            let (rule, spec) = rules.into_iter().next().expect("one rule");
            let body = spec.body(req, &rule);
            vec![ask(rule, spec, body).await]
        }
        _ => {
            let mut set = tokio::task::JoinSet::new();
            for (rule, spec) in rules {
                let body = spec.body(req, &rule);
                set.spawn(ask(rule, spec, body));
            }
            let mut verdicts = Vec::with_capacity(set.len());
            while let Some(done) = set.join_next().await {
                // A panicked query is simply missing: its rule denies as "not consulted".
                if let Ok(v) = done {
                    verdicts.push(v);
                }
            }
            verdicts
        }
    }
}

/// `req` with the answers of the decision points that apply to it, or `None` when there is
/// nothing to ask (the request can be evaluated as it is, with no copy).
pub async fn with_answers(
    engine: &Engine,
    req: &Request,
    token: Option<&VerifiedToken>,
) -> Option<Request> {
    if !engine.has_pdp() {
        return None;
    }
    let snapshot = engine.snapshot();
    let verdicts = consult(&snapshot, req, token).await;
    if verdicts.is_empty() {
        return None;
    }
    let mut asked = req.clone();
    asked.pdp = verdicts;
    Some(asked)
}

/// [`consult`] for synchronous callers (the CLI): runs the queries on a small runtime of its
/// own. Must not be called from inside a tokio runtime.
pub fn consult_blocking(
    snapshot: &Snapshot,
    req: &Request,
    token: Option<&VerifiedToken>,
) -> Vec<PdpVerdict> {
    if !snapshot.has_pdp() {
        return Vec::new();
    }
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(consult(snapshot, req, token)),
        // No answers: every pdp rule denies ("not consulted").
        Err(e) => {
            tracing::warn!(target: TARGET, "cannot start a runtime to ask decision points: {e}");
            Vec::new()
        }
    }
}

/// Asks one decision point (or its cache) about one request document.
async fn ask(rule: Arc<str>, spec: Arc<PdpSpec>, body: String) -> PdpVerdict {
    let start = Instant::now();
    let outcome = match spec.cached(&body, start) {
        Some(true) => PdpOutcome::Permit { cached: true },
        Some(false) => PdpOutcome::Refuse { cached: true },
        None => match exchange(&spec, body.clone()).await {
            Ok(answer) => {
                spec.remember(&body, answer, Instant::now());
                if answer {
                    PdpOutcome::Permit { cached: false }
                } else {
                    PdpOutcome::Refuse { cached: false }
                }
            }
            Err(why) => PdpOutcome::Failed(why),
        },
    };
    let elapsed = start.elapsed();
    let ms = elapsed.as_secs_f64() * 1e3;
    match &outcome {
        PdpOutcome::Failed(why) => tracing::warn!(
            target: TARGET, rule = %rule, url = %spec.url, elapsed_ms = ms,
            "decision point failed: {why}; its rule denies (fail closed)"
        ),
        PdpOutcome::Permit { cached } | PdpOutcome::Refuse { cached } => tracing::info!(
            target: TARGET, rule = %rule, url = %spec.url, elapsed_ms = ms, cached,
            permit = matches!(outcome, PdpOutcome::Permit { .. }),
            "decision point answered"
        ),
    }
    PdpVerdict {
        rule,
        spec,
        outcome,
        elapsed,
    }
}

/// POSTs the document and reads the answer, all within the rule's timeout.
async fn exchange(spec: &PdpSpec, body: String) -> Result<bool, String> {
    let client = client().map_err(|e| format!("could not be asked (HTTP client: {e})"))?;
    let mut request = client
        .post(&*spec.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json");
    if let Some(name) = &spec.token_env {
        match std::env::var(&**name) {
            Ok(token) if !token.is_empty() => request = request.bearer_auth(token),
            _ => {
                return Err(format!(
                    "could not be asked: the environment variable {name} (its bearer token) is not set"
                ));
            }
        }
    }
    let round_trip = async {
        let mut response = request
            .body(body)
            .send()
            .await
            .map_err(|e| format!("could not be reached ({})", describe(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("answered HTTP {status}"));
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("answer could not be read ({})", describe(e)))?
        {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!(
                    "answered with more than {} KiB",
                    MAX_ANSWER_BYTES / 1024
                ));
            }
            answer.extend_from_slice(&chunk);
        }
        spec.interpret(&answer)
    };
    match tokio::time::timeout(spec.timeout, round_trip).await {
        Ok(result) => result,
        Err(_) => Err(format!("did not answer within {}", millis(spec.timeout))),
    }
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// A reqwest error and its causes on one line, without the URL (the reason names it already).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
