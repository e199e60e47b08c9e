//! Gives memory back to the OS after a burst. Part of the binary, not the library (which
//! forbids unsafe code): two glibc calls.
//!
//! glibc's malloc returns freed memory to the OS only from the top of each arena, so after
//! 10,000 idle streams closed the front door kept its peak RSS (about 400 MiB) for good, where
//! nginx went back to 34 MiB. `malloc_trim(0)` also releases the free pages inside the arenas:
//! measured, 406 MiB went back to 22 MiB (docs/BENCHMARKS.md, "Memory after bursts"). A
//! thread looks every [`INTERVAL`] at how much the arenas hold free (`mallinfo2`, which walks
//! the free lists) and trims only when that is over [`THRESHOLD`], so a steady process never
//! pays for a trim (which holds each arena's lock while it runs). mimalloc as the global
//! allocator was tried and measured worse: 66 instead of 40 KiB per idle stream, and nothing
//! returned either.

use std::time::Duration;

/// How often the free memory is looked at.
const INTERVAL: Duration = Duration::from_secs(10);
/// Free memory in the arenas worth a trim.
const THRESHOLD: usize = 32 << 20;

/// Starts the trimming thread (glibc only; other C libraries have their own policies).
pub fn spawn() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| loop {
                std::thread::sleep(INTERVAL);
                trim_if_worth_it();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no malloc trim thread: memory freed after bursts stays with the process");
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_if_worth_it() {
    // SAFETY: mallinfo2 and malloc_trim take no pointers and are thread-safe in glibc (>= 2.33
    // for mallinfo2, which the libc crate binds; Debian 12 has 2.36).
    let free = unsafe { libc::mallinfo2() }.fordblks;
    if free < THRESHOLD {
        return;
    }
    let t = std::time::Instant::now();
    // SAFETY: as above; the trim only hands free pages back (madvise), live data stays.
    let released = unsafe { libc::malloc_trim(0) } == 1;
    tracing::debug!(
        free_mib = free >> 20,
        released,
        ms = t.elapsed().as_millis() as u64,
        "malloc_trim after a burst"
    );
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    /// What a burst leaves: many small blocks freed below one that stays, so the free memory
    /// sits inside the arena where glibc's own trimming (top of the heap only) never reaches.
    #[test]
    fn a_trim_gives_back_what_a_burst_freed_below_live_data() {
        let burst: Vec<Box<[u8; 1024]>> = (0..96 * 1024).map(|_| Box::new([7u8; 1024])).collect();
        let pin = Box::new([1u8; 1024]);
        let peak = rss_kib();
        drop(burst);
        let kept = rss_kib();
        super::trim_if_worth_it();
        let trimmed = rss_kib();
        assert_eq!(pin[0], 1);
        assert!(
            kept + 8 * 1024 > peak,
            "glibc alone keeps the freed burst: {peak} -> {kept} KiB"
        );
        assert!(
            trimmed + 64 * 1024 < kept,
            "the trim gives most of the 96 MiB back: {kept} -> {trimmed} KiB"
        );
    }
}
