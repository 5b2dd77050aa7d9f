//! Build helper for the guest enforcers, run on the build machine (not in wasm).
//!
//! ```text
//! componentize IN.wasm -o OUT.wasm     core module (with wit-bindgen's component-type
//!                                      section) -> validated component, written atomically
//! componentize --check FILE.wasm       fail unless FILE is a component that imports nothing
//!     [--allow-import NAME]...         but the allowed interfaces (default
//!     [--require-export NAME]...       portcullis:policy/host@0.1.0) and exports the required
//!                                      ones (default portcullis:policy/enforcer@0.1.0)
//! ```
//!
//! The check exists so that CI fails when a guest accidentally pulls in WASI (a dependency
//! reading the clock or the environment): Portcullis links no WASI, so such an enforcer
//! could never be instantiated.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wasmparser::{Encoding, Parser, Payload};

/// The only interface the host offers an enforcer.
const HOST_IMPORT: &str = "portcullis:policy/host@0.1.0";
/// The interface every enforcer must export.
const ENFORCER_EXPORT: &str = "portcullis:policy/enforcer@0.1.0";

const USAGE: &str = "usage: componentize IN.wasm -o OUT.wasm\n       componentize --check FILE.wasm [--allow-import NAME]... [--require-export NAME]...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("componentize: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the command line asked for.
#[derive(Debug, PartialEq)]
enum Command {
    Encode {
        input: PathBuf,
        output: PathBuf,
    },
    Check {
        file: PathBuf,
        allowed_imports: Vec<String>,
        required_exports: Vec<String>,
    },
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut check = false;
    let mut positional = Vec::new();
    let mut output = None;
    let mut allowed = Vec::new();
    let mut required = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--check" => check = true,
            "-o" | "--output" => output = Some(PathBuf::from(value(arg)?)),
            "--allow-import" => allowed.push(value(arg)?),
            "--require-export" => required.push(value(arg)?),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown flag {flag}\n{USAGE}"));
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [file] = <[PathBuf; 1]>::try_from(positional)
        .map_err(|_| format!("expected exactly one input file\n{USAGE}"))?;
    if check {
        if output.is_some() {
            return Err(format!("--check takes no -o\n{USAGE}"));
        }
        if allowed.is_empty() {
            allowed.push(HOST_IMPORT.to_string());
        }
        if required.is_empty() {
            required.push(ENFORCER_EXPORT.to_string());
        }
        return Ok(Command::Check {
            file,
            allowed_imports: allowed,
            required_exports: required,
        });
    }
    if !allowed.is_empty() || !required.is_empty() {
        return Err(format!(
            "--allow-import/--require-export only go with --check\n{USAGE}"
        ));
    }
    let output = output.ok_or_else(|| format!("missing -o OUT.wasm\n{USAGE}"))?;
    Ok(Command::Encode {
        input: file,
        output,
    })
}

fn run(args: &[String]) -> Result<String, String> {
    match parse_args(args)? {
        Command::Encode { input, output } => {
            let bytes = read(&input)?;
            let component =
                componentize(&bytes).map_err(|e| format!("{}: {e}", input.display()))?;
            write_atomically(&output, &component)?;
            Ok(format!(
                "{} -> {} ({} bytes)",
                input.display(),
                output.display(),
                component.len()
            ))
        }
        Command::Check {
            file,
            allowed_imports,
            required_exports,
        } => {
            let bytes = read(&file)?;
            let surface = check(&bytes, &allowed_imports, &required_exports)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            Ok(format!(
                "{}: ok, {} bytes; imports [{}]; exports [{}]",
                file.display(),
                bytes.len(),
                surface.imports.join(", "),
                surface.exports.join(", ")
            ))
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes `OUT.tmp` and renames it, so a watcher never sees a half-written `.wasm`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))
}

/// A core module with an embedded component-type section -> a validated component.
fn componentize(core_module: &[u8]) -> Result<Vec<u8>, String> {
    if !core_module.starts_with(b"\0asm") {
        return Err("not a WebAssembly file".into());
    }
    if matches!(encoding_of(core_module), Some(Encoding::Component)) {
        return Err("already a component (expected the core module cargo built)".into());
    }
    wit_component::ComponentEncoder::default()
        .module(core_module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| format!("cannot make a component: {e:#}"))
}

fn encoding_of(bytes: &[u8]) -> Option<Encoding> {
    match Parser::new(0).parse_all(bytes).next() {
        Some(Ok(Payload::Version { encoding, .. })) => Some(encoding),
        _ => None,
    }
}

/// A component's top-level import and export names.
#[derive(Debug, Default, PartialEq)]
struct Surface {
    imports: Vec<String>,
    exports: Vec<String>,
}

/// Validates the component and lists its top-level imports and exports (nested modules and
/// components have their own, internal ones, which are not the component's interface).
fn surface(bytes: &[u8]) -> Result<Surface, String> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| format!("invalid WebAssembly: {e}"))?;
    let mut surface = Surface::default();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("invalid WebAssembly: {e}"))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(
                        "a core module, not a component: run `componentize IN -o OUT` first".into(),
                    );
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| format!("invalid import section: {e}"))?;
                    surface.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| format!("invalid export section: {e}"))?;
                    surface.exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(surface)
}

