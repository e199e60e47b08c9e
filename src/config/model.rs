//! The config file's shape. Every key has a default here, and `config/frontdoor.yaml`
//! documents each one; unknown keys are refused by `deny_unknown_fields`.

use super::engine_host::EngineHost;
use super::own_container::OwnContainer;
use super::subnet::Subnet;
use super::units::{HumanBytes, HumanDuration};
use super::upstream_url::UpstreamUrl;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub metrics: MetricsConfig,
    pub data_dir: PathBuf,
    pub secrets: SecretsConfig,
    pub gateways: GatewaysConfig,
    pub audit: AuditConfig,
    pub catalogs: CatalogsConfig,
    pub events: EventsConfig,
    pub replicas: ReplicasConfig,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            metrics: MetricsConfig::default(),
            data_dir: PathBuf::from("./data"),
            secrets: SecretsConfig::default(),
            gateways: GatewaysConfig::default(),
            audit: AuditConfig::default(),
            catalogs: CatalogsConfig::default(),
            events: EventsConfig::default(),
            replicas: ReplicasConfig::default(),
        }
    }
}

/// More than one front door on one engine (README: More than one host, Replicas).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicasConfig {
    /// This replica's name (`[a-z0-9-]`, up to 32): its audit log is `audit/<id>/audit.log`
    /// (a hash chain has one writer). Required with `peers`.
    pub id: Option<String>,
    /// The other replicas' metrics listeners, `host:port`; a name is resolved to every
    /// address at each ask (a compose service of several containers), this replica's own
    /// answer skipped. Asked before an idle stop.
    pub peers: Vec<String>,
    /// How long a peer may take to answer; a peer that does not answer in time keeps the
    /// gateway for this sweep.
    pub peer_timeout: HumanDuration,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        Self {
            id: None,
            peers: Vec::new(),
            peer_timeout: HumanDuration(std::time::Duration::from_secs(2)),
        }
    }
}

/// The public listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The URL clients use; the base of the RFC 9728 metadata URL. Derived from `listen` when unset.
    pub public_url: Option<String>,
    /// Absent means plain HTTP (only sensible behind another TLS terminator or in tests).
    pub tls: Option<TlsConfig>,
    /// Browser origins allowed to call; `*` allows any. Requests without `Origin` are not affected.
    pub allowed_origins: Vec<String>,
    /// Interval of `: keep-alive` comments on quiet event streams; `0s` turns them off.
    pub sse_keepalive: HumanDuration,
    /// How long SIGTERM lets in-flight requests finish before streams are cut.
    pub shutdown_grace: HumanDuration,
    /// The same for SIGINT (an operator at a terminal wants it quicker).
    pub shutdown_grace_interrupt: HumanDuration,
    /// A TLS handshake not finished this long after accept is dropped (slowloris guard).
    pub tls_handshake_timeout: HumanDuration,
    /// A connection without a complete request head this long after accept (TLS handshake
    /// included) is closed: silent TCP, silent TLS, an h2 connection that opens no stream.
    pub first_request_timeout: HumanDuration,
    /// A connection with no request in flight for this long after its last one is closed (h1
    /// keep-alive between requests, h2 without open streams; open streams are never timed).
    pub idle_timeout: HumanDuration,
    /// Open client connections at most. At the cap a new connection evicts the oldest one
    /// that never authenticated and has no request in flight, else it is closed at once.
    pub max_connections: usize,
    /// Of `max_connections`, the last slots: a connection accepted above
    /// `max_connections - reserved_connections` gets `reserve_first_request_timeout`.
    pub reserved_connections: usize,
    /// The first-request deadline of a connection accepted into the reserve.
    pub reserve_first_request_timeout: HumanDuration,
    /// Open connections from one client address at most; 0 = no limit (clients behind one
    /// NAT or proxy share an address).
    pub max_connections_per_address: usize,
    /// Threads serving client connections, each with its own event loop, listening socket
    /// (`SO_REUSEPORT`) and gateway connections: `auto` (one per CPU), a number, or `0` to
    /// serve on the process's shared runtime instead.
    pub workers: Workers,
}

