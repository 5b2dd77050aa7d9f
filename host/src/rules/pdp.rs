//! `pdp`: an external policy decision point decides the call.
//!
//! The only built-in that talks to the network, so it lives in the host and never in a WASM
//! enforcer. The engine's evaluation stays synchronous and offline: the async layer in front
//! of it (the MCP layer, `portcullis eval`) asks the PDPs whose rules apply to a call, with
//! [`crate::pdp::consult`], and hands their answers to the engine on the request
//! ([`crate::request::Request::pdp`]). A rule with no answer is denied ("not consulted").
//!
//! Semantics: the PDP's answer decides. A permit allows the call (it grants, like a
//! `tool_access` allow; a deny from another rule still wins); a refusal has the rule's action,
//! `deny` or `elicit` (ask the user, who may approve what the PDP refused). An error, a
//! timeout, a non-2xx status or an answer that is not the expected JSON always denies: the
//! rule fails closed.
//!
//! Parameters (`KEY=VALUE`, in either rule form):
//! - `url`: the endpoint (http or https). AuthZEN: the evaluation endpoint, e.g.
//!   `https://pdp.internal/access/v1/evaluation`. OPA: the server's base URL with `path`, or
//!   the full `.../v1/data/...` URL.
//! - `mode`: `authzen` (default; OpenID AuthZEN Authorization API 1.0, `{"decision": bool}`)
//!   or `opa` (OPA's data API: `{"input": ...}` in, `result` (a bool) or `result.allow` out).
//! - `path`: OPA only, the decision's path under `/v1/data/`, e.g. `mcp/authz/allow`.
//! - `timeout_ms`: per-call budget for the whole exchange, 1 to 60000 (default 200).
//! - `cache_ttl_ms`: how long an answer is reused for the identical request document, 0 to
//!   3600000 (default 0: every call asks). Errors are never cached.
//! - `token_env`: an environment variable holding a bearer token the PDP requires (as
//!   Permit.io's PDP requires its API key), sent as `Authorization: Bearer ...`. Never in the
//!   policy file: a credential there leaks with the file. Unset or empty when asked: denied.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lru::LruCache;
use serde_json::{Map, Value, json};

use crate::request::Request;

/// Parameter names a `pdp` rule accepts.
pub const PARAMS: &[&str] = &[
    "url",
    "mode",
    "path",
    "timeout_ms",
    "cache_ttl_ms",
    "token_env",
];
/// Default per-call budget.
pub const DEFAULT_TIMEOUT_MS: u64 = 200;
/// Largest `timeout_ms`.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Largest `cache_ttl_ms` (one hour).
pub const MAX_CACHE_TTL_MS: u64 = 3_600_000;
/// Answers one rule remembers at most (least recently used go first).
pub const CACHE_CAPACITY: usize = 1024;
/// Largest PDP answer read; a decision is a few bytes, anything bigger is refused.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Which API the PDP speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdpMode {
    /// OpenID AuthZEN Authorization API: POST the evaluation request, read `decision`.
    AuthZen,
    /// OPA data API: POST `{"input": ...}` to `/v1/data/<path>`, read `result`.
    Opa,
}

impl PdpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PdpMode::AuthZen => "authzen",
            PdpMode::Opa => "opa",
        }
    }
}

/// A checked `pdp` rule: where to ask, how, and its answer cache.
pub struct PdpSpec {
    /// The URL every query is POSTed to (for OPA, `path` already joined).
    pub url: Arc<str>,
    pub mode: PdpMode,
    pub timeout: Duration,
    /// Zero: no caching.
    pub cache_ttl: Duration,
    /// Environment variable whose value is sent as the bearer token, read at each query so a
    /// rotated token takes effect without a reload.
    pub token_env: Option<Arc<str>>,
    cache: Mutex<LruCache<Box<str>, (bool, Instant)>>,
}

impl fmt::Debug for PdpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PdpSpec")
            .field("url", &self.url)
            .field("mode", &self.mode)
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("token_env", &self.token_env)
            .finish_non_exhaustive()
    }
}

/// Two specs are the same rule when they ask the same PDP the same way (the cache aside).
impl PartialEq for PdpSpec {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
            && self.mode == other.mode
            && self.timeout == other.timeout
            && self.cache_ttl == other.cache_ttl
            && self.token_env == other.token_env
    }
}

