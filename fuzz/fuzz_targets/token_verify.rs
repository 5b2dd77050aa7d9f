//! Token decoding and verification: arbitrary token text, and valid tokens with tampered
//! bytes, verified against a fixed keyring.
//!
//! The valid tokens are the interop fixtures of `host/tests/fixtures/tokens` (made by
//! pymacaroons and by Portcullis, with grants, third-party caveats and discharges) and a few
//! minted at start-up. Input: a mode byte; mode 0 takes the rest as text (a token, then
//! discharges, one per line); other modes pick a valid token (and its discharges), encode it
//! (base64url with or without padding, standard base64, or V2JSON), and apply byte edits
//! (flip, insert, delete, truncate, set) to the token or one discharge.
//!
//! Oracles:
//! - decoding and verification never panic, whatever the text;
//! - the engine's cached verification and a fresh one agree, error for error;
//! - nothing verifies unless it is one of the valid tokens: the fuzzer holds no key, so any
//!   token (and discharge) that verifies must have the identifier, caveats and signature of a
//!   known one (the location is a hint no macaroon signs, so it may differ). For an edited
//!   token that means: it verifies only if it still says exactly what the original said;
//! - a valid token verifies with its own bytes unedited.

#![no_main]

use std::num::NonZeroUsize;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use libmacaroon::{Caveat as RawCaveat, Format, Macaroon};
use portcullis::Engine;
use portcullis::policy::NoEnforcers;
use portcullis::token::{
    self, CaveatCache, Keyring, MintSpec, RootKey, UncheckedEnforcers, VerifyOptions,
};
use serde_json::json;

/// The interop fixtures' root secret (`host/tests/token_interop.rs`).
const SECRET: &str = "portcullis-interop-fixture-secret-0123456789";
/// 2027-01-15T08:00:00Z: every fixture is valid then.
const NOW: u64 = 1_800_000_000_000;
const APPROVER_SECRET: &[u8] = b"fuzz-approver-shared-secret-0123456789";

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../host/tests/fixtures/tokens/", $name)).trim()
    };
}

struct Seed {
    token: String,
    discharges: Vec<String>,
}

struct World {
    keys: Keyring,
    engine: Engine,
    cache: CaveatCache,
    seeds: Vec<Seed>,
    /// What every valid token and discharge says.
    known: Vec<Fingerprint>,
}

/// A macaroon's content without its locations, which no signature covers.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    identifier: Vec<u8>,
    caveats: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    signature: Vec<u8>,
}

fn fingerprint(m: &Macaroon) -> Fingerprint {
    Fingerprint {
        identifier: m.identifier().to_vec(),
        caveats: m
            .caveats()
            .iter()
            .map(|c| match c {
                RawCaveat::FirstParty(fp) => (fp.predicate().to_vec(), None),
                RawCaveat::ThirdParty(tp) => (tp.id().to_vec(), Some(tp.verifier_id().to_vec())),
            })
            .collect(),
        signature: AsRef::<[u8]>::as_ref(m.signature()).to_vec(),
    }
}

fn options() -> VerifyOptions<'static> {
    VerifyOptions {
        now_unix_ms: NOW,
        user: None,
    }
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let keys = Keyring::new(
        RootKey::from_secret("k1", SECRET.as_bytes()).unwrap(),
        vec![],
    )
    .unwrap();
    let engine = Engine::from_str(
        "policies:\n  - \"bf:read_*:tool_access:allow\"\n  - \"bf:send_email:tool_access:elicit\"\n  - \"af:read_emails:field_access:elicit:attachments\"\n",
        "fuzz.yaml",
    )
    .unwrap();
    let mut seeds: Vec<Seed> = [
        ("python-v2.txt", fixture!("python-v2.txt"), None),
        ("python-v2.json", fixture!("python-v2.json"), None),
        ("python-grant.txt", fixture!("python-grant.txt"), None),
        (
            "python-3p-token.txt",
            fixture!("python-3p-token.txt"),
            Some(fixture!("python-3p-discharge.txt")),
        ),
        ("rust-v2.txt", fixture!("rust-v2.txt"), None),
        ("rust-v2.json", fixture!("rust-v2.json"), None),
        ("rust-grant.txt", fixture!("rust-grant.txt"), None),
        (
            "rust-3p-token.txt",
            fixture!("rust-3p-token.txt"),
            Some(fixture!("rust-3p-discharge.txt")),
        ),
    ]
    .into_iter()
    .map(|(_, t, d)| Seed {
        token: t.to_string(),
        discharges: d.into_iter().map(str::to_string).collect(),
    })
    .collect();

    // Minted here: every kind of caveat a holder can add, and a bound discharge.
    let spec = MintSpec {
        user: "ann".into(),
        roles: vec!["analyst".into(), "admin".into()],
        ttl: Some(Duration::from_secs(3600)),
        caveats: vec![
            "tool = {read,send}_*".into(),
            "af:read_emails:field_access:deny:body:headers[\"x.api-key\"]".into(),
            "bf:export:allow_attempts:allow:2".into(),
            "bf:read_secrets:tool_access:deny:time<20301231T235959Z".into(),
        ],
    };
    let mut m = token::mint(&keys, &spec, NOW, &UncheckedEnforcers).unwrap();
    seeds.push(Seed {
        token: token::encode(&m, false).unwrap(),
        discharges: vec![],
    });
    token::add_third_party(
        &mut m,
        "https://approver.example",
        APPROVER_SECRET,
        "ticket-fuzz",
    )
    .unwrap();
    let mut d = token::discharge(
        "https://approver.example",
        APPROVER_SECRET,
        "ticket-fuzz",
        &["user = ann".into()],
        Some(Duration::from_secs(600)),
        NOW,
    )
    .unwrap();
    token::bind(&m, &mut d);
    seeds.push(Seed {
        token: token::encode(&m, false).unwrap(),
        discharges: vec![token::encode(&d, false).unwrap()],
    });

    let cache = CaveatCache::new(NonZeroUsize::new(256).unwrap());
    let mut known = Vec::new();
    for s in &seeds {
        let ds: Vec<&str> = s.discharges.iter().map(String::as_str).collect();
        token::verify(&keys, &s.token, &ds, &options(), &cache, &NoEnforcers)
            .unwrap_or_else(|e| panic!("seed {} does not verify: {e}", s.token));
        known.push(fingerprint(&token::decode(&s.token, "t").unwrap()));
        for d in &s.discharges {
            known.push(fingerprint(&token::decode(d, "d").unwrap()));
        }
    }
    World {
        keys,
        engine,
        cache,
        seeds,
        known,
    }
});

