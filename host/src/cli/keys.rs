//! `portcullis keys`: RSA key pairs in JWKS form for auth mode `jwe`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::jwe::{self, PrivateKeySet};

/// File `keys generate` writes the private JWKS to (mode 0600): `auth.key_file`.
pub const PRIVATE_FILE: &str = "private.jwks.json";
/// File `keys generate` writes the public JWKS to: what token issuers encrypt with.
pub const PUBLIC_FILE: &str = "public.jwks.json";

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Generate an RSA key pair: DIR/private.jwks.json (0600; auth.key_file) and
    /// DIR/public.jwks.json (for token issuers).
    Generate(GenerateArgs),
    /// Print the public JWKS of a private key file.
    Public(PublicArgs),
    /// Encrypt a claims set as a JWE bearer token for a public JWKS, as a token issuer would.
    Encrypt(EncryptArgs),
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Folder to write the two files to (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Modulus size in bits (2048 to 8192).
    #[arg(long, default_value_t = jwe::DEFAULT_KEY_BITS)]
    bits: usize,
    /// Replace existing key files (tokens encrypted for the old key stop working).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct PublicArgs {
    /// The private JWKS (as written by `keys generate`).
    #[arg(long)]
    key_file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct EncryptArgs {
    /// The public JWKS to encrypt for (a file, as written by `keys generate` or served at
    /// /.well-known/jwks.json).
    #[arg(long)]
    jwks: PathBuf,
    /// The claims, a JSON object (`-` reads it from stdin).
    #[arg(long)]
    claims: String,
    /// Key management algorithm: RSA-OAEP-256 or RSA-OAEP.
    #[arg(long, default_value = jwe::RSA_OAEP_256)]
    alg: String,
}

/// Runs a `keys` subcommand; returns the exit code.
pub fn run(cmd: &Command) -> u8 {
    let result = match cmd {
        Command::Generate(a) => generate(a),
        Command::Public(a) => public(a),
        Command::Encrypt(a) => encrypt(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            super::report(&e);
            super::EXIT_BAD_INPUT
        }
    }
}

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let private = args.out.join(PRIVATE_FILE);
    let public = args.out.join(PUBLIC_FILE);
    if !args.force {
        for path in [&private, &public] {
            if path.exists() {
                bail!(
                    "{} exists; pass --force to replace it (tokens encrypted for the old key will stop working)",
                    path.display()
                );
            }
        }
    }
    let keys = PrivateKeySet::generate(args.bits)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let private_text = pretty(&keys.to_private_jwks());
    write_atomically(&private, private_text.as_bytes(), 0o600)?;
    write_atomically(&public, pretty(&keys.public_jwks()).as_bytes(), 0o644)?;
    println!(
        "wrote {} (private, mode 0600) and {} (public), key id {}",
        private.display(),
        public.display(),
        keys.kids().join(", ")
    );
    println!(
        "policy: config.auth: {{ mode: jwe, key_file: {}, required_claims: [...] }}",
        private.display()
    );
    Ok(())
}

fn public(args: &PublicArgs) -> anyhow::Result<()> {
    let keys = PrivateKeySet::load(&args.key_file)?;
    println!("{}", pretty(&keys.public_jwks()));
    Ok(())
}

fn encrypt(args: &EncryptArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.jwks)
        .with_context(|| format!("cannot read {}", args.jwks.display()))?;
    let jwks: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.jwks.display()))?;
    let claims = if args.claims == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        args.claims.clone()
    };
    let claims: serde_json::Value =
        serde_json::from_str(&claims).context("--claims is not JSON")?;
    if !claims.is_object() {
        bail!("--claims must be a JSON object");
    }
    println!(
        "{}",
        jwe::encrypt(&jwks, &args.alg, claims.to_string().as_bytes())?
    );
    Ok(())
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Writes `bytes` to a new file beside `path` created with `mode`, then renames it over
/// `path`: the key is never readable by others, not even briefly, and a crash leaves either
/// the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        anyhow::Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
