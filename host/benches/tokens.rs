//! Cost of a call that carries a token: verify (decode, key lookup, the whole HMAC chain,
//! every caveat) plus evaluate, as p50 / p99. Two paths: a token the engine's snapshot has
//! already verified (a cache hit: expiry and user re-checked, no HMAC), and a first
//! verification (`token::verify`, the whole chain; caveat compilation is still cached).
//! Run: `cargo bench -p portcullis --bench tokens`

use std::hint::black_box;
use std::time::Duration;

use hmac::{Hmac, Mac};
use portcullis::token::{self, Keyring, MintSpec, RootKey, VerifyOptions};
use portcullis::{Effect, Engine};
use serde_json::json;

mod harness;
use harness::measure;

const POLICY: &str = r#"
config:
  default_effect: deny
policies:
  - "bf:read_*:tool_access:allow"
  - "bf:send_email:tool_access:elicit"
  - "bf:admin_tool:tool_access:deny"
  - "af:read_emails:field_access:elicit:attachments"
"#;

/// 2027-01-15T08:00:00Z.
const NOW: u64 = 1_800_000_000_000;

fn main() {
    let keys = Keyring::new(
        RootKey::from_secret("k1", b"benchmark-root-key-0123456789abcdef0123").unwrap(),
        vec![],
    )
    .unwrap();
    let engine = Engine::from_str(POLICY, "bench.yaml").unwrap();
    let opts = VerifyOptions {
        now_unix_ms: NOW,
        user: None,
    };

    // 10 caveats: user, role, expires, tool, five policy caveats, and one sealed grant.
    let spec = MintSpec {
        user: "ann".into(),
        roles: vec!["analyst".into()],
        ttl: Some(Duration::from_secs(3600)),
        caveats: [
            "tool = {read,send}_*",
            "bf:read_secrets:tool_access:deny",
            "bf:read_drafts:tool_access:elicit",
            "bf:send_*:tool_access:deny:time<20270101T000000Z",
            "af:read_emails:field_access:deny:body",
            "af:read_*:field_access:deny:user.ssn",
        ]
        .map(String::from)
        .to_vec(),
    };
    let m = token::mint(&keys, &spec, NOW, &token::UncheckedEnforcers).unwrap();
    let base = token::encode(&m, false).unwrap();
    let verified = engine.verify_token(&keys, &base, &[], &opts).unwrap();
    let send = verified.request("send_email", json!({})).at(NOW);
    let decision = engine.before_with(&send, Some(&verified));
    assert_eq!(decision.effect, Effect::Elicit);
    let ten = engine
        .grant(&keys, &verified, &send, &decision, true)
        .unwrap();
    let v = engine.verify_token(&keys, &ten, &[], &opts).unwrap();
    assert_eq!(v.macaroon().caveats().len(), 10);
    let read = v.request("read_emails", json!({"folder": "inbox"})).at(NOW);
    assert_eq!(engine.before_with(&read, Some(&v)).effect, Effect::Allow);
    let approved = v.request("send_email", json!({})).at(NOW);
    assert_eq!(
        engine.before_with(&approved, Some(&v)).effect,
        Effect::Allow
    );
    println!(
        "10-caveat token: {} bytes serialized (V2, base64url)",
        ten.len()
    );

    // A first verification: what `Engine::verify_token` does on a cache miss.
    let snapshot = engine.snapshot();
    let caveats = token::CaveatCache::default();
    let uncached = |text: &str| {
        token::verify(&keys, text, &[], &opts, &caveats, snapshot.enforcers()).unwrap()
    };

    let n = 20_000;
    measure(
        "verify + evaluate, 10-caveat token, allow (cached)",
        n,
        || {
            let v = engine
                .verify_token(&keys, black_box(&ten), &[], &opts)
                .unwrap();
            black_box(engine.before_with(black_box(&read), Some(&v)));
        },
    );
    measure(
        "verify + evaluate, 10-caveat token, granted (cached)",
        n,
        || {
            let v = engine
                .verify_token(&keys, black_box(&ten), &[], &opts)
                .unwrap();
            black_box(engine.before_with(black_box(&approved), Some(&v)));
        },
    );
    measure(
        "verify + evaluate, 10-caveat token, allow (first/uncached)",
        n,
        || {
            let v = uncached(black_box(&ten));
            black_box(engine.before_with(black_box(&read), Some(&v)));
        },
    );
    measure(
        "verify + evaluate, 10-caveat token, granted (first/uncached)",
        n,
        || {
            let v = uncached(black_box(&ten));
            black_box(engine.before_with(black_box(&approved), Some(&v)));
        },
    );
    measure("  of which: decode (base64 + V2 parse)", n, || {
        black_box(token::decode(black_box(&ten), "token").unwrap());
    });
    measure("  of which: verify, cache hit", n, || {
        black_box(
            engine
                .verify_token(&keys, black_box(&ten), &[], &opts)
                .unwrap(),
        );
    });
    measure(
        "  of which: verify, uncached (decode + chain + caveats)",
        n,
        || {
            black_box(uncached(black_box(&ten)));
        },
    );
    measure("  of which: evaluate with the verified token", n, || {
        black_box(engine.before_with(black_box(&read), Some(&v)));
    });
    let mac_key = [7u8; 32];
    measure(
        "  one HMAC-SHA256 of a 32-byte caveat (x11 per chain)",
        n,
        || {
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(black_box(&mac_key)).unwrap();
            mac.update(black_box(b"bf:read_secrets:tool_access:deny"));
            black_box(mac.finalize().into_bytes());
        },
    );

    // The seed's measured case: a 4-caveat macaroon, before-phase allow.
    let four = token::encode(
        &token::mint(
            &keys,
            &MintSpec {
                user: "ann".into(),
                caveats: [
                    "bf:read_*:tool_access:allow",
                    "bf:admin_tool:tool_access:deny",
                    "af:read_emails:field_access:deny:body",
                ]
                .map(String::from)
                .to_vec(),
                ..MintSpec::default()
            },
            NOW,
            &token::UncheckedEnforcers,
        )
        .unwrap(),
        false,
    )
    .unwrap();
    let v4 = engine.verify_token(&keys, &four, &[], &opts).unwrap();
    assert_eq!(v4.macaroon().caveats().len(), 4);
    let read4 = v4.request("read_emails", json!({})).at(NOW);
    measure(
        "verify + evaluate, 4-caveat token, seed's case (cached)",
        n,
        || {
            let v = engine
                .verify_token(&keys, black_box(&four), &[], &opts)
                .unwrap();
            black_box(engine.before_with(black_box(&read4), Some(&v)));
        },
    );
    measure(
        "verify + evaluate, 4-caveat token, seed's case (uncached)",
        n,
        || {
            let v = uncached(black_box(&four));
            black_box(engine.before_with(black_box(&read4), Some(&v)));
        },
    );
    measure("evaluate without a token (same policy)", n, || {
        black_box(engine.before(black_box(&read4)));
    });
}
