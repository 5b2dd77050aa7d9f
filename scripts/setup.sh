# Sourced by the other scripts: checks the toolchains this repository needs. The enforcer
# build scripts install what else they need (Debian's wasm toolchain, npm packages).
if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && source "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust 1.95 with rustup" >&2; exit 1; }
for component in clippy rustfmt; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component" >/dev/null 2>&1 || {
      echo "cargo $component is missing and could not be installed" >&2; exit 1; }
  fi
done
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
  echo "node and npm are needed for the JavaScript enforcer (Node 20)" >&2; exit 1; }