/// `server.workers`: `auto` or a number of threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Workers {
    /// One per CPU.
    #[default]
    Auto,
    Count(usize),
}

/// The most serving threads a config may ask for (far above any useful number).
pub const MAX_WORKERS: usize = 1024;

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(usize),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) if n <= MAX_WORKERS => Ok(Self::Count(n)),
            Raw::Count(n) => Err(serde::de::Error::custom(format!(
                "workers: {n} is more than {MAX_WORKERS}"
            ))),
            Raw::Word(w) if w == "auto" => Ok(Self::Auto),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "workers: `{w}` is neither `auto` nor a number"
            ))),
        }
    }
}

impl Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::Count(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            public_url: None,
            tls: None,
            allowed_origins: Vec::new(),
            sse_keepalive: HumanDuration::secs(30),
            shutdown_grace: HumanDuration::secs(30),
            shutdown_grace_interrupt: HumanDuration::secs(3),
            tls_handshake_timeout: HumanDuration::secs(10),
            first_request_timeout: HumanDuration::secs(10),
            idle_timeout: HumanDuration::secs(60),
            max_connections: 8192,
            reserved_connections: 1024,
            reserve_first_request_timeout: HumanDuration::secs(2),
            max_connections_per_address: 0,
            workers: Workers::Auto,
        }
    }
}

/// Certificate and key (PEM), watched for changes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// How often the files are checked for a renewal.
    #[serde(default = "default_tls_reload")]
    pub reload_interval: HumanDuration,
}

fn default_tls_reload() -> HumanDuration {
    HumanDuration::secs(10)
}

/// JWT verification and claim mapping.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Required `iss`; unset accepts any issuer (a warning is logged).
    pub issuer: Option<String>,
    /// Required `aud` (one of); unset accepts any audience (a warning is logged).
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: HumanDuration,
    /// Name of the environment variable holding the HS256 secret.
    pub hs256_secret_env: Option<String>,
    /// File holding the HS256 secret (for Docker/Kubernetes secrets mounts).
    pub hs256_secret_file: Option<PathBuf>,
    /// PEM public keys (RSA → RS256, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA).
    pub public_key_files: Vec<PathBuf>,
    /// JWKS endpoint (https), refreshed in the background.
    pub jwks_url: Option<String>,
    /// Accept a plain `http://` `jwks_url` (tests and development only: keys fetched over
    /// plain HTTP can be swapped in transit).
    pub jwks_allow_http: bool,
    /// JWKS document on disk, read again at every refresh.
    pub jwks_file: Option<PathBuf>,
    /// How often `jwks_url` is fetched and `jwks_file` read again; a key that left the set
    /// stops verifying (cached tokens included) at the next refresh.
    pub jwks_refresh: HumanDuration,
    pub user_claim: String,
    pub roles_claim: String,
    pub teams_claim: String,
    pub admin_role: String,
    /// Listed in the RFC 9728 metadata so MCP clients know where to get tokens.
    pub authorization_servers: Vec<String>,
    /// Verified tokens kept (by hash, until they expire) to skip signature checks.
    pub cache_size: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: Vec::new(),
            leeway: HumanDuration::secs(30),
            hs256_secret_env: None,
            hs256_secret_file: None,
            public_key_files: Vec::new(),
            jwks_url: None,
            jwks_allow_http: false,
            jwks_file: None,
            jwks_refresh: HumanDuration::secs(600),
            user_claim: "sub".into(),
            roles_claim: "roles".into(),
            teams_claim: "groups".into(),
            admin_role: "admin".into(),
            authorization_servers: Vec::new(),
            cache_size: 10_000,
        }
    }
}