impl PdpSpec {
    /// Parses and checks a rule's parameters. In the compact form a URL is split at its
    /// colons (`url=https`, `//host`, `8181/v1/...`): a part that does not start with
    /// `NAME=` continues the `url` before it, so compact rules can carry URLs as written.
    pub fn parse(params: &[String]) -> Result<PdpSpec, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in params {
            match param_name(part) {
                Some(name) => {
                    if !PARAMS.contains(&name) {
                        let hint = crate::policy::did_you_mean(name, PARAMS.iter().copied())
                            .map(|s| format!(" (did you mean {s:?}?)"))
                            .unwrap_or_default();
                        return Err(format!(
                            "pdp: unknown parameter {name:?}{hint}: expected {}",
                            PARAMS.join(", ")
                        ));
                    }
                    if pairs.iter().any(|(n, _)| n == name) {
                        return Err(format!("pdp: parameter {name:?} is given twice"));
                    }
                    pairs.push((name.to_string(), part[name.len() + 1..].to_string()));
                }
                None => match pairs.last_mut() {
                    Some((name, value)) if name == "url" => {
                        value.push(':');
                        value.push_str(part);
                    }
                    _ => {
                        return Err(format!(
                            "pdp: parameter {part:?} is not NAME=VALUE: expected url=..., mode=authzen|opa, path=..., timeout_ms=N, cache_ttl_ms=N, token_env=VAR"
                        ));
                    }
                },
            }
        }
        let get = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let mode = match get("mode") {
            None | Some("authzen") => PdpMode::AuthZen,
            Some("opa") => PdpMode::Opa,
            Some(other) => {
                return Err(format!(
                    "pdp: unknown mode {other:?}: expected authzen (OpenID AuthZEN) or opa (OPA data API)"
                ));
            }
        };
        let Some(url) = get("url") else {
            return Err(
                "pdp needs a url parameter, e.g. url=https://pdp.internal/access/v1/evaluation"
                    .into(),
            );
        };
        let mut url = check_url(url)?;
        match (mode, get("path")) {
            (PdpMode::AuthZen, Some(_)) => {
                return Err(
                    "pdp: path is for mode=opa; in authzen mode the url is the evaluation endpoint"
                        .into(),
                );
            }
            (PdpMode::Opa, Some(path)) => {
                let path = path.trim_matches('/');
                let ok = !path.is_empty()
                    && path.split(['/', '.']).all(|seg| {
                        !seg.is_empty()
                            && seg
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                    });
                if !ok {
                    return Err(format!(
                        "pdp: bad path {path:?}: expected the decision's path under /v1/data/, e.g. mcp/authz/allow"
                    ));
                }
                if url.path().contains("/v1/data") {
                    return Err(
                        "pdp: give either path=... or a url ending in /v1/data/..., not both"
                            .into(),
                    );
                }
                let base = url.path().trim_end_matches('/').to_string();
                url.set_path(&format!("{base}/v1/data/{}", path.replace('.', "/")));
            }
            (PdpMode::Opa, None) if !url.path().contains("/v1/data/") => {
                return Err(format!(
                    "pdp: mode=opa needs path=... (e.g. path=mcp/authz/allow) or a url with /v1/data/..., found {:?}",
                    url.as_str()
                ));
            }
            _ => {}
        }
        let number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
            let Some(text) = get(name) else {
                return Ok(default);
            };
            match text.parse::<u64>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(format!(
                    "pdp: {name} {text:?} is out of range: expected a whole number of milliseconds from {} to {}",
                    range.start(),
                    range.end()
                )),
            }
        };
        let timeout = number("timeout_ms", DEFAULT_TIMEOUT_MS, 1..=MAX_TIMEOUT_MS)?;
        let ttl = number("cache_ttl_ms", 0, 0..=MAX_CACHE_TTL_MS)?;
        let token_env = match get("token_env") {
            None => None,
            Some(name)
                if !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Some(Arc::from(name))
            }
            Some(other) => {
                return Err(format!(
                    "pdp: token_env {other:?} is not an environment variable name: expected letters, digits and _ (e.g. token_env=PERMIT_API_KEY); the token itself never goes in the policy"
                ));
            }
        };
        Ok(PdpSpec {
            url: Arc::from(url.as_str()),
            mode,
            timeout: Duration::from_millis(timeout),
            cache_ttl: Duration::from_millis(ttl),
            token_env,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHE_CAPACITY).expect("nonzero"),
            )),
        })
    }

    /// The JSON body POSTed for `req`; also the cache key.
    pub fn body(&self, req: &Request, rule_id: &str) -> String {
        let doc = authzen_request(req, rule_id);
        match self.mode {
            PdpMode::AuthZen => doc.to_string(),
            PdpMode::Opa => json!({ "input": doc }).to_string(),
        }
    }

    /// A remembered answer for this body, if one is still fresh.
    pub fn cached(&self, body: &str, now: Instant) -> Option<bool> {
        if self.cache_ttl.is_zero() {
            return None;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match cache.get(body) {
            Some(&(answer, expires)) if now < expires => Some(answer),
            Some(_) => {
                cache.pop(body);
                None
            }
            None => None,
        }
    }

    /// Remembers a definite answer (errors are never remembered).
    pub fn remember(&self, body: &str, answer: bool, now: Instant) {
        if self.cache_ttl.is_zero() {
            return;
        }
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(Box::from(body), (answer, now + self.cache_ttl));
    }

    /// Reads the PDP's answer from a 2xx response body: `Ok(permit)` or why it is unusable.
    pub fn interpret(&self, body: &[u8]) -> Result<bool, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            format!(
                "answered with malformed JSON ({e}); expected {}",
                self.expected()
            )
        })?;
        let answer = match self.mode {
            PdpMode::AuthZen => value.get("decision").and_then(Value::as_bool),
            PdpMode::Opa => match value.get("result") {
                Some(Value::Bool(b)) => Some(*b),
                Some(Value::Object(r)) => r.get("allow").and_then(Value::as_bool),
                // An undefined decision: OPA answers `{}`.
                None if value.is_object() => {
                    return Err("answered with no result (the decision is undefined)".into());
                }
                _ => None,
            },
        };
        answer.ok_or_else(|| format!("answered without a decision; expected {}", self.expected()))
    }

    fn expected(&self) -> &'static str {
        match self.mode {
            PdpMode::AuthZen => "{\"decision\": true|false}",
            PdpMode::Opa => "{\"result\": true|false} or {\"result\": {\"allow\": true|false}}",
        }
    }
}

