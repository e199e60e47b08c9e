//! The standard `process_*` metrics (the names every Prometheus client library exports, so
//! stock dashboards and alerts work), read from `/proc/self` at each scrape. Elsewhere than
//! Linux there is no `/proc` and nothing is exported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/*/stat` times: USER_HZ, 100 on every Linux platform we
/// build for (the Prometheus Go client's procfs assumes the same).
const USER_HZ: f64 = 100.0;

/// What one scrape read; `None` for anything the kernel did not tell us.
#[derive(Debug, Default, PartialEq)]
pub struct Sample {
    pub cpu_seconds: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub resident_memory_bytes: Option<i64>,
    pub virtual_memory_bytes: Option<i64>,
    pub open_fds: Option<i64>,
    pub max_fds: Option<i64>,
}

impl Sample {
    /// Reads `/proc/self/{stat,status,limits,fd}` and `/proc/stat` (boot time).
    pub fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let stat = read("/proc/self/stat");
        let times = stat.as_deref().and_then(parse_stat);
        let boot = read("/proc/stat").as_deref().and_then(parse_boot_time);
        let status = read("/proc/self/status");
        let kib = |key: &str| status.as_deref().and_then(|s| status_kib(s, key));
        Sample {
            cpu_seconds: times.map(|t| t.cpu_seconds),
            start_time_seconds: times.zip(boot).map(|(t, b)| b + t.start_after_boot),
            resident_memory_bytes: kib("VmRSS:").map(|k| k * 1024),
            virtual_memory_bytes: kib("VmSize:").map(|k| k * 1024),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as i64),
            max_fds: read("/proc/self/limits").as_deref().and_then(parse_max_fds),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct StatTimes {
    cpu_seconds: f64,
    start_after_boot: f64,
}

/// utime + stime (fields 14, 15) and starttime (field 22) of `/proc/<pid>/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<StatTimes> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is fields[n - 3].
    let num = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(StatTimes {
        cpu_seconds: (num(14)? + num(15)?) / USER_HZ,
        start_after_boot: num(22)? / USER_HZ,
    })
}

fn parse_boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn status_kib(status: &str, key: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The soft limit on open files (`unlimited` is left out: there is no number to export).
fn parse_max_fds(limits: &str) -> Option<i64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Registered at the registry's root, so the names carry no `mcp_frontdoor_` prefix.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = Sample::read();
        if let Some(v) = s.cpu_seconds {
            let m = ConstCounter::new(v);
            m.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                m.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_memory_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                s.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let m = ConstGauge::new(v);
                m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
            }
        }
        if let Some(v) = s.start_time_seconds {
            let m = ConstGauge::new(v);
            m.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                None,
                m.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with spaces and a `)` of its own.
        let stat = "4242 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 123400 100 200 rest";
        let t = parse_stat(stat).unwrap();
        assert_eq!(t.cpu_seconds, 3.0);
        assert_eq!(t.start_after_boot, 1234.0);
        assert_eq!(parse_boot_time("cpu 1 2\nbtime 1700000000\n"), Some(1.7e9));
        let limits = "Limit Soft Limit Hard Limit Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            status_kib("Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS:"),
            Some(2048)
        );
    }

    #[test]
    fn this_process_is_measured() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            eprintln!("skipped: no /proc on this system");
            return;
        }
        let s = Sample::read();
        assert!(s.resident_memory_bytes.unwrap() > 0);
        assert!(s.virtual_memory_bytes.unwrap() >= s.resident_memory_bytes.unwrap());
        assert!(s.open_fds.unwrap() > 0);
        assert!(s.max_fds.unwrap() >= s.open_fds.unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = s.start_time_seconds.unwrap();
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started}"
        );
        assert!(s.cpu_seconds.unwrap() >= 0.0);
    }
}