/// The metrics and health listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Loopback by default: in a container that joins every user network, any other address
    /// would be reachable from every user's gateway.
    pub listen: SocketAddr,
    /// Name of the environment variable holding the bearer token `/metrics` requires.
    pub bearer_token_env: Option<String>,
    /// File holding that token (for Docker/Kubernetes secrets mounts).
    pub bearer_token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            bearer_token_env: None,
            bearer_token_file: None,
        }
    }
}

/// Where the master key for sealed secrets comes from.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    pub master_key_env: Option<String>,
    pub master_key_file: Option<PathBuf>,
}

/// When a gateway with a stale catalog is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicy {
    Idle,
    Immediate,
}

/// Which engine runs the per-user gateways (`gateways.runtime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A container per gateway on one Docker engine.
    #[default]
    Docker,
    /// A service per gateway on Docker Swarm, each on its own overlay network (README, "More
    /// than one host").
    Swarm,
}

/// Per-user gateway lifecycle.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaysConfig {
    /// `docker` (default) or `swarm`; `gateways.docker` configures both.
    pub runtime: RuntimeKind,
    pub idle_timeout: HumanDuration,
    pub spawn_timeout: HumanDuration,
    pub max_running: usize,
    pub max_concurrent_starts: usize,
    pub restart_on_catalog_change: RestartPolicy,
    /// Send every user to this one gateway instead of starting per-user containers
    /// (a shared gateway, or development without Docker).
    pub upstream_url: Option<UpstreamUrl>,
    /// Token sent to `upstream_url` (name of an environment variable holding it).
    pub upstream_token_env: Option<String>,
    /// TCP connect timeout to a gateway.
    pub connect_timeout: HumanDuration,
    /// Longest wait for a gateway's response headers (bodies may stream for hours).
    pub response_timeout: HumanDuration,
    /// At shutdown, remove every gateway, server container, network and derived image of this
    /// instance (as `gateways stop-all` does) instead of leaving them for the next front door
    /// to adopt.
    pub stop_on_shutdown: bool,
    pub docker: DockerConfig,
}

impl Default for GatewaysConfig {
    fn default() -> Self {
        Self {
            runtime: RuntimeKind::Docker,
            idle_timeout: HumanDuration::secs(900),
            spawn_timeout: HumanDuration::secs(60),
            max_running: 100,
            max_concurrent_starts: 8,
            restart_on_catalog_change: RestartPolicy::Idle,
            upstream_url: None,
            upstream_token_env: None,
            connect_timeout: HumanDuration::secs(5),
            response_timeout: HumanDuration::secs(300),
            stop_on_shutdown: false,
            docker: DockerConfig::default(),
        }
    }
}

/// How the front door reaches a gateway container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    /// The container's address on its bridge network (Linux host, or joined when in a container).
    Bridge,
    /// The gateway port published on 127.0.0.1 (Docker Desktop).
    Loopback,
}

/// Stands for the gateway's home directory in `catalog_path` and `secrets_path`.
pub const HOME_TEMPLATE: &str = "{home}";

/// Which Docker API a gateway gets for the MCP servers it runs (docker/mcp-gateway runs each
/// server with the `docker` CLI and exits at start without an API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayEngine {
    /// None: for gateways that run no containers (the test gateway, `--static` servers).
    None,
    /// An endpoint of its own, served by the front door on a unix socket only that gateway
    /// sees, which checks and rewrites every call (`crate::dockerapi`). The default.
    Policed,
    /// The front door's own engine socket, mounted into every gateway: every tenant, and every
    /// MCP server that escapes into its gateway, is root on the host. Needs
    /// `allow_host_engine: true`; logged loudly at start.
    Host,
}

/// Limits and admin policy for the MCP server containers a gateway creates through its
/// policed Docker API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerContainersConfig {
    /// Memory cap of each server container (a larger or missing request is lowered to it).
    pub memory: HumanBytes,
    /// CPU cap of each server container.
    pub cpus: f64,
    /// Process cap of each server container.
    pub pids: i64,
    /// Capabilities a server container may add back (all are dropped); empty: none.
    pub cap_add: Vec<String>,
    /// Bind sources (host paths or volume names) a server container may mount; empty: none.
    pub binds: Vec<String>,
}

