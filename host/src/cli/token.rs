//! `portcullis token`: mint, attenuate, inspect tokens and make discharges.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use chrono::DateTime;
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::policy::{Config, NoEnforcers};
use crate::request::now_unix_ms;
use crate::token::{
    self, Caveat, CaveatCache, Identifier, Keyring, MintSpec, TokenError, VerifyOptions,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Mint a token for a user (needs the root key); prints it as base64url V2.
    Mint(MintArgs),
    /// Restrict a token by appending caveats (needs no key); prints the new token.
    Attenuate(AttenuateArgs),
    /// Show a token's identifier, caveats and expiry; with --verify, whether it verifies.
    Inspect(InspectArgs),
    /// Make a discharge for a third-party caveat, as the approver would; prints it.
    Discharge(DischargeArgs),
}

/// Where the root key comes from: the policy's config (`secret_key_env`, `key_id`,
/// `retired_keys`), or the public development key.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Policy file whose config names the key variables (default: PORTCULLIS_ROOT_KEY, key id k1).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Use the public development key instead of the environment. For demos only: anyone can
    /// mint tokens with it. Logs a warning.
    #[arg(long)]
    pub insecure_dev_key: bool,
}

#[derive(Debug, clap::Args)]
pub struct MintArgs {
    #[command(flatten)]
    keys: KeyArgs,
    /// The user the token speaks for.
    #[arg(long)]
    user: String,
    /// A role of the user (repeatable); roles are fixed at mint time.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// A caveat to add (repeatable): `tool = GLOB`, `expires < RFC3339`, or a policy caveat
    /// such as bf:delete_*:tool_access:deny.
    #[arg(long = "caveat")]
    caveats: Vec<String>,
    /// Print V2JSON instead of base64url V2.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct AttenuateArgs {
    /// The token (`-` reads it from stdin).
    token: String,
    /// A caveat to append (repeatable).
    #[arg(long = "caveat")]
    caveats: Vec<String>,
    /// Also append `expires < now + TTL`.
    #[arg(long)]
    ttl: Option<String>,
    /// Add a third-party caveat for the approver at this location.
    #[arg(long, requires_all = ["third_party_id", "third_party_key_env"])]
    third_party: Option<String>,
    /// The third-party caveat's id, which the approver recognises.
    #[arg(long, requires = "third_party")]
    third_party_id: Option<String>,
    /// Environment variable holding the secret shared with the approver.
    #[arg(long, requires = "third_party")]
    third_party_key_env: Option<String>,
    /// Print V2JSON instead of base64url V2.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The token (`-` reads it from stdin).
    token: String,
    /// Also verify it with the root key and say why it fails, if it does.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    keys: KeyArgs,
    /// A discharge for a third-party caveat (repeatable; with --verify).
    #[arg(long = "discharge")]
    discharges: Vec<String>,
    /// Verify as of this RFC 3339 time instead of now.
    #[arg(long)]
    now: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DischargeArgs {
    /// The approver's location, as named in the third-party caveat.
    #[arg(long)]
    location: String,
    /// The third-party caveat's id.
    #[arg(long)]
    id: String,
    /// Environment variable holding the secret shared with the token's issuer.
    #[arg(long)]
    key_env: String,
    /// A caveat on the discharge (repeatable), e.g. `expires < ...` or `user = ann`.
    #[arg(long = "caveat")]
    caveats: Vec<String>,
    /// Lifetime of the discharge, e.g. 5m.
    #[arg(long)]
    ttl: Option<String>,
    /// Bind the discharge to this token (`-` reads it from stdin); without it the discharge
    /// is printed unbound.
    #[arg(long)]
    bind: Option<String>,
}

/// Runs a `token` subcommand; returns the exit code.
pub fn run(cmd: &Command) -> u8 {
    let result = match cmd {
        Command::Mint(a) => mint(a),
        Command::Attenuate(a) => attenuate(a),
        Command::Inspect(a) => inspect(a),
        Command::Discharge(a) => discharge(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            super::report(&e);
            super::EXIT_BAD_INPUT
        }
    }
}

/// The config (from the policy file, if given) and the keyring it describes.
pub fn load_keys(args: &KeyArgs) -> anyhow::Result<(Config, Keyring, Option<Engine>)> {
    let engine = match &args.config {
        Some(path) => Some(
            Engine::from_file(path)
                .map_err(|e| anyhow!("{e}\n{}: the policy was not loaded", path.display()))?,
        ),
        None => None,
    };
    let config = engine
        .as_ref()
        .map(|e| e.snapshot().config().clone())
        .unwrap_or_default();
    let keys = if args.insecure_dev_key {
        Keyring::insecure_dev()
    } else {
        Keyring::from_env(&config)?
    };
    Ok((config, keys, engine))
}

/// The token argument, or stdin for `-`.
pub fn token_arg(text: &str) -> anyhow::Result<String> {
    if text != "-" {
        return Ok(text.trim().to_string());
    }
    let mut s = String::new();
    std::io::stdin()
        .take(token::MAX_TOKEN_BYTES as u64 * 2)
        .read_to_string(&mut s)
        .context("reading the token from stdin")?;
    Ok(s.trim().to_string())
}

fn ttl(text: &str) -> anyhow::Result<std::time::Duration> {
    token::parse_ttl(text).map_err(|e| anyhow!("--ttl: {e}"))
}

fn mint(a: &MintArgs) -> anyhow::Result<u8> {
    let ttl = ttl(&a.ttl)?;
    let (_, keys, engine) = load_keys(&a.keys)?;
    let spec = MintSpec {
        user: a.user.clone(),
        roles: a.roles.clone(),
        ttl: Some(ttl),
        caveats: a.caveats.clone(),
    };
    let m = match &engine {
        Some(e) => token::mint(&keys, &spec, now_unix_ms(), e.snapshot().enforcers())?,
        None => token::mint(&keys, &spec, now_unix_ms(), &token::UncheckedEnforcers)?,
    };
    println!("{}", token::encode(&m, a.json)?);
    Ok(0)
}

fn attenuate(a: &AttenuateArgs) -> anyhow::Result<u8> {
    if a.caveats.is_empty() && a.ttl.is_none() && a.third_party.is_none() {
        bail!("nothing to add: give --caveat, --ttl or --third-party");
    }
    let mut m = token::decode(&token_arg(&a.token)?, "token")?;
    let ttl = a.ttl.as_deref().map(ttl).transpose()?;
    token::attenuate(&mut m, &a.caveats, ttl, now_unix_ms())?;
    if let (Some(location), Some(id), Some(env)) =
        (&a.third_party, &a.third_party_id, &a.third_party_key_env)
    {
        let secret = shared_secret(env)?;
        token::add_third_party(&mut m, location, secret.as_bytes(), id)?;
    }
    println!("{}", token::encode(&m, a.json)?);
    Ok(0)
}

fn discharge(a: &DischargeArgs) -> anyhow::Result<u8> {
    let secret = shared_secret(&a.key_env)?;
    let ttl = a.ttl.as_deref().map(ttl).transpose()?;
    let mut d = token::discharge(
        &a.location,
        secret.as_bytes(),
        &a.id,
        &a.caveats,
        ttl,
        now_unix_ms(),
    )?;
    if let Some(t) = &a.bind {
        let m = token::decode(&token_arg(t)?, "token")?;
        let answers = m
            .third_party_caveats()
            .iter()
            .filter_map(|c| c.as_third_party())
            .any(|tp| tp.id() == a.id.as_bytes());
        if !answers {
            bail!(
                "the token has no third-party caveat with id {:?}: nothing for this discharge to answer",
                a.id
            );
        }
        token::bind(&m, &mut d);
    }
    println!("{}", token::encode(&d, false)?);
    Ok(0)
}

/// The secret shared with a third-party approver: same rules as a root key.
fn shared_secret(env: &str) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let secret = std::env::var(env).map_err(|_| {
        anyhow!("environment variable {env} is not set: it must hold the secret shared with the approver")
    })?;
    token::check_secret(env, &secret)?;
    Ok(zeroize::Zeroizing::new(secret))
}

