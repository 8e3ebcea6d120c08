#!/usr/bin/env bash
# Installs what a fresh Debian or Ubuntu machine with only the Rust toolchain lacks:
# clang and libclang (RocksDB's build needs them), Node.js and npm with `--contracts` (the
# check that the committed contract bytecode is what the pinned Solidity compiler produces),
# iproute2 with `--contracts` too (the multi-host test's namespaces), and
# rustfmt/clippy when rustup can add them. Safe to run again: it installs nothing that is
# already there.
set -euo pipefail

have_libclang() {
    ldconfig -p 2>/dev/null | grep -q 'libclang' && return 0
    compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null && return 0
    compgen -G '/usr/lib/*/libclang*.so*' >/dev/null
}

# apt_install WHAT-FOR PACKAGE...: installs Debian packages, as root or through sudo.
apt_install() {
    local why="$1"
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ordo: $why needs $*; install them with your package manager" >&2
        exit 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "ordo: $* missing and sudo is not available; as root run: apt-get install -y $*" >&2
            exit 1
        fi
        sudo="sudo"
    fi
    echo "ordo: installing $* ($why)" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! command -v clang >/dev/null 2>&1 || ! have_libclang; then
    apt_install "building RocksDB" clang libclang-dev
fi

# Only the test suite needs them (`--contracts`); running a testnet does not.
if [ "${1:-}" = "--contracts" ] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
    apt_install "checking the contracts' bytecode" nodejs npm
fi

# The multi-host test (testnet/tests/multihost.rs) builds network namespaces with `ip`.
if [ "${1:-}" = "--contracts" ] && ! command -v ip >/dev/null 2>&1; then
    apt_install "the multi-host test's network namespaces" iproute2
fi

if command -v rustup >/dev/null 2>&1; then
    for component in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
            rustup component add "$component"
        fi
    done
fi