impl Default for ServerContainersConfig {
    fn default() -> Self {
        Self {
            memory: HumanBytes(1 << 30),
            cpus: 1.0,
            pids: 256,
            cap_add: Vec::new(),
            binds: Vec::new(),
        }
    }
}

/// The Docker runtime: image, arguments, isolation and limits of each gateway container.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// Engine address (`unix:///var/run/docker.sock` when unset, or `DOCKER_HOST`).
    pub host: Option<EngineHost>,
    /// Separates deployments that share one engine; part of names and labels.
    pub instance: String,
    pub image: String,
    /// Replaces the image's entrypoint when set.
    pub command: Vec<String>,
    /// Templates: `{port}`, `{catalog}`, `{servers}`, `{secrets}`.
    pub args: Vec<String>,
    pub port: u16,
    pub health_path: String,
    /// Pool carved into one small subnet per user network.
    pub subnet_pool: Subnet,
    /// Prefix length of each user's subnet (28 = 16 addresses).
    pub subnet_prefix: u8,
    pub reach: Reach,
    /// `uid:gid` the gateway runs as.
    pub user: Option<String>,
    pub memory: HumanBytes,
    pub cpus: f64,
    pub pids: i64,
    pub read_only: bool,
    pub extra_env: BTreeMap<String, String>,
    /// Extra bind mounts, `source:target[:ro]`.
    pub mounts: Vec<String>,
    /// The Docker API each gateway gets: `policed` (the default), `none`, or `host` (only
    /// with [`Self::allow_host_engine`]); see [`GatewayEngine`].
    pub engine_for_gateways: Option<GatewayEngine>,
    /// Lets `engine_for_gateways: host` and `mounts` hand gateways the engine's socket.
    pub allow_host_engine: bool,
    /// Directory of the policed endpoints' sockets, one subdirectory per gateway (mounted into
    /// it); `{data_dir}/gateway-api` when unset.
    pub api_socket_dir: Option<PathBuf>,
    /// The same directory as the engine's host sees it, when the front door runs in a
    /// container that mounts it elsewhere; `api_socket_dir` when unset.
    pub api_socket_host_dir: Option<PathBuf>,
    /// What the policed API lets a gateway's server containers have.
    pub servers: ServerContainersConfig,
    /// Where the merged catalog is put inside the container (`{catalog}`); docker/mcp-gateway
    /// reads local catalogs only under `$HOME/.docker/mcp/catalogs/`. `{home}` is the
    /// gateway's `HOME`: `extra_env.HOME` when set, else `/root` for a root gateway and
    /// `/home/gateway` for any other user (`HOME` is set to it).
    pub catalog_path: String,
    /// Where the rendered secrets file is put inside the container (`{secrets}`; `{home}` as
    /// above).
    pub secrets_path: String,
    /// Limit of each Docker API call (a hung engine never holds a request longer).
    pub api_timeout: HumanDuration,
    /// Limit of one image pull.
    pub pull_timeout: HumanDuration,
    /// The container the front door runs in, joined to each gateway network: `auto` (detect
    /// through `/.dockerenv` and the hostname), `none`, or a container name or id.
    pub frontdoor_container: OwnContainer,
    /// Create user networks as internal (no egress). Needed when the front door runs in a
    /// container on Docker < 28: the first network it joins would otherwise take over its
    /// external connectivity, re-mapping its published port and cutting connections in flight.
    pub internal_networks: bool,
}

