//! The lifecycle's fixed times, in one place below every file that uses them.

use std::time::Duration;

/// A failed start is answered from memory this long before another start is tried, so a
/// burst of requests does not hammer a broken engine or registry.
pub(super) const FAILED_BACKOFF: Duration = Duration::from_secs(1);
/// `Retry-After` when the engine is unreachable or a start failed.
pub(super) const RETRY_UNAVAILABLE: Duration = Duration::from_secs(5);
/// `Retry-After` at capacity.
pub(super) const RETRY_CAPACITY: Duration = Duration::from_secs(10);
/// How long a reachability check may take before a request that needs a start gets its 503.
pub(super) const QUICK_PING: Duration = Duration::from_secs(2);
/// A failed slot is reported as failed this long, then forgotten.
pub(super) const FAILED_KEPT: Duration = Duration::from_secs(600);
/// SIGTERM grace of a stopping gateway before SIGKILL.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long shutdown waits for the lifecycle's tasks (starts and stops under way, the
/// background loops) to end; with `stop_on_shutdown` everything is removed after it anyway (a
/// start finishing later would leave a gateway behind).
pub(super) const SHUTDOWN_SETTLE: Duration = Duration::from_secs(10);
