//! The idle reaper's decision, apart from the work it leads to: given the slots, the gauges
//! and the idle timeout, which gateways are due to stop (idle for the whole timeout) and which
//! to replace (their catalog changed, and they are at an idle moment). Failed slots past their
//! keep time are expired on the way. The lifecycle's loop acts on what [`Reaper::sweep`]
//! returns, so the decision is tested without an engine or a clock of its own.

use super::metrics::GatewayMetrics;
use super::slot::{Event, Registry, Slot};
use std::sync::Arc;
use std::time::Duration;

/// What a sweep found due.
#[derive(Debug)]
pub enum Due {
    /// Idle for the whole timeout: stop it.
    Stop(Arc<Slot>),
    /// Its catalog changed and it is ready: replace it when it is idle.
    Replace(Arc<Slot>),
}

/// The reaper's view: the registry, the gauges and the timeout, nothing else.
pub struct Reaper<'a> {
    pub registry: &'a Registry,
    pub metrics: &'a GatewayMetrics,
    pub idle: Duration,
}

impl Reaper<'_> {
    /// How often to sweep: a quarter of the timeout, between 100 ms and 5 s, so a gateway
    /// stops at most a quarter late.
    pub fn tick(&self) -> Duration {
        (self.idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// One pass over every slot.
    pub fn sweep(&self) -> Vec<Due> {
        let idle_ms = self.idle.as_millis() as u64;
        let mut due = Vec::new();
        for slot in self.registry.all() {
            slot.apply(self.metrics, Event::Expire);
            let (ready, stale) = slot.with_phase(|p| (p.ready().is_some(), p.is_stale()));
            if !ready {
                continue;
            }
            if slot.idle_for(idle_ms) {
                due.push(Due::Stop(slot));
            } else if stale {
                due.push(Due::Replace(slot));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::super::slot::{now_ms, Effect, Running, StartResult};
    use super::*;
    use tokio::sync::watch;

    fn ready(m: &GatewayMetrics, reg: &Registry, slug: &str) -> Arc<Slot> {
        let s = reg.slot(slug);
        let (_tx, rx) = watch::channel::<StartResult>(None);
        assert!(matches!(
            s.apply(m, Event::Start(rx)),
            Some(Effect::RunStart)
        ));
        assert!(s.apply(m, Event::Started(Running::fake("h"))).is_some());
        s
    }

    fn slugs(due: &[Due]) -> Vec<String> {
        let mut out: Vec<String> = due
            .iter()
            .map(|d| match d {
                Due::Stop(s) => format!("stop {}", s.slug),
                Due::Replace(s) => format!("replace {}", s.slug),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn idle_gateways_stop_busy_ones_stay_and_stale_ones_are_replaced() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let reaper = Reaper {
            registry: &reg,
            metrics: &m,
            idle: Duration::from_secs(60),
        };
        let idle = ready(&m, &reg, "idle");
        idle.set_last_active_ms(now_ms() - 61_000);
        let recent = ready(&m, &reg, "recent");
        recent.set_last_active_ms(now_ms() - 10_000);
        // Idle for long, but a stream is open: never stopped under it.
        let streaming = ready(&m, &reg, "streaming");
        let _lease = streaming.lease_if_ready().unwrap();
        streaming.set_last_active_ms(now_ms() - 3_600_000);
        let stale = ready(&m, &reg, "stale");
        stale.apply(&m, Event::CatalogIs("new".into()));
        assert!(
            stale.with_phase(|p| p.is_stale()),
            "a changed catalog marks it stale"
        );
        reg.slot("stopped");
        assert_eq!(slugs(&reaper.sweep()), ["replace stale", "stop idle"]);
    }

    #[test]
    fn the_sweep_period_follows_the_timeout_within_bounds() {
        let (m, reg) = (GatewayMetrics::default(), Registry::default());
        let tick = |secs: u64| {
            Reaper {
                registry: &reg,
                metrics: &m,
                idle: Duration::from_secs(secs),
            }
            .tick()
        };
        assert_eq!(tick(0), Duration::from_millis(100));
        assert_eq!(tick(8), Duration::from_secs(2));
        assert_eq!(tick(3600), Duration::from_secs(5));
    }
}
