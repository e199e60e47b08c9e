//! Image pulls shared between starts: every start that needs an image waits on the same pull,
//! and a pull outlives a start that gives up, so the next request finds the image.

use crate::runtime::Runtime;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Waits for one image pull: `None` while it runs, then its outcome.
type PullWaiter = watch::Receiver<Option<Result<(), String>>>;

/// The pull coalescer.
pub(super) struct Pulls {
    rt: Arc<dyn Runtime>,
    tasks: TaskTracker,
    /// Pulls in flight by image.
    running: Mutex<HashMap<String, PullWaiter>>,
}

impl Pulls {
    /// Pulls run on `rt`, as tasks of `tasks` (awaited at shutdown).
    pub(super) fn new(rt: Arc<dyn Runtime>, tasks: TaskTracker) -> Self {
        Self {
            rt,
            tasks,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Pulls `image`, or waits for the pull of it under way; `None` when cancelled (the pull
    /// goes on) or abandoned.
    pub(super) async fn pull(
        &self,
        image: &str,
        cancel: &CancellationToken,
    ) -> Option<Result<(), String>> {
        let mut rx = {
            let mut running = self.running.lock();
            running
                .entry(image.to_string())
                .or_insert_with(|| {
                    let (tx, rx) = watch::channel(None);
                    let rt = self.rt.clone();
                    let img = image.to_string();
                    crate::server::workers::spawn_background(self.tasks.track_future(async move {
                        let r = rt.pull(&img).await.map_err(|e| e.to_string());
                        let _ = tx.send(Some(r));
                    }));
                    rx
                })
                .clone()
        };
        let outcome = tokio::select! {
            o = rx.wait_for(Option::is_some) => o.map(|v| v.clone()),
            _ = cancel.cancelled() => return None,
        };
        self.running.lock().remove(image);
        outcome.ok().flatten()
    }
}