/// `NAME` when `part` reads `NAME=...` with a lowercase word for a name.
fn param_name(part: &str) -> Option<&str> {
    let (name, _) = part.split_once('=')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(name)
}

fn check_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text)
        .map_err(|e| format!("pdp: url {text:?} is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "pdp: url {text:?} must be http:// or https://, found scheme {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("pdp: url {text:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "pdp: url {text:?} carries credentials: they would show in denials and logs; the PDP must be reachable without them"
        ));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "pdp: url {text:?} has a #fragment, which HTTP never sends"
        ));
    }
    Ok(url)
}

/// The OpenID AuthZEN evaluation request for a call: subject (user id, roles, agent and
/// attributes), action (the MCP method), resource (the tool, resource or prompt, with each
/// argument as an `arg_<name>` property, as permit-fastmcp sends them) and context (the
/// rule asking). No clock or session goes in, so identical calls make identical documents.
pub fn authzen_request(req: &Request, rule_id: &str) -> Value {
    // The MCP layer's names for resources and prompts (`mcp::visibility`'s prefixes).
    let (kind, id, method) = if let Some(uri) = req.tool.strip_prefix("resource:") {
        ("resource", uri, "resources/read")
    } else if let Some(name) = req.tool.strip_prefix("prompt:") {
        ("prompt", name, "prompts/get")
    } else {
        ("tool", req.tool.as_str(), "tools/call")
    };
    let mut subject = Map::new();
    subject.insert("roles".into(), json!(req.subject.roles));
    if let Some(agent) = &req.subject.agent {
        subject.insert("agent".into(), json!(agent));
    }
    if !req.subject.attributes.is_empty() {
        subject.insert("attributes".into(), json!(req.subject.attributes));
    }
    let mut args = Map::new();
    if let Value::Object(a) = &req.arguments {
        for (k, v) in a {
            args.insert(format!("arg_{k}"), v.clone());
        }
    }
    json!({
        "subject": { "type": "user", "id": req.subject.user, "properties": subject },
        "action": { "name": method },
        "resource": { "type": kind, "id": id, "properties": args },
        "context": { "policy_rule": rule_id },
    })
}

/// What one PDP said about one call, as handed to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdpOutcome {
    /// The PDP permits; `cached` when the answer was remembered.
    Permit { cached: bool },
    /// The PDP refuses.
    Refuse { cached: bool },
    /// No usable answer; the text says why (the rule denies: fail closed).
    Failed(String),
}

/// A PDP's answer for one rule of one call.
#[derive(Debug, Clone)]
pub struct PdpVerdict {
    /// The rule's id.
    pub rule: Arc<str>,
    /// The spec that was asked; the engine uses the answer only for a rule with an equal spec
    /// (a reload between asking and deciding leaves a changed rule unanswered: denied).
    pub spec: Arc<PdpSpec>,
    pub outcome: PdpOutcome,
    /// How long asking took (zero for a cached answer).
    pub elapsed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Subject;

