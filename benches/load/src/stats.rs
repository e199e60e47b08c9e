//! Exact percentiles over every recorded sample (sorted, nearest rank): no buckets, no
//! approximation.

use serde_json::{json, Value};

/// Nearest-rank percentile (`p` in 0..=100) of sorted samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `{count, p50, p90, p99, p999, max, mean}` of samples in microseconds, with the given unit
/// suffix on every key (e.g. `_us`).
pub fn summary(samples: &mut [u64], suffix: &str) -> Value {
    samples.sort_unstable();
    let mean = if samples.is_empty() {
        0.0
    } else {
        samples.iter().sum::<u64>() as f64 / samples.len() as f64
    };
    json!({
        "count": samples.len(),
        format!("p50{suffix}"): percentile(samples, 50.0),
        format!("p90{suffix}"): percentile(samples, 90.0),
        format!("p99{suffix}"): percentile(samples, 99.0),
        format!("p999{suffix}"): percentile(samples, 99.9),
        format!("max{suffix}"): samples.last().copied().unwrap_or(0),
        format!("mean{suffix}"): (mean * 10.0).round() / 10.0,
    })
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.9), 100);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 1.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
