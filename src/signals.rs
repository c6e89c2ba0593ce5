//! Ctrl-C and SIGTERM: registered once up front, waited for while payout works (asynchronously,
//! or from another thread while it reads a file), and what a signal before anything was
//! recorded or sent means.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::{Failure, FailureKind};
use crate::output::Printer;

/// Ctrl-C and SIGTERM, registered once up front: a signal arriving while the first is handled
/// is kept for the second wait instead of being lost.
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    pub fn install() -> Option<Signals> {
        Some(Signals {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }

    pub async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Waits for the first signal; `None` (signals unavailable) never resolves.
pub async fn first_signal(signals: &mut Option<Signals>) {
    match signals {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Ctrl-C during the checks that come before anything is recorded or sent.
pub fn interrupted() -> Failure {
    Failure::new(
        FailureKind::Interrupted,
        "stopped on request before anything was recorded or sent",
    )
    .with_fix("Run the same command again when you are ready.")
}

/// Ctrl-C and SIGTERM while payout works synchronously — reading, validating or importing the
/// file, where no `select!` listens: the first asks every pass to stop (it ends within a few
/// thousand rows and the command exits 4, the journal as it was); the second quits at once.
pub struct SyncWatch {
    done: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<Signals>>,
}

/// Watches `signals` (taken from the caller until [`SyncWatch::end`]) on another thread of the
/// runtime while the caller's thread is busy.
pub fn watch_sync(signals: &mut Option<Signals>, printer: Printer) -> SyncWatch {
    let (done, mut ended) = tokio::sync::oneshot::channel::<()>();
    let mut taken = signals.take();
    let task = tokio::spawn(async move {
        let Some(s) = taken.as_mut() else {
            let _ = ended.await;
            return None;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = &mut ended => return taken,
                _ = s.next() => {}
            }
            seen += 1;
            if seen == 1 {
                crate::input::request_stop();
                printer.warn(
                    "Stopping: payout ends the pass over the file under way; nothing more is recorded or sent (press Ctrl-C again to quit at once).",
                );
            } else {
                printer.warn(
                    "Quitting now; nothing of this run was sent, and a batch it was importing is imported again by the same command.",
                );
                std::process::exit(crate::error::Exit::Incomplete.code().into());
            }
        }
    });
    SyncWatch { done, task }
}

impl SyncWatch {
    /// Gives `signals` back; whether a signal asked payout to stop meanwhile.
    pub async fn end(self, signals: &mut Option<Signals>) -> bool {
        let _ = self.done.send(());
        if let Ok(s) = self.task.await {
            *signals = s;
        }
        crate::input::stop_requested()
    }
}