    fn p(list: &[&str]) -> Result<PdpSpec, String> {
        PdpSpec::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn compact_urls_are_rejoined_at_their_colons() {
        let s = p(&["url=https", "//pdp.internal/access/v1/evaluation"]).unwrap();
        assert_eq!(&*s.url, "https://pdp.internal/access/v1/evaluation");
        assert_eq!(s.mode, PdpMode::AuthZen);
        assert_eq!(s.timeout, Duration::from_millis(200));
        assert!(s.cache_ttl.is_zero());
        let s = p(&[
            "url=http",
            "//127.0.0.1",
            "8181",
            "mode=opa",
            "path=mcp.authz/allow",
            "timeout_ms=50",
            "cache_ttl_ms=1000",
        ])
        .unwrap();
        assert_eq!(&*s.url, "http://127.0.0.1:8181/v1/data/mcp/authz/allow");
        assert_eq!(s.mode, PdpMode::Opa);
        assert_eq!(s.timeout, Duration::from_millis(50));
        assert_eq!(s.cache_ttl, Duration::from_millis(1000));
        let s = p(&["mode=opa", "url=http://opa:8181/v1/data/x/allow"]).unwrap();
        assert_eq!(&*s.url, "http://opa:8181/v1/data/x/allow");
    }

    #[test]
    fn bad_params_say_what_was_expected() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "needs a url parameter"),
            (&["url=ftp://x/y"], "must be http:// or https://"),
            (&["url=not a url"], "is not a valid URL"),
            (&["url=https://u:pw@pdp/x"], "carries credentials"),
            (
                &["url=https://pdp/x", "mode=xacml"],
                "unknown mode \"xacml\"",
            ),
            (
                &["url=https://pdp/x", "timeout_ms=0"],
                "timeout_ms \"0\" is out of range",
            ),
            (&["url=https://pdp/x", "timeout_ms=soon"], "out of range"),
            (
                &["url=https://pdp/x", "cache_ttl_ms=99999999"],
                "out of range",
            ),
            (
                &["url=https://pdp/x", "timout_ms=5"],
                "did you mean \"timeout_ms\"",
            ),
            (&["url=https://pdp/x", "url=https://b/x"], "given twice"),
            (&["8181"], "is not NAME=VALUE"),
            (&["url=https://pdp/x", "path=a/b"], "path is for mode=opa"),
            (&["url=http://opa:8181", "mode=opa"], "mode=opa needs path"),
            (
                &["url=http://opa:8181", "mode=opa", "path=a//b"],
                "bad path",
            ),
        ];
        for (params, want) in cases {
            let err = p(params).unwrap_err();
            assert!(err.contains(want), "{params:?}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn the_request_document_is_authzen_with_arguments_as_properties() {
        let mut subject = Subject::user("ann").with_role("analyst");
        subject.agent = Some("claude".into());
        let req = Request::new(subject, "run_query", json!({"sql": "select 1", "limit": 5}));
        let doc = authzen_request(&req, "r1");
        assert_eq!(
            doc,
            json!({
                "subject": {"type": "user", "id": "ann", "properties": {"roles": ["analyst"], "agent": "claude"}},
                "action": {"name": "tools/call"},
                "resource": {"type": "tool", "id": "run_query", "properties": {"arg_sql": "select 1", "arg_limit": 5}},
                "context": {"policy_rule": "r1"},
            })
        );
        let read = Request::new(
            Subject::user("ann"),
            "resource:file:///a",
            json!({"uri": "file:///a"}),
        );
        let doc = authzen_request(&read, "r1");
        assert_eq!(doc["action"]["name"], "resources/read");
        assert_eq!(doc["resource"]["type"], "resource");
        assert_eq!(doc["resource"]["id"], "file:///a");
    }

    #[test]
    fn answers_are_read_strictly() {
        let authzen = p(&["url=https://pdp/x"]).unwrap();
        assert_eq!(authzen.interpret(br#"{"decision": true}"#), Ok(true));
        assert_eq!(
            authzen.interpret(br#"{"decision": false, "context": {}}"#),
            Ok(false)
        );
        assert!(authzen.interpret(br#"{"decision": "yes"}"#).is_err());
        assert!(
            authzen
                .interpret(b"<html>")
                .unwrap_err()
                .contains("malformed JSON")
        );
        let opa = p(&["url=http://opa/v1/data/a", "mode=opa"]).unwrap();
        assert_eq!(opa.interpret(br#"{"result": true}"#), Ok(true));
        assert_eq!(opa.interpret(br#"{"result": {"allow": false}}"#), Ok(false));
        assert!(opa.interpret(b"{}").unwrap_err().contains("undefined"));
        assert!(opa.interpret(br#"{"result": {"deny": true}}"#).is_err());
    }

    #[test]
    fn the_cache_forgets_after_its_ttl_and_never_without_one() {
        let s = p(&["url=https://pdp/x", "cache_ttl_ms=1000"]).unwrap();
        let t0 = Instant::now();
        assert_eq!(s.cached("b", t0), None);
        s.remember("b", true, t0);
        assert_eq!(s.cached("b", t0 + Duration::from_millis(999)), Some(true));
        assert_eq!(s.cached("b", t0 + Duration::from_millis(1000)), None);
        let off = p(&["url=https://pdp/x"]).unwrap();
        off.remember("b", true, t0);
        assert_eq!(off.cached("b", t0), None);
    }
}