fn inspect(a: &InspectArgs) -> anyhow::Result<u8> {
    let text = token_arg(&a.token)?;
    let m = token::decode(&text, "token")?;
    let identifier = Identifier::parse(m.identifier());
    let mut caveats = Vec::new();
    let mut expires: Option<u64> = None;
    for c in m.caveats() {
        match c {
            libmacaroon::Caveat::FirstParty(fp) => {
                let text = String::from_utf8_lossy(fp.predicate()).into_owned();
                let parsed = token::caveat::parse(&text, &token::UncheckedEnforcers);
                let kind = match &parsed {
                    Ok(Caveat::User(_)) => "user",
                    Ok(Caveat::Role(_)) => "role",
                    Ok(Caveat::Expires(ms)) => {
                        expires = Some(expires.map_or(*ms, |e| e.min(*ms)));
                        "expires"
                    }
                    Ok(Caveat::Tool(_)) => "tool",
                    Ok(Caveat::Policy(_)) => "policy",
                    Ok(Caveat::Grant(_)) => "grant",
                    Err(_) => "unknown",
                };
                let mut entry = json!({"kind": kind, "text": text});
                if let Ok(Caveat::Grant(g)) = &parsed {
                    entry["grant"] = json!({
                        "answer": if g.accepted { "accept" } else { "decline" },
                        "tool": g.tool, "policy": g.policy, "params": g.params,
                        "expires": rfc3339(g.expires_unix.saturating_mul(1000)),
                        "key_id": g.key_id,
                    });
                }
                if let Err(e) = &parsed {
                    entry["problem"] = Value::String(e.to_string());
                }
                caveats.push(entry);
            }
            libmacaroon::Caveat::ThirdParty(tp) => caveats.push(json!({
                "kind": "third-party",
                "location": tp.location(),
                "id": String::from_utf8_lossy(tp.id()),
            })),
        }
    }
    let mut out = json!({
        "identifier": String::from_utf8_lossy(m.identifier()),
        "location": m.location(),
        "caveats": caveats,
        "expires": expires.map(rfc3339),
    });
    match &identifier {
        Ok(id) => {
            out["key_id"] = json!(id.key_id);
            out["user"] = json!(id.user);
            out["roles"] = json!(id.roles);
            out["issued"] = json!(rfc3339(id.issued_unix.saturating_mul(1000)));
            out["nonce"] = json!(id.nonce_hex());
        }
        Err(e) => out["identifier_problem"] = json!(e),
    }
    let mut code = 0;
    if a.verify {
        let (_, keys, engine) = load_keys(&a.keys)?;
        let now = match &a.now {
            None => now_unix_ms(),
            Some(t) => DateTime::parse_from_rfc3339(t)
                .ok()
                .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
                .ok_or_else(|| anyhow!("--now {t:?} is not an RFC 3339 time after 1970"))?,
        };
        let opts = VerifyOptions {
            now_unix_ms: now,
            user: None,
        };
        let discharges: Vec<&str> = a.discharges.iter().map(String::as_str).collect();
        let result: Result<_, TokenError> = match &engine {
            Some(e) => e.verify_token(&keys, &text, &discharges, &opts),
            None => token::verify(
                &keys,
                &text,
                &discharges,
                &opts,
                &CaveatCache::default(),
                &NoEnforcers,
            ),
        };
        match result {
            Ok(v) => {
                out["verified"] = json!(true);
                if !v.notes.is_empty() {
                    out["notes"] = json!(v.notes);
                }
            }
            Err(e) => {
                out["verified"] = json!(false);
                out["why"] = json!(e.to_string());
                code = super::EXIT_DENY;
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_inspection(&out);
    }
    Ok(code)
}

fn print_inspection(out: &Value) {
    let s = |k: &str| out[k].as_str().unwrap_or("").to_string();
    println!("identifier: {}", s("identifier"));
    if out.get("identifier_problem").is_some() {
        println!(
            "  (not a Portcullis identifier: {})",
            s("identifier_problem")
        );
    } else {
        println!("  key id:   {}", s("key_id"));
        println!("  user:     {}", s("user"));
        let roles: Vec<&str> = out["roles"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "  roles:    {}",
            if roles.is_empty() {
                "(none)".to_string()
            } else {
                roles.join(", ")
            }
        );
        println!("  issued:   {}", s("issued"));
        println!("  nonce:    {}", s("nonce"));
    }
    println!("location:   {}", s("location"));
    println!("caveats:");
    for (i, c) in out["caveats"].as_array().into_iter().flatten().enumerate() {
        let text = match c["kind"].as_str() {
            Some("third-party") => format!(
                "third-party: discharge needed from {} (id {})",
                c["location"].as_str().unwrap_or(""),
                c["id"].as_str().unwrap_or("")
            ),
            Some("grant") => {
                let g = &c["grant"];
                format!(
                    "grant: {} {} ({}{}) until {}, sealed with key {}",
                    g["answer"].as_str().unwrap_or(""),
                    g["tool"].as_str().unwrap_or(""),
                    g["policy"].as_str().unwrap_or(""),
                    g["params"]
                        .as_array()
                        .filter(|p| !p.is_empty())
                        .map(|p| format!(
                            ": {}",
                            p.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                        .unwrap_or_default(),
                    g["expires"].as_str().unwrap_or(""),
                    g["key_id"].as_str().unwrap_or("")
                )
            }
            _ => c["text"].as_str().unwrap_or("").to_string(),
        };
        println!("  {:>2}. {text}", i + 1);
        if let Some(p) = c["problem"].as_str() {
            println!("      problem: {p}");
        }
    }
    println!(
        "expires:    {}",
        out["expires"]
            .as_str()
            .unwrap_or("never (no expires caveat)")
    );
    match out.get("verified").and_then(Value::as_bool) {
        Some(true) => println!("verified:   yes"),
        Some(false) => println!("verified:   no: {}", s("why")),
        None => {}
    }
    for n in out["notes"].as_array().into_iter().flatten() {
        println!("note:       {}", n.as_str().unwrap_or(""));
    }
}

fn rfc3339(ms: u64) -> String {
    token::rfc3339(ms)
}