/// Fails unless every import is allowed and every required export is present.
fn check(
    bytes: &[u8],
    allowed_imports: &[String],
    required_exports: &[String],
) -> Result<Surface, String> {
    let surface = surface(bytes)?;
    let foreign: Vec<&str> = surface
        .imports
        .iter()
        .filter(|name| !allowed_imports.contains(name))
        .map(String::as_str)
        .collect();
    if !foreign.is_empty() {
        let wasi = if foreign.iter().any(|n| n.starts_with("wasi:")) {
            " (a dependency pulled in WASI, which Portcullis does not provide; look for crates reading the clock, environment or random numbers)"
        } else {
            ""
        };
        return Err(format!(
            "imports {} but only {} may be imported{wasi}",
            foreign.join(", "),
            allowed_imports.join(", ")
        ));
    }
    let missing: Vec<&str> = required_exports
        .iter()
        .filter(|name| !surface.exports.contains(name))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "does not export {} (exports: [{}])",
            missing.join(", "),
            surface.exports.join(", ")
        ));
    }
    Ok(surface)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_component::{StringEncoding, dummy_module, embed_component_metadata};
    use wit_parser::{ManglingAndAbi, Resolve};

    /// A trimmed copy of the policy world, plus worlds that import WASI or export nothing.
    const WIT: &str = r#"
        package portcullis:policy@0.1.0;
        interface enforcer { enforce: func(x: string) -> string; }
        interface host { log: func(message: string); }
        world policy-enforcer { import host; export enforcer; }
        world no-exports { import host; }
        world wants-wasi { import host; import wasi:clocks/wall-clock@0.2.0; export enforcer; }
        package wasi:clocks@0.2.0 { interface wall-clock { now: func() -> u64; } }
    "#;

    /// A core module for `world` with its component-type section, as wit-bindgen makes.
    fn core_module_from(resolve: &Resolve, world: &str) -> Vec<u8> {
        let pkg = resolve
            .packages
            .iter()
            .find(|(_, p)| p.name.name == "policy")
            .map(|(id, _)| id)
            .expect("package");
        let world = resolve.select_world(&[pkg], Some(world)).expect("world");
        let mut module = dummy_module(resolve, world, ManglingAndAbi::Standard32);
        embed_component_metadata(&mut module, resolve, world, StringEncoding::UTF8).expect("embed");
        module
    }

    fn core_module(world: &str) -> Vec<u8> {
        let mut resolve = Resolve::default();
        resolve.push_str("test.wit", WIT).expect("test WIT parses");
        core_module_from(&resolve, world)
    }

    fn defaults() -> (Vec<String>, Vec<String>) {
        (
            vec![HOST_IMPORT.to_string()],
            vec![ENFORCER_EXPORT.to_string()],
        )
    }

    #[test]
    fn a_pure_enforcer_passes_the_check() {
        let component = componentize(&core_module("policy-enforcer")).expect("componentize");
        let (allowed, required) = defaults();
        let surface = check(&component, &allowed, &required).expect("check");
        assert_eq!(surface.imports, [HOST_IMPORT]);
        assert_eq!(surface.exports, [ENFORCER_EXPORT]);
    }

    #[test]
    fn a_wasi_import_fails_the_check() {
        let component = componentize(&core_module("wants-wasi")).expect("componentize");
        let (allowed, required) = defaults();
        let err = check(&component, &allowed, &required).expect_err("must fail");
        assert!(err.contains("wasi:clocks/wall-clock@0.2.0"), "{err}");
        assert!(err.contains("WASI"), "{err}");
    }

    #[test]
    fn a_missing_export_fails_the_check() {
        let component = componentize(&core_module("no-exports")).expect("componentize");
        let (allowed, required) = defaults();
        let err = check(&component, &allowed, &required).expect_err("must fail");
        assert!(
            err.contains("does not export portcullis:policy/enforcer@0.1.0"),
            "{err}"
        );
    }

    #[test]
    fn core_modules_and_garbage_are_refused() {
        let (allowed, required) = defaults();
        let core = core_module("policy-enforcer");
        assert!(
            check(&core, &allowed, &required)
                .expect_err("core")
                .contains("not a component")
        );
        assert!(
            componentize(b"hello")
                .expect_err("garbage")
                .contains("not a WebAssembly")
        );
        let component = componentize(&core).expect("componentize");
        assert!(
            componentize(&component)
                .expect_err("twice")
                .contains("already a component")
        );
        // A core module without wit-bindgen's section becomes an empty component, which
        // the check refuses for exporting nothing.
        let empty = componentize(&wat_module()).expect("empty component");
        assert!(
            check(&empty, &allowed, &required)
                .expect_err("empty")
                .contains("does not export")
        );
    }

    /// `(module)`: the smallest valid core module.
    fn wat_module() -> Vec<u8> {
        vec![0, b'a', b's', b'm', 1, 0, 0, 0]
    }

    /// The repository's contract, wit/policy.wit, must parse and yield a checkable component.
    #[test]
    fn the_repository_wit_makes_a_valid_enforcer() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
        let mut resolve = Resolve::default();
        if let Err(e) = resolve.push_dir(&dir) {
            panic!("wit/ does not parse: {e:#}");
        }
        let component =
            componentize(&core_module_from(&resolve, "policy-enforcer")).expect("componentize");
        let (allowed, required) = defaults();
        let surface = check(&component, &allowed, &required).expect("check");
        assert_eq!(surface.exports, [ENFORCER_EXPORT]);
    }

    #[test]
    fn command_lines() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse_args(&args("in.wasm -o out.wasm")),
            Ok(Command::Encode {
                input: "in.wasm".into(),
                output: "out.wasm".into()
            })
        );
        assert_eq!(
            parse_args(&args("--check x.wasm")),
            Ok(Command::Check {
                file: "x.wasm".into(),
                allowed_imports: vec![HOST_IMPORT.into()],
                required_exports: vec![ENFORCER_EXPORT.into()],
            })
        );
        for bad in [
            "",
            "in.wasm",
            "a b -o c",
            "--check x -o y",
            "x --allow-import",
            "--bogus x -o y",
            "x -o y --allow-import z",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
