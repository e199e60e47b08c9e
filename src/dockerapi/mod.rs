//! The Docker API a gateway gets (DESIGN.md §4): an endpoint of its own, served by the front
//! door, that checks every call and reads and rewrites create bodies, so no tenant holds the
//! host's engine socket.
//!
//! Transport: a unix socket per gateway, `<api_socket_dir>/<slug>/docker.sock`, whose
//! *directory* is bind-mounted read-only into that gateway at [`MOUNT_DIR`] (`/var/run`, so
//! `/var/run/docker.sock` is the default socket path) with `DOCKER_HOST` pointing at it too, so
//! the gateway's unmodified `docker` CLI and Docker client use it. A unix
//! socket rather than a listener on the user's network: every MCP server container on that
//! network could reach a TCP listener, while only the gateway's mount namespace sees this
//! socket (and the policy refuses binds to server containers). The directory rather than the
//! file is mounted so a restarted front door, which binds a new socket (a new inode) in the
//! same place, is reached again by a gateway it adopts.
//!
//! Pieces: [`routes`] (which call), [`create`] (the create body policy), [`images`] (image
//! references), [`scope`] (what one gateway may touch), [`handle`] (one call), [`engine`]
//! (forwarding, with upgrades for `docker run -i`).

pub mod create;
#[cfg(test)]
mod create_tests;
pub mod engine;
mod handle;
pub mod images;
mod metrics;
mod refusal;
pub mod routes;
pub mod scope;
#[cfg(test)]
mod serve_tests;

pub use metrics::ApiMetrics;
pub use refusal::{Reason, Refusal};
pub use scope::Scope;

use bytes::Bytes;
use engine::Engine;
use http_body_util::combinators::BoxBody;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

/// Request and response bodies on both sides.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// Where a gateway sees its socket directory: the directory of the docker CLI's default
/// socket, because docker/mcp-gateway runs `docker run` with an environment of the server's
/// variables only (no `DOCKER_HOST`).
pub const MOUNT_DIR: &str = "/var/run";
/// The socket's file name in its directory.
pub const SOCKET_FILE: &str = "docker.sock";
/// Longest unix socket path Linux accepts (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Longest slug (see `owners`): the directory must leave room for it.
const MAX_SLUG: usize = 40;

/// Limits and admin policy for server containers, from `gateways.docker.servers`.
#[derive(Debug, Clone)]
pub struct ServerPolicy {
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids: i64,
    /// Upper case, without `CAP_`.
    pub cap_add: Vec<String>,
    pub binds: Vec<String>,
}

impl ServerPolicy {
    /// From the config section (already validated).
    pub fn from_config(s: &crate::config::ServerContainersConfig) -> anyhow::Result<Self> {
        Ok(Self {
            memory: i64::try_from(s.memory.0)?,
            nano_cpus: (s.cpus * 1e9) as i64,
            pids: s.pids,
            cap_add: s
                .cap_add
                .iter()
                .map(|c| {
                    c.to_ascii_uppercase()
                        .trim_start_matches("CAP_")
                        .to_string()
                })
                .collect(),
            binds: s.binds.clone(),
        })
    }
}

/// What every endpoint shares.
pub(crate) struct Shared {
    engine: Engine,
    policy: ServerPolicy,
    metrics: ApiMetrics,
    /// Cancelled at shutdown: every listener, connection and attach bridge ends.
    stop: CancellationToken,
}

/// How to set up the endpoints.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Engine address (`gateways.docker.host`, else `DOCKER_HOST`, else the default socket).
    pub engine_host: Option<crate::config::EngineHost>,
    /// Limit of the front door's own lookups (inspects) on the engine.
    pub lookup_timeout: std::time::Duration,
    /// Where the socket directories are made (on this process's file system).
    pub dir: PathBuf,
    /// The same directory as the engine's host sees it (bind sources); `dir` when `None`.
    pub host_dir: Option<PathBuf>,
    pub policy: ServerPolicy,
}

