//! Every task and thread of a validator runs under one supervisor.
//!
//! A validator's tasks run for the life of the process: none may end while it runs. So
//! the end of any of them, by a returned error, a panic, or a plain return, is fatal: the
//! supervisor names the task, the validator shuts down, and `ordo run` exits non-zero,
//! which a process manager and `ordo testnet status` see. Nothing polls for failures: a
//! task's end wakes the supervisor.
//!
//! Invariant: [`Supervisor::failure`] resolves with the first task that ended, and only
//! when one did; a shutdown the supervisor started itself does not count.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::error;

/// Why a task ended.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A channel or watch the task reads was closed by its other end.
    #[error("{0} closed")]
    Closed(String),
    /// Storage refused a read or write the task cannot do without.
    #[error("storage: {0}")]
    Storage(#[from] ordo_storage::StorageError),
    /// Execution of a committed block failed.
    #[error("execution: {0}")]
    Execution(String),
    /// Something the task relies on did not hold.
    #[error("{0}")]
    Invariant(String),
    #[error("panicked: {0}")]
    Panicked(String),
    /// It returned, though it should run for the life of the process.
    #[error("ended unexpectedly")]
    Ended,
}

impl TaskError {
    pub fn closed(what: &str) -> Self {
        TaskError::Closed(what.to_string())
    }
}

/// The first task to end: its name and why.
#[derive(Debug)]
pub struct Failure {
    pub task: &'static str,
    pub error: TaskError,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task '{}' failed: {}", self.task, self.error)
    }
}

/// A task's name and how it ended.
type Ended = (&'static str, Result<(), TaskError>);

/// How long the supervisor waits, after a task ended because a channel closed, for the
/// task whose end closed it: the cause is named, not its first consequence.
/// A second: a panic's backtrace, printed before the task unwinds, can take half of it
/// on a loaded machine.
pub(crate) const CASCADE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Supervisor {
    tasks: JoinSet<Ended>,
    /// Threads report their end here (a thread has no join to wait on asynchronously).
    threads: (mpsc::UnboundedSender<Ended>, mpsc::UnboundedReceiver<Ended>),
    thread_handles: Vec<(&'static str, std::thread::JoinHandle<()>)>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor {
            tasks: JoinSet::new(),
            threads: mpsc::unbounded_channel(),
            thread_handles: Vec::new(),
        }
    }

    /// Runs `task` on the async runtime.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), TaskError>> + Send + 'static,
    ) {
        let task = fault::wrap(name, task);
        self.tasks.spawn(async move {
            // Caught here so that a panic keeps the task's name.
            let outcome = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(result) => result,
                Err(panic) => Err(TaskError::Panicked(panic_message(panic.as_ref()))),
            };
            (name, outcome)
        });
    }

    /// Runs `body` on a thread of its own (blocking work: the consensus driver, the
    /// execution stages, the block server).
    pub fn spawn_thread(
        &mut self,
        name: &'static str,
        body: impl FnOnce() -> Result<(), TaskError> + Send + 'static,
    ) -> std::io::Result<()> {
        let report = self.threads.0.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ordo-{name}"))
            .spawn(move || {
                let outcome = match std::panic::catch_unwind(AssertUnwindSafe(body)) {
                    Ok(result) => result,
                    Err(panic) => Err(TaskError::Panicked(panic_message(panic.as_ref()))),
                };
                let _ = report.send((name, outcome));
            })?;
        self.thread_handles.push((name, handle));
        Ok(())
    }

    /// Waits for the first task or thread to end, and says which and why. One task's end
    /// often ends others (their channels close): a task that ended because a channel
    /// closed is named only if no other task ended otherwise within [`CASCADE_GRACE`].
    pub async fn failure(&mut self) -> Failure {
        let first = self.next_end().await;
        let mut chosen = first;
        if matches!(chosen.error, TaskError::Closed(_)) {
            let grace = tokio::time::sleep(CASCADE_GRACE);
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    _ = &mut grace => break,
                    other = self.next_end() => {
                        if !matches!(other.error, TaskError::Closed(_)) {
                            chosen = other;
                            break;
                        }
                    }
                }
            }
        }
        error!(task = chosen.task, error = %chosen.error, "a validator task ended; shutting down");
        chosen
    }

    async fn next_end(&mut self) -> Failure {
        let (task, outcome) = tokio::select! {
            Some(joined) = self.tasks.join_next() => match joined {
                Ok(ended) => ended,
                Err(e) if e.is_panic() => {
                    ("(unnamed)", Err(TaskError::Panicked(panic_message(e.into_panic().as_ref()))))
                }
                Err(_) => ("(unnamed)", Err(TaskError::Ended)),
            },
            Some(ended) = self.threads.1.recv() => ended,
        };
        Failure {
            task,
            error: outcome.err().unwrap_or(TaskError::Ended),
        }
    }

    /// Stops the async tasks and waits for the threads, which end once the shutdown
    /// signal or their closed inputs reach them.
    pub async fn shutdown(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let handles = std::mem::take(&mut self.thread_handles);
        let _ = tokio::task::spawn_blocking(move || {
            for (_, handle) in handles {
                let _ = handle.join();
            }
        })
        .await;
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A fault hook for the supervision test, in builds with the `byzantine` feature only:
/// `ORDO_FAULT_PANIC_TASK=<name>` makes the task of that name panic a second after it
/// starts, so that a test can watch the validator exit and name it.
#[cfg(feature = "byzantine")]
mod fault {
    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;

    use super::TaskError;

    pub fn wrap(
        name: &'static str,
        task: impl Future<Output = Result<(), TaskError>> + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>> {
        if std::env::var("ORDO_FAULT_PANIC_TASK").ok().as_deref() != Some(name) {
            return Box::pin(task);
        }
        tracing::warn!(
            task = name,
            "FAULT INJECTION: this task will panic in a second"
        );
        Box::pin(async move {
            // Borrowed, not moved, into the select: the task's state (its channels among
            // it) must still be alive when the panic starts, as with a real bug.
            let mut task = std::pin::pin!(task);
            tokio::select! {
                r = &mut task => r,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    panic!("injected fault (ORDO_FAULT_PANIC_TASK={name})")
                }
            }
        })
    }
}

#[cfg(not(feature = "byzantine"))]
mod fault {
    use std::future::Future;

    use super::TaskError;

    pub fn wrap(
        _name: &'static str,
        task: impl Future<Output = Result<(), TaskError>> + Send + 'static,
    ) -> impl Future<Output = Result<(), TaskError>> + Send + 'static {
        task
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_task_to_end_is_named_whatever_the_way() {
        let mut s = Supervisor::new();
        s.spawn("forever", std::future::pending());
        s.spawn("returns", async { Ok(()) });
        let f = s.failure().await;
        assert_eq!(f.task, "returns");
        assert!(matches!(f.error, TaskError::Ended));

        s.spawn("fails", async { Err(TaskError::Invariant("no".into())) });
        let f = s.failure().await;
        assert_eq!((f.task, f.error.to_string()), ("fails", "no".to_string()));

        s.spawn("panics", async { panic!("bang") });
        let f = s.failure().await;
        assert_eq!(f.task, "panics");
        assert!(
            matches!(&f.error, TaskError::Panicked(m) if m == "bang"),
            "{f}"
        );

        s.spawn_thread("thread", || panic!("boom")).unwrap();
        let f = s.failure().await;
        assert_eq!(f.task, "thread");
        assert!(
            matches!(&f.error, TaskError::Panicked(m) if m == "boom"),
            "{f}"
        );
        s.shutdown().await;
    }
}
