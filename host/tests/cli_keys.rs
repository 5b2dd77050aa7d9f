//! `portcullis keys generate / public / encrypt`: file modes, refusing to overwrite, and the
//! public JWKS matching what was generated.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn portcullis(args: &[&str], out: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("RUST_LOG")
        .args(["--log", "warn"])
        .args(args);
    if let Some(out) = out {
        cmd.arg(out);
    }
    cmd.output().unwrap()
}

fn generate(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["keys", "generate", "--bits", "2048"];
    args.extend_from_slice(extra);
    args.push("--out");
    portcullis(&args, Some(out))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[cfg(unix)]
#[test]
fn keys_generate_writes_a_0600_private_jwks_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let run = generate(&out, &[]);
    assert!(run.status.success(), "{run:?}");
    let private = out.join("private.jwks.json");
    let public = out.join("public.jwks.json");
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "private key file mode {mode:o}");
    let first = json(&private);
    let key = &first["keys"][0];
    for member in ["n", "e", "d", "p", "q", "dp", "dq", "qi", "kid"] {
        assert!(key.get(member).is_some(), "private JWK lacks {member}");
    }
    assert!(json(&public)["keys"][0].get("d").is_none());
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        2,
        "no temporary files left"
    );

    // A second run without --force fails, naming the file, and leaves the key alone.
    let again = generate(&out, &[]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("private.jwks.json exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(json(&private), first);

    // With --force: a new key, still 0600 even if the old file had been loosened.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let forced = generate(&out, &["--force"]);
    assert!(forced.status.success(), "{forced:?}");
    assert_ne!(json(&private), first);
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn keys_public_prints_the_public_jwks_of_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(generate(dir.path(), &[]).status.success());
    let run = portcullis(
        &["keys", "public", "--key-file"],
        Some(&dir.path().join("private.jwks.json")),
    );
    assert!(run.status.success(), "{run:?}");
    let printed: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(printed, json(&dir.path().join("public.jwks.json")));

    // The public file is not a private key: the error says which member is missing.
    let run = portcullis(
        &["keys", "public", "--key-file"],
        Some(&dir.path().join("public.jwks.json")),
    );
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("public.jwks.json") && stderr.contains("member \"d\" is missing"),
        "{stderr}"
    );
    let run = portcullis(
        &["keys", "public", "--key-file"],
        Some(&dir.path().join("nope")),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("cannot read"));
}

#[test]
fn keys_generate_refuses_weak_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let run = portcullis(
        &["keys", "generate", "--bits", "1024", "--out"],
        Some(dir.path()),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("1024 bits"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
