//! One shutdown signal fanned out to every listener. The value is the grace period: how long
//! in-flight requests may finish before open streams (which never end by themselves) are cut.

use std::time::Duration;
use tokio::sync::watch;

/// Cloneable trigger and listener for shutdown.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<Option<Duration>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self {
            tx: watch::channel(None).0,
        }
    }

    /// Starts shutdown with `grace`; a second call can only shorten it.
    pub fn trigger(&self, grace: Duration) {
        self.tx.send_modify(|cur| {
            *cur = Some(cur.map_or(grace, |g| g.min(grace)));
        });
    }

    /// Resolves with the grace period once shutdown starts.
    pub async fn triggered(&self) -> Duration {
        let mut rx = self.tx.subscribe();
        loop {
            if let Some(g) = *rx.borrow_and_update() {
                return g;
            }
            if rx.changed().await.is_err() {
                return Duration::ZERO;
            }
        }
    }

    /// True once triggered.
    pub fn is_triggered(&self) -> bool {
        self.tx.borrow().is_some()
    }
}

/// Waits for SIGTERM (grace `term`) or SIGINT (grace `int`) and triggers `shutdown`;
/// a second signal cuts everything at once.
pub async fn on_signals(shutdown: Shutdown, term: Duration, int: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut sigterm), Ok(mut sigint)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; shutdown only by process kill");
        return;
    };
    tokio::select! {
        _ = sigterm.recv() => { tracing::info!(grace_ms = term.as_millis() as u64, "SIGTERM: draining"); shutdown.trigger(term) }
        _ = sigint.recv() => { tracing::info!(grace_ms = int.as_millis() as u64, "SIGINT: draining"); shutdown.trigger(int) }
    }
    tokio::select! {
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
    }
    tracing::warn!("second signal: closing every connection now");
    shutdown.trigger(Duration::ZERO);
}
