//! `ordo testnet …` and `ordo bench …` live in the `ordo-testnet` binary (the testnet
//! crate), so that a validator never links the orchestration and load tools. `ordo` replaces
//! itself with that binary, next to it on disk, passing the whole command line unchanged.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

/// The commands `ordo-testnet` implements.
const DELEGATED: [&str; 3] = ["testnet", "bench", "faults"];
/// Global flags of `ordo` that take a separate value (`--rpc URL`), skipped when looking for
/// the command.
const VALUE_FLAGS: [&str; 2] = ["--rpc", "--testnet-dir"];

/// The delegated command named by `args` (the whole argv), if any: the first argument that
/// is neither a flag nor a flag's value.
pub fn delegated(args: &[OsString]) -> Option<&'static str> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if arg == "--" {
            return None;
        }
        if VALUE_FLAGS.contains(&arg) {
            rest.next();
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        return DELEGATED.iter().copied().find(|d| *d == arg);
    }
    None
}

/// Where `ordo-testnet` must be: next to this executable.
fn tool_path() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the ordo executable")?;
    Ok(exe.with_file_name("ordo-testnet"))
}

/// Replaces this process with `ordo-testnet` and the same arguments; returns only on failure.
pub fn exec(command: &str, args: &[OsString]) -> anyhow::Error {
    let path = match tool_path() {
        Ok(path) => path,
        Err(e) => return e,
    };
    if !path.is_file() {
        return anyhow!(
            "`ordo {command}` needs the ordo-testnet binary at {}, which is missing; build the whole workspace with `cargo build --release --workspace`",
            path.display()
        );
    }
    let error = std::process::Command::new(&path)
        .args(args.iter().skip(1))
        .exec();
    anyhow!("cannot start {}: {error}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("ordo")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn finds_the_command_past_global_flags() {
        assert_eq!(delegated(&argv(&["testnet", "up"])), Some("testnet"));
        assert_eq!(
            delegated(&argv(&["--json", "bench", "--rate", "5"])),
            Some("bench")
        );
        assert_eq!(
            delegated(&argv(&["--testnet-dir", "/tmp/x", "testnet", "down"])),
            Some("testnet")
        );
        assert_eq!(
            delegated(&argv(&["--rpc=1.2.3.4:5", "testnet"])),
            Some("testnet")
        );
        assert_eq!(delegated(&argv(&["--rpc", "testnet", "status"])), None);
        assert_eq!(delegated(&argv(&["status"])), None);
        assert_eq!(delegated(&argv(&["account", "testnet"])), None);
        assert_eq!(delegated(&argv(&["--", "testnet"])), None);
        assert_eq!(delegated(&argv(&[])), None);
    }
}
