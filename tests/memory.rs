//! A 100 MB body each way streams through the front door while the heap stays bounded.
//! Its own test binary: the counting allocator sees every allocation of this process (front
//! door, client and upstream alike), so a proxy that buffered the body would show 100 MB.
// Test code may unwrap (the lint's allow-*-in-tests in .clippy.toml covers #[test] functions
// and #[cfg(test)] modules, not the helpers of an integration test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/support/mod.rs"]
#[allow(dead_code)]
mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use support::upstream::{full, Body};
use support::{tokens, Frontdoor, Proto, TestUpstream};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// Counting every allocation needs a GlobalAlloc, which is unsafe to implement.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

const TOTAL: usize = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// Far below the 100 MB a buffering proxy would hold; covers hyper/h2 windows and TLS buffers.
const BOUND: usize = 16 * 1024 * 1024;

fn chunks() -> impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send {
    let chunk = Bytes::from(vec![7u8; CHUNK]);
    futures_util::stream::iter((0..TOTAL / CHUNK).map(move |_| Ok(Frame::data(chunk.clone()))))
}

fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabytes_each_way_with_bounded_heap() {
    let up = TestUpstream::start(|req| async move {
        if req.uri().path() == "/upload" {
            // Count without keeping.
            let mut body = req.into_body();
            let mut n = 0usize;
            while let Some(f) = body.frame().await {
                if let Ok(d) = f.unwrap().into_data() {
                    n += d.len();
                }
            }
            http::Response::new(full(n.to_string()))
        } else {
            http::Response::new(BodyExt::boxed(StreamBody::new(chunks())) as Body)
        }
    })
    .await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    for proto in [Proto::H1, Proto::H2] {
        let c = fd.client(proto);
        // Warm up: pools, TLS sessions and lazy statics are not what we measure.
        assert_eq!(c.get_as("alice", "/warm").await.status(), 200);

        let base = reset_peak();
        let req = c
            .req("POST", "/upload")
            .header("authorization", tokens::bearer("alice"))
            .body(BodyExt::boxed(StreamBody::new(chunks())))
            .unwrap();
        let resp = c.try_send(req).await.unwrap();
        let got = support::body_bytes(resp).await;
        assert_eq!(
            std::str::from_utf8(&got).unwrap(),
            TOTAL.to_string(),
            "{proto:?} upload"
        );
        let up_peak = PEAK.load(Ordering::Relaxed) - base;

        let base = reset_peak();
        let mut resp = c.get_as("alice", "/download").await;
        let mut n = 0;
        while let Some(f) = resp.body_mut().frame().await {
            if let Ok(d) = f.unwrap().into_data() {
                n += d.len();
            }
        }
        assert_eq!(n, TOTAL, "{proto:?} download");
        let down_peak = PEAK.load(Ordering::Relaxed) - base;
        eprintln!(
            "{proto:?}: peak heap growth upload {} KiB, download {} KiB",
            up_peak / 1024,
            down_peak / 1024
        );
        assert!(
            up_peak < BOUND,
            "{proto:?}: upload grew the heap by {up_peak} bytes"
        );
        assert!(
            down_peak < BOUND,
            "{proto:?}: download grew the heap by {down_peak} bytes"
        );
    }
}