impl DockerConfig {
    /// [`Self::engine_for_gateways`] with its default applied.
    pub fn gateway_engine(&self) -> GatewayEngine {
        self.engine_for_gateways.unwrap_or(GatewayEngine::Policed)
    }
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            host: None,
            instance: "default".into(),
            image: "docker/mcp-gateway:latest".into(),
            command: Vec::new(),
            args: [
                "--transport=streaming",
                "--port={port}",
                "--catalog={catalog}",
                "--servers={servers}",
                "--secrets={secrets}",
                // Inside a container docker/mcp-gateway logs verbosely by default, including
                // the first characters of every secret.
                "--verbose=false",
            ]
            .map(String::from)
            .to_vec(),
            port: 8811,
            health_path: "/health".into(),
            subnet_pool: Subnet::new(std::net::Ipv4Addr::new(10, 213, 0, 0), 16),
            subnet_prefix: 28,
            reach: Reach::Bridge,
            user: None,
            memory: HumanBytes(512 << 20),
            cpus: 1.0,
            pids: 256,
            read_only: true,
            extra_env: BTreeMap::new(),
            mounts: Vec::new(),
            engine_for_gateways: None,
            allow_host_engine: false,
            api_socket_dir: None,
            api_socket_host_dir: None,
            servers: ServerContainersConfig::default(),
            catalog_path: "{home}/.docker/mcp/catalogs/frontdoor.yaml".into(),
            secrets_path: "{home}/.docker/mcp/secrets.env".into(),
            api_timeout: HumanDuration::secs(10),
            pull_timeout: HumanDuration::secs(600),
            frontdoor_container: OwnContainer::Auto,
            internal_networks: false,
        }
    }
}

/// The audit log: size-based rotation and a per-user limit on audited API writes, so no
/// tenant can grow the log without bound or push other users' history out of it quickly.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// `audit.log` is rotated before a line would take it past this size.
    pub max_file_size: HumanBytes,
    /// Rotated files kept (`audit.log.1` newest … `audit.log.<max_files>` oldest).
    pub max_files: usize,
    /// Audited API actions one user may make per minute (the token bucket's refill rate).
    pub user_rate: u32,
    /// Audited actions a user may make in a burst before `user_rate` applies (the bucket size).
    pub user_burst: u32,
    /// Admins are not rate limited (their actions are still audited).
    pub admin_exempt: bool,
    /// Lines older than this are deleted (at start, then hourly); `0` keeps them until the
    /// size bound above pushes them out.
    pub max_age: HumanDuration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            max_file_size: HumanBytes(10 << 20),
            max_files: 10,
            user_rate: 30,
            user_burst: 60,
            admin_exempt: true,
            max_age: HumanDuration(std::time::Duration::ZERO),
        }
    }
}

/// The live event stream (`GET /api/v1/events`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Events kept for `Last-Event-ID` resume (and the most a slow client may fall behind
    /// before it gets `event: reset`).
    pub history: usize,
    /// Event streams one user (admins too) may hold open at once; more get 429.
    pub max_streams_per_user: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            history: 1024,
            max_streams_per_user: 4,
        }
    }
}

/// Who may declare what in catalogs (DESIGN.md §3). Admins' base and team catalogs may use
/// every field except the front door's own objects; users' layers pass only `user_policy`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogsConfig {
    pub user_policy: UserPolicyConfig,
    /// Host paths or volume names no catalog may mount, on top of the built-in ones
    /// (`mcp-fd-*`, `docker.sock`, `/var/lib/docker`, `data_dir`, `frontdoor-data`).
    pub protected_sources: Vec<String>,
}

/// What users may put in their custom catalog and overrides. The default: disable and keep
/// offered servers and set the env values those servers take from their config; no servers
/// of their own.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserPolicyConfig {
    /// Users may add servers of their own (still never volumes, user, command, extra hosts
    /// or allowHosts).
    pub custom_servers: bool,
    /// Images those servers may run: patterns, `*` within one `/` segment, `**` across.
    pub images: Vec<String>,
    /// Those images must be pinned by digest (`@sha256:`).
    pub require_digest: bool,
    /// URLs a remote server of a user's own may use (same patterns); empty: none.
    pub remote_urls: Vec<String>,
}