/// The policed endpoints of all gateways; cheap to clone.
#[derive(Clone)]
pub struct GatewayApis {
    shared: Arc<Shared>,
    dir: PathBuf,
    host_dir: PathBuf,
    open: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

impl GatewayApis {
    /// Makes the socket directory (0700) and checks that every socket path fits.
    pub fn new(s: ApiSettings, metrics: ApiMetrics) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&s.dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", s.dir.display()))?;
        std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o700))?;
        let dir = s.dir.canonicalize()?;
        let longest = dir.as_os_str().len() + 1 + MAX_SLUG + 1 + SOCKET_FILE.len();
        if longest > MAX_SOCKET_PATH {
            anyhow::bail!(
                "gateways.docker.api_socket_dir {} is too long for unix socket paths (at most {} characters)",
                dir.display(),
                MAX_SOCKET_PATH - (MAX_SLUG + 2 + SOCKET_FILE.len())
            );
        }
        let host_dir = s.host_dir.clone().unwrap_or_else(|| dir.clone());
        Ok(Self {
            shared: Arc::new(Shared {
                engine: Engine::new(
                    crate::config::EngineHost::resolve(s.engine_host.as_ref()),
                    s.lookup_timeout,
                ),
                policy: s.policy,
                metrics,
                stop: CancellationToken::new(),
            }),
            dir,
            host_dir,
            open: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The bind (`host_dir/slug:MOUNT_DIR:ro`) and the `DOCKER_HOST` value for a gateway.
    pub fn mount_for(&self, slug: &str) -> (String, String) {
        (
            format!("{}:{MOUNT_DIR}:ro", self.host_dir.join(slug).display()),
            format!("DOCKER_HOST=unix://{MOUNT_DIR}/{SOCKET_FILE}"),
        )
    }

    fn socket_dir(&self, slug: &str) -> PathBuf {
        self.dir.join(slug)
    }

    /// Serves the endpoint of `scope`'s gateway (replacing one already served for its user):
    /// a fresh socket in the user's directory, which the gateway's mount shows.
    pub fn open(&self, scope: Scope) -> std::io::Result<()> {
        let slug = scope.slug.clone();
        let dir = self.socket_dir(&slug);
        std::fs::create_dir_all(&dir)?;
        // Traversable by the gateway's user (it sees only this directory; the parent stays
        // 0700 on the host).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let path = dir.join(SOCKET_FILE);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&path)?;
        // Any uid inside the gateway (which alone sees it) may connect.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        let cancel = self.shared.stop.child_token();
        if let Some(old) = self.open.lock().insert(slug.clone(), cancel.clone()) {
            old.cancel();
        }
        crate::server::workers::spawn_background(accept_loop(
            listener,
            self.shared.clone(),
            Arc::new(scope),
            cancel,
        ));
        tracing::debug!(user = %slug, socket = %path.display(), "policed Docker API served");
        Ok(())
    }

    /// Whether this process serves `slug`'s endpoint.
    pub fn serves(&self, slug: &str) -> bool {
        self.open.lock().contains_key(slug)
    }

    /// Whether anybody answers on `slug`'s socket: this process, or another front door
    /// replica sharing the directory (a socket left by a dead one refuses the connection).
    pub fn answered(&self, slug: &str) -> bool {
        std::os::unix::net::UnixStream::connect(self.socket_dir(slug).join(SOCKET_FILE)).is_ok()
    }

    /// Serves `slug`'s endpoint unless another process already answers on it (a replica that
    /// started the gateway serves it; taking its socket over would leave the gateway without
    /// an API when this process goes while that one stays). True when this process serves it.
    pub fn open_unless_served(&self, scope: Scope) -> std::io::Result<bool> {
        if !self.serves(&scope.slug) && self.answered(&scope.slug) {
            return Ok(false);
        }
        self.open(scope).map(|()| true)
    }

    /// Stops serving a user's endpoint and removes its directory.
    pub fn close(&self, slug: &str) {
        if let Some(c) = self.open.lock().remove(slug) {
            c.cancel();
        }
        let dir = self.socket_dir(slug);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(user = slug, error = %e, "removing the gateway's API socket directory failed");
            }
        }
    }

    /// Stops every endpoint (sockets stay, for the next front door to replace).
    pub fn shutdown(&self) {
        self.shared.stop.cancel();
    }

    /// The directory of the sockets (tests).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

async fn accept_loop(
    listener: UnixListener,
    shared: Arc<Shared>,
    scope: Arc<Scope>,
    cancel: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(user = %scope.slug, error = %e, "policed Docker API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (shared, scope, cancel) = (shared.clone(), scope.clone(), cancel.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (shared, scope) = (shared.clone(), scope.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(handle::handle(shared, scope, req).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "policed Docker API connection ended");
                },
                _ = cancel.cancelled() => {}
            }
        });
    }
}
