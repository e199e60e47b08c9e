//! Listeners: accept, TLS handshake, HTTP/1.1 + HTTP/2 on one port, graceful drain.

pub mod scrape_auth;
pub mod tls;

use crate::shutdown::Shutdown;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Facts about the connection a request came in on (in request extensions).
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// How one listener serves.
pub struct ListenerSpec {
    pub name: &'static str,
    pub tls: Option<TlsAcceptor>,
    pub handshake_timeout: Duration,
}

fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // Slow-header clients are dropped; bodies and streams are not timed.
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    // Pings find dead peers under hours-long streams that carry no data.
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Accepts until `shutdown`, then stops accepting (new connections are refused), lets
/// in-flight requests finish for the grace period, and cuts whatever is left.
pub async fn serve(listener: TcpListener, spec: ListenerSpec, app: Router, shutdown: Shutdown) {
    let builder = http_builder();
    let graceful = GracefulShutdown::new();
    let hard_stop = CancellationToken::new();
    let grace = loop {
        let (tcp, peer) = tokio::select! {
            g = shutdown.triggered() => break g,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = spec.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let app = app.clone();
        let tls = spec.tls.clone();
        let handshake_timeout = spec.handshake_timeout;
        let hard_stop = hard_stop.clone();
        let info = ConnInfo {
            peer,
            tls: tls.is_some(),
        };
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info);
                    app.clone().oneshot(req.map(axum::body::Body::new))
                });
            match tls {
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = watcher.watch(conn.into_owned()) => {}
                        _ = hard_stop.cancelled() => {}
                    }
                }
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
                    tokio::select! {
                        _ = watcher.watch(conn.into_owned()) => {}
                        _ = hard_stop.cancelled() => {}
                    }
                }
            }
        });
    };
    drop(listener);
    tracing::info!(
        listener = spec.name,
        open = graceful.count(),
        "stopped accepting; draining"
    );
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!(listener = spec.name, "drained"),
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(listener = spec.name, "grace period over; closing remaining connections");
            hard_stop.cancel();
        }
    }
}
