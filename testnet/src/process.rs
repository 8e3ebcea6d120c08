//! Validator processes that outlive the command that started them: each runs in its own
//! session (so a Ctrl-C in the terminal reaches only the command, not the validators),
//! with its output appended to its log file and its process id in a pid file.
//!
//! A pid file alone proves nothing (the process may be gone and the id reused), so a
//! validator counts as running only when the process exists, is not a zombie, and its
//! command line is `ordo run --config <this validator's config>`.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Result, TestnetError};

/// The `ordo` validator binary: `$ORDO_BIN`, else `ordo` next to the running executable.
pub fn validator_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("ORDO_BIN").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .map_err(|e| TestnetError::io("find the running executable", e))?
            .with_file_name("ordo"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestnetError::NoValidatorBinary { path })
    }
}

/// Starts `ordo run --config <config>` detached, appending its output to `log` and
/// writing its id to `pid_file`. The returned child may be dropped: the process goes on.
pub fn spawn_validator(bin: &Path, config: &Path, log: &Path, pid_file: &Path) -> Result<Child> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| TestnetError::io(format!("open {}", log.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| TestnetError::io(format!("open {}", log.display()), e))?;
    let mut command = Command::new(bin);
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    // The log is a file: no colour escapes in it.
    command.env("NO_COLOR", "1");
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| TestnetError::io(format!("start {}", bin.display()), e))?;
    std::fs::write(pid_file, format!("{}\n", child.id()))
        .map_err(|e| TestnetError::io(format!("write {}", pid_file.display()), e))?;
    Ok(child)
}

/// The id in a pid file, if the file exists and holds one.
pub fn read_pid(pid_file: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid: &i32| *pid > 0)
}

/// Whether process `pid` exists and has not exited (a zombie has exited). A zombie that
/// is our own child is reaped on the way.
pub fn is_alive(pid: i32) -> bool {
    // SAFETY: plain system calls on a process id; WNOHANG never blocks and a pid that is
    // not our child just yields ECHILD.
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
        if libc::kill(pid, 0) != 0 {
            return std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        }
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Whether `pid` is a live `ordo run --config <config>` process.
pub fn is_validator(pid: i32, config: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        // Without /proc there is nothing more to check.
        return !Path::new("/proc/self").exists();
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let program_is_ordo = args
        .first()
        .and_then(|p| Path::new(std::str::from_utf8(p).ok()?).file_name())
        .is_some_and(|name| name == "ordo");
    let config = config.as_os_str().as_encoded_bytes();
    program_is_ordo
        && args.get(1) == Some(&&b"run"[..])
        && args
            .windows(2)
            .any(|w| w[0] == b"--config" && w[1] == config)
}

/// The running validator's id per its pid file, if it is running.
pub fn running_pid(pid_file: &Path, config: &Path) -> Option<i32> {
    read_pid(pid_file).filter(|pid| is_validator(*pid, config))
}

pub fn signal(pid: i32, signal: i32) {
    // SAFETY: sending a signal has no memory effects here.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// What [`stop`] did to each process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Exited after SIGTERM within the grace period.
    Terminated,
    /// Still there after the grace period: SIGKILLed.
    Killed,
}

/// SIGTERM to every process, a wait of at most `grace` for all of them to exit, then
/// SIGKILL for those left (and a bounded wait for them to go).
pub fn stop(pids: &[i32], grace: Duration) -> Vec<Stopped> {
    for &pid in pids {
        signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pids.iter().any(|&p| is_alive(p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let outcome: Vec<Stopped> = pids
        .iter()
        .map(|&pid| {
            if is_alive(pid) {
                signal(pid, libc::SIGKILL);
                Stopped::Killed
            } else {
                Stopped::Terminated
            }
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && pids.iter().any(|&p| is_alive(p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    outcome
}

/// The last `lines` lines of a text file (empty if it cannot be read); reads at most the
/// last 256 KiB.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(256 << 10);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_child_is_not_alive_and_not_a_validator() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let _ = child.wait();
        assert!(!is_alive(pid));
        assert!(!is_validator(pid, Path::new("/nonexistent/config.toml")));
    }

    #[test]
    fn another_program_is_not_a_validator() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let pid = child.id() as i32;
        assert!(is_alive(pid));
        assert!(!is_validator(pid, Path::new("/x/config.toml")));
        assert_eq!(
            stop(&[pid], Duration::from_secs(5)),
            vec![Stopped::Terminated]
        );
        let _ = child.wait();
        assert!(!is_alive(pid));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&path, 2), "c\nd");
        assert_eq!(tail(&dir.path().join("none"), 2), "");
    }
}