fuzz_target!(|data: &[u8]| {
    let w = &*WORLD;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 0 {
        let text = String::from_utf8_lossy(rest);
        let mut lines = text.split('\n');
        let token = lines.next().unwrap_or_default();
        let discharges: Vec<&str> = lines.collect();
        check(w, token, &discharges, None);
        return;
    }

    // A valid token, encoded, then edited.
    let [pick, how, edits @ ..] = rest else {
        return;
    };
    let seed = &w.seeds[usize::from(*pick) % w.seeds.len()];
    let mut parts: Vec<String> = std::iter::once(&seed.token)
        .chain(&seed.discharges)
        .map(|t| reencode(t, how & 3))
        .collect();
    let target = usize::from(how >> 2) % parts.len();
    let original = parts[target].clone();
    let mut bytes = if how & 3 == 3 {
        original.clone().into_bytes()
    } else {
        base64_bytes(&original)
    };
    for op in edits.chunks_exact(4) {
        edit(&mut bytes, op);
    }
    parts[target] = if how & 3 == 3 {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        encode_bytes(&bytes, how & 3)
    };
    let discharges: Vec<&str> = parts[1..].iter().map(String::as_str).collect();
    let unchanged = parts[target] == original;
    let result = check(w, &parts[0], &discharges, Some(target));
    if unchanged {
        assert!(
            result,
            "a valid token, re-encoded but not edited, does not verify"
        );
    }
});

/// Verifies both ways and applies the oracles; returns whether the token verified.
fn check(w: &World, token: &str, discharges: &[&str], edited: Option<usize>) -> bool {
    let fresh = token::verify(
        &w.keys,
        token,
        discharges,
        &options(),
        &w.cache,
        &NoEnforcers,
    );
    let cached = w
        .engine
        .verify_token(&w.keys, token, discharges, &options());
    match (&fresh, &cached) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(
            a.to_string(),
            b.to_string(),
            "cached and fresh errors differ"
        ),
        _ => panic!(
            "cached and fresh verification disagree: {:?} vs {:?}",
            fresh.as_ref().map(|_| ()),
            cached.as_ref().map(|_| ())
        ),
    }
    let Ok(v) = fresh else {
        return false;
    };
    // Only what a valid token says can verify.
    let m = token::decode(token, "token").expect("a verified token decodes");
    let fp = fingerprint(&m);
    assert!(
        w.known.contains(&fp),
        "an unknown token verified (edited part {edited:?}): {fp:?}"
    );
    for d in discharges {
        let fp = fingerprint(&token::decode(d, "discharge").expect("a verified discharge decodes"));
        assert!(
            w.known.contains(&fp),
            "an unknown discharge verified: {fp:?}"
        );
    }
    assert_eq!(v.subject.user, v.identifier.user);
    // And the engine can apply it.
    for tool in ["read_emails", "send_email", "export"] {
        let req = v.request(tool, json!({})).at(NOW);
        let _ = w.engine.before_with(&req, Some(&v));
    }
    true
}

fn reencode(text: &str, how: u8) -> String {
    let m = token::decode(text, "seed").expect("seeds decode");
    if how == 3 {
        return m.serialize(Format::V2JSON).expect("serializes");
    }
    let bytes = base64_bytes(&token::encode(&m, false).expect("encodes"));
    encode_bytes(&bytes, how)
}

fn base64_bytes(text: &str) -> Vec<u8> {
    let unpadded = text.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(unpadded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded))
        .expect("a seed is base64")
}

fn encode_bytes(bytes: &[u8], how: u8) -> String {
    match how {
        0 => URL_SAFE_NO_PAD.encode(bytes),
        1 => URL_SAFE.encode(bytes),
        _ => STANDARD.encode(bytes),
    }
}

fn edit(bytes: &mut Vec<u8>, op: &[u8]) {
    let pos = usize::from(u16::from_be_bytes([op[1], op[2]])) % (bytes.len() + 1);
    let val = op[3];
    match op[0] % 5 {
        0 if pos < bytes.len() => bytes[pos] ^= val.max(1),
        1 => bytes.insert(pos, val),
        2 if pos < bytes.len() => {
            bytes.remove(pos);
        }
        3 => bytes.truncate(pos),
        4 if pos < bytes.len() => bytes[pos] = val,
        _ => {}
    }
}
