//! A bare hyper reverse proxy (hyper 1 server + hyper-util pooled client, no TLS, no auth,
//! no header work): the floor of the front door's HTTP stack, to tell the stack's cost from
//! the front door's own per-request work.

use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub async fn serve(port: u16, upstream: String) -> anyhow::Result<()> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(http);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("fd-load proxy listening on {}", listener.local_addr()?);
    loop {
        let tcp = crate::net::accept(&listener).await;
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                let client = client.clone();
                let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
                let uri = format!("http://{upstream}{pq}").parse();
                async move {
                    *req.uri_mut() = uri?;
                    anyhow::Ok(client.request(req).await?)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
