# Sourced by the other scripts: checks the toolchain this repository needs.
# (Later stages add the wasm guest toolchain and the MCP test clients here.)
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
