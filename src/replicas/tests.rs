//! The verdicts of asking peers, against real listeners on 127.0.0.1.

use super::*;
use crate::secrets::{KeyRing, MasterKey};
use parking_lot::Mutex;

fn ring() -> KeyRing {
    KeyRing::single(MasterKey::from_bytes([4; 32]))
}

/// What the fake lifecycle of a peer reports for every user.
struct Fixed(Mutex<Option<(u64, u64)>>);

impl Activity for Fixed {
    fn activity(&self, _: &str) -> Option<(u64, u64)> {
        *self.0.lock()
    }
}

/// A replica answering on 127.0.0.1 with `activity`; returns its address and its `Peers`.
async fn replica(activity: Option<(u64, u64)>) -> (SocketAddr, Arc<Peers>) {
    let peers = Arc::new(Peers::new(Vec::new(), Duration::from_secs(1), &ring()));
    let server = Arc::new(PeerServer {
        peers: peers.clone(),
        source: Arc::new(Fixed(Mutex::new(activity))),
    });
    let app = axum::Router::new().route(
        "/internal/v1/activity/{user}",
        axum::routing::get(
            move |axum::extract::Path(user): axum::extract::Path<String>,
                  headers: http::HeaderMap| {
                let server = server.clone();
                async move {
                    let a = headers
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    server.answer(&user, a)
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, peers)
}

fn asking(addrs: &[SocketAddr], timeout_ms: u64) -> Peers {
    Peers::new(
        addrs.iter().map(ToString::to_string).collect(),
        Duration::from_millis(timeout_ms),
        &ring(),
    )
}

const IDLE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_peer_with_a_stream_or_recent_activity_keeps_the_gateway() {
    let now = now_ms();
    let (streaming, _) = replica(Some((1, now - 3_600_000))).await;
    let (recent, _) = replica(Some((0, now - 1_000))).await;
    let (idle, _) = replica(Some((0, now - 120_000))).await;
    let (none, _) = replica(None).await;
    assert!(matches!(
        asking(&[streaming], 1000).ask("ann", IDLE).await,
        Verdict::Keep { .. }
    ));
    match asking(&[idle, recent], 1000).ask("ann", IDLE).await {
        Verdict::Keep { last_active_ms, .. } => {
            assert_eq!(last_active_ms, Some(now - 1_000), "the most recent time")
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(
        asking(&[idle, none], 1000).ask("ann", IDLE).await,
        Verdict::Idle
    );
}

#[tokio::test]
async fn a_dead_peer_is_idle_a_silent_one_keeps_and_self_is_skipped() {
    // Nothing listens there: refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert_eq!(asking(&[closed], 500).ask("ann", IDLE).await, Verdict::Idle);
    // Accepts (the backlog does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let v = asking(&[silent.local_addr().unwrap()], 300)
        .ask("ann", IDLE)
        .await;
    assert!(matches!(v, Verdict::Keep { .. }), "{v:?}");
    // A replica asking itself (one name for all replicas) skips its own answer.
    let (me, my_peers) = replica(Some((5, now_ms()))).await;
    let myself = Peers {
        replica: my_peers.replica.clone(),
        auth: my_peers.auth.clone(),
        specs: vec![me.to_string()],
        timeout: Duration::from_secs(1),
    };
    assert_eq!(myself.ask("ann", IDLE).await, Verdict::Idle);
    // A peer under another master key answers 401: not an answer, so kept.
    let other = Peers::new(
        vec![me.to_string()],
        Duration::from_secs(1),
        &KeyRing::single(MasterKey::from_bytes([6; 32])),
    );
    assert!(matches!(other.ask("ann", IDLE).await, Verdict::Keep { .. }));
}
