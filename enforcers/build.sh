#!/usr/bin/env bash
# Builds every enforcer to a WebAssembly component in enforcers/dist/<name>.wasm: the Rust
# guests here, and the JavaScript guest through pii_guard/build.sh (which has its own
# up-to-date check).
#
# Usage: bash enforcers/build.sh          (from anywhere; unattended, safe to re-run)
#
# 1. Picks a toolchain: the rustup wasm32-unknown-unknown target when installed; otherwise
#    Debian's rustc-web (rustc 1.96 + the std source) and lld-22, building std for wasm with
#    -Zbuild-std (installed with apt-get when missing; see ARCHITECTURE.md).
# 2. cargo builds every guest (a package under enforcers/ with crate-type cdylib) as a core
#    module carrying wit-bindgen's component-type section.
# 3. The `componentize` tool (enforcers/componentize, built for this machine with the normal
#    toolchain) turns each changed module into a component, then checks that it imports
#    nothing but portcullis:policy/host@0.1.0 (no WASI) and exports
#    portcullis:policy/enforcer@0.1.0.
#
# A stamp over the sources, Cargo.lock, wit/ and the toolchain makes an unchanged re-run
# return at once. Guest artifacts go to $CARGO_TARGET_DIR/guests when CARGO_TARGET_DIR is set
# (so CI reuses them), else enforcers/target; never into the host's target directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$here"

target_wasm=wasm32-unknown-unknown
base="${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/guests}"
base="${base:-$here/target}"
dist="$here/dist"
stamp="$dist/.build-stamp"
mkdir -p "$base" "$dist"

# One build at a time per target directory (CI and a developer may share a machine).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$base/.build.lock"
    flock 9
fi

log() { printf '%s\n' "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# JavaScript guests first: they have their own build script and up-to-date check.
for js_build in */build.sh; do
    bash "$js_build" || die "$js_build failed"
done

# Guests: packages with a cdylib library. pii_guard and other non-Rust guests have no Cargo.toml.
guests=()
for manifest in */Cargo.toml; do
    if grep -q 'cdylib' "$manifest"; then
        guests+=("$(dirname "$manifest")")
    fi
done
[ "${#guests[@]}" -gt 0 ] || die "no Rust guests found under $here"

# --- toolchain -------------------------------------------------------------------------------

debian_packages=(rustc-web rust-web-src lld-22)
debian_rustc=/usr/bin/rustc
debian_linker=/usr/bin/wasm-ld-22

have_rustup_target() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx "$target_wasm"
}

missing_debian_packages() {
    local pkg missing=()
    for pkg in "${debian_packages[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$pkg")
        fi
    done
    echo "${missing[*]}"
}

install_debian_packages() {
    local missing sudo=()
    missing="$(missing_debian_packages)"
    [ -n "$missing" ] || return 0
    command -v apt-get >/dev/null 2>&1 ||
        die "no rustup $target_wasm target and no apt-get to install: $missing"
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root to install: $missing"
        sudo=(sudo -n)
    fi
    log "installing Debian packages: $missing"
    # shellcheck disable=SC2086
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        # shellcheck disable=SC2086
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
    missing="$(missing_debian_packages)"
    [ -z "$missing" ] || die "apt-get did not install: $missing"
}

if have_rustup_target; then
    mode=rustup
    guest_rustc="$(rustup which rustc 2>/dev/null || command -v rustc)"
    build_env=()
    build_flags=()
else
    mode=build-std
    install_debian_packages
    [ -x "$debian_rustc" ] || die "$debian_rustc missing (package rustc-web)"
    [ -x "$debian_linker" ] || die "$debian_linker missing (package lld-22)"
    std_src="$("$debian_rustc" --print sysroot)/lib/rustlib/src/rust/library"
    [ -d "$std_src" ] || die "no std source at $std_src (package rust-web-src)"
    guest_rustc="$debian_rustc"
    # RUSTC: Debian's rustc instead of rustup's (whose std has no wasm target).
    # RUSTC_BOOTSTRAP: lets stable cargo/rustc take -Zbuild-std.
    # The wasm target's default linker is rust-lld, which Debian does not ship; LLVM's
    # wasm-ld is the same program under its own name.
    build_env=(RUSTC="$debian_rustc" RUSTC_BOOTSTRAP=1
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$debian_linker")
    build_flags=("-Zbuild-std=std,panic_abort")
fi

# --- up to date? -----------------------------------------------------------------------------

inputs_hash() {
    {
        echo "mode=$mode"
        "$guest_rustc" -vV
        cargo -V
        find Cargo.toml Cargo.lock build.sh componentize "${guests[@]}" "$repo/wit" \
            -type f \( -name '*.rs' -o -name '*.toml' -o -name '*.lock' -o -name '*.wit' -o -name '*.sh' \) \
            -not -path '*/target/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

want="$(inputs_hash)"
all_present=1
for g in "${guests[@]}"; do
    [ -f "$dist/$g.wasm" ] || all_present=0
done
if [ "$all_present" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "up to date: ${guests[*]/%/.wasm} in $dist (nothing to do)"
    exit 0
fi

# --- build -----------------------------------------------------------------------------------

start=$SECONDS
packages=()
for g in "${guests[@]}"; do packages+=(-p "$g"); done

# The componentize tool runs here, so it builds with the normal toolchain for this machine:
# a separate cargo run without --target and without the guest settings above. It builds in
# the background: the guests' LTO and single codegen unit leave a core idle for long stretches.
tool_log="$base/tool-build.log"
log "building the componentize tool in the background (log: $tool_log)"
env -u RUSTC -u RUSTC_BOOTSTRAP -u CARGO_BUILD_TARGET -u RUSTC_WRAPPER CARGO_TARGET_DIR="$base/tool" \
    cargo build --locked --profile tool -p componentize >"$tool_log" 2>&1 &
tool_pid=$!
trap 'kill "$tool_pid" 2>/dev/null || true' EXIT

log "building guests (${guests[*]}) for $target_wasm with $mode ($("$guest_rustc" -V))"
env "${build_env[@]}" CARGO_TARGET_DIR="$base/wasm" \
    cargo build --locked --release --target "$target_wasm" "${build_flags[@]}" "${packages[@]}"

if ! wait "$tool_pid"; then
    cat "$tool_log" >&2
    die "building the componentize tool failed"
fi
trap - EXIT
tool="$base/tool/tool/componentize"
[ -x "$tool" ] || die "componentize tool missing at $tool"

for g in "${guests[@]}"; do
    core="$base/wasm/$target_wasm/release/$g.wasm"
    [ -f "$core" ] || die "cargo produced no $core"
    core_hash="$(sha256sum "$core" | cut -d' ' -f1)"
    core_stamp="$dist/.$g.core-sha256"
    if [ -f "$dist/$g.wasm" ] && [ -f "$core_stamp" ] && [ "$(cat "$core_stamp")" = "$core_hash" ]; then
        log "$g: core module unchanged, keeping dist/$g.wasm"
    else
        "$tool" "$core" -o "$dist/$g.wasm"
        echo "$core_hash" >"$core_stamp"
    fi
    "$tool" --check "$dist/$g.wasm"
done

echo "$want" >"$stamp"
log "done in $((SECONDS - start)) s:"
for g in "${guests[@]}"; do
    log "  dist/$g.wasm $(wc -c <"$dist/$g.wasm") bytes"
done
