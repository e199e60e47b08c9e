//! The container engine behind the gateway lifecycle, as a trait: networks, containers, files
//! put into a container before it starts, images, events, logs and stats.
//!
//! [`docker::DockerRuntime`] (bollard) is the first implementation; [`swarm::SwarmRuntime`]
//! runs gateways as Swarm services and leaves everything else to it. These two are the only
//! code that talks to bollard; the lifecycle in `crate::gateways` only speaks these types. Nothing here knows about users,
//! catalogs or HTTP requests.

pub mod docker;
mod error;
#[cfg(test)]
pub mod fake;
mod metrics;
pub mod swarm;

pub use error::{RuntimeError, RuntimeErrorKind};
pub use metrics::RuntimeMetrics;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

/// Labels by which managed objects are found again (`key=value` pairs, all must match).
pub type LabelFilter = Vec<(String, String)>;

/// A private network for one gateway.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    pub name: String,
    /// The explicit subnet, e.g. `10.213.0.16/28`.
    pub subnet: String,
    pub labels: HashMap<String, String>,
    /// No route out of the network (see `gateways.docker.internal_networks`).
    pub internal: bool,
}

/// A network as the engine reports it.
#[derive(Debug, Clone)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    /// IPv4 subnets in CIDR form.
    pub subnets: Vec<String>,
    pub labels: HashMap<String, String>,
}

/// Resource limits of a container.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// CPUs (1.5 = one and a half cores).
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// What to run; the engine applies the hardening flags it can express.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Replaces the image entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    pub args: Vec<String>,
    /// `KEY=value`.
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    /// `uid[:gid]` or a user name; the image's user when unset.
    pub user: Option<String>,
    /// Supplementary groups (numeric ids), e.g. the engine socket's group.
    pub group_add: Vec<String>,
    /// The only network the container is attached to.
    pub network: String,
    /// The port the gateway listens on inside the container.
    pub port: u16,
    /// Publish `port` on 127.0.0.1 (a random host port); nothing is published otherwise.
    pub publish_loopback: bool,
    pub limits: Limits,
    pub read_only_root: bool,
    /// Scratch tmpfs mounts (e.g. `/tmp`), 64 MiB each.
    pub tmpfs: Vec<String>,
    /// Memory-backed directories (tmpfs mounts owned by the container's user): what is written
    /// there never reaches the host's disk and goes with the container.
    pub memory_dirs: Vec<MemoryDir>,
    /// Named volumes, created on first use.
    pub volumes: Vec<NamedVolume>,
    /// Bind mounts `source:target[:ro]`.
    pub binds: Vec<String>,
    /// Must run on the engine's own host (the front door's node on Swarm): it holds a file
    /// only that host has, such as the policed Docker API's socket.
    pub this_host: bool,
    /// Drop every capability and forbid gaining privileges.
    pub harden: bool,
}

/// A tmpfs of one container, owned by the user the container runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryDir {
    pub path: String,
    pub uid: u64,
    pub gid: u64,
    /// Permission bits of the directory itself.
    pub mode: u32,
    pub size_bytes: u64,
}

/// A named volume mounted into a container; created (with `labels`) on first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedVolume {
    pub name: String,
    pub target: String,
    pub read_only: bool,
    pub labels: HashMap<String, String>,
}

/// A file put into a container.
#[derive(Clone)]
pub struct FileSpec {
    /// Path relative to the directory it is put into.
    pub path: String,
    pub contents: zeroize::Zeroizing<Vec<u8>>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl std::fmt::Debug for FileSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Contents may be secrets.
        f.debug_struct("FileSpec")
            .field("path", &self.path)
            .field("len", &self.contents.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// Coarse container state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    /// Exited, dead, or being removed.
    Exited,
    /// Paused, restarting, or anything else.
    Other,
}

/// A container as the engine reports it.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub state: ContainerState,
    pub labels: HashMap<String, String>,
    /// IPv4 address per attached network name.
    pub addresses: HashMap<String, Ipv4Addr>,
    /// Host port bound on 127.0.0.1 for the container port, when published.
    pub loopback_port: Option<u16>,
    /// `KEY=value` environment (inspect only; empty in listings).
    pub env: Vec<String>,
    pub started_at: Option<SystemTime>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
}

/// What the engine reports about the containers it runs (read back for tests and status).
#[derive(Debug, Clone, Default)]
pub struct ContainerSecurity {
    pub user: Option<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub read_only_root: bool,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids: Option<i64>,
}

/// Something happened to a managed container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEvent {
    pub container_id: String,
    pub kind: EventKind,
    pub labels: HashMap<String, String>,
}

/// The events the lifecycle reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Start,
    Die,
    Oom,
    Destroy,
}

/// Facts about a local image.
#[derive(Debug, Clone, Default)]
pub struct ImageInfo {
    /// The engine's id of the image (`sha256:...`): content-addressed, so a reference by id
    /// cannot be moved to other content the way a tag can.
    pub id: String,
    pub labels: HashMap<String, String>,
    /// The image's configured user (`USER`), if any.
    pub user: Option<String>,
    /// `ENTRYPOINT` and `CMD`, which a wrapped entrypoint must run itself.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// A container engine.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// A short name for logs (`docker`).
    fn name(&self) -> &'static str;

    /// Cheap reachability check.
    async fn ping(&self) -> Result<(), RuntimeError>;

    /// The engine's version (`28.2.2`), when the engine tells it.
    async fn version(&self) -> Result<Option<String>, RuntimeError> {
        Ok(None)
    }

    /// The local image, or `None` when it is not present.
    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError>;
    /// Pulls an image, logging progress; bounded by the runtime's pull timeout.
    async fn pull(&self, image: &str) -> Result<(), RuntimeError>;
    /// Makes an image of a (created, not necessarily started) container's file system,
    /// tagged `repo:tag`, keeping the container's config; returns the new image's id.
    async fn commit(&self, container: &str, repo: &str, tag: &str) -> Result<String, RuntimeError>;
    /// Ids of the images whose labels match `labels`.
    async fn list_images(&self, labels: &LabelFilter) -> Result<Vec<String>, RuntimeError>;
    /// Removes an image by id or reference (its tags too); a missing one is not an error, one
    /// in use is [`RuntimeErrorKind::Conflict`].
    async fn remove_image(&self, image: &str) -> Result<(), RuntimeError>;

    /// Creates a network with the spec's subnet (a bridge; an attachable overlay on Swarm);
    /// returns its id.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, RuntimeError>;
    /// Removes a network by name (every network of that name) or id; a missing one is not
    /// an error.
    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError>;
    /// Networks whose labels match `labels` (every network when empty).
    async fn list_networks(&self, labels: &LabelFilter) -> Result<Vec<NetworkInfo>, RuntimeError>;
    /// Attaches a container (e.g. the front door's own) to a network; already attached is fine.
    async fn connect_network(&self, network: &str, container: &str) -> Result<(), RuntimeError>;
    /// Detaches it; not attached is fine.
    async fn disconnect_network(&self, network: &str, container: &str) -> Result<(), RuntimeError>;

    /// Creates (does not start) a container; returns its id. A name already taken is
    /// [`RuntimeErrorKind::Conflict`].
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;
    /// Puts files into a created container under `dir` (a named volume's mount point, or the
    /// root file system when writable); file paths are relative to `dir`, parent directories
    /// are created.
    async fn put_files(
        &self,
        container: &str,
        dir: &str,
        files: &[FileSpec],
    ) -> Result<(), RuntimeError>;
    async fn start_container(&self, container: &str) -> Result<(), RuntimeError>;
    /// Stops (SIGTERM, then SIGKILL after `grace`) and removes a container with its anonymous
    /// volumes; a missing container is not an error.
    async fn remove_container(&self, container: &str, grace: Duration) -> Result<(), RuntimeError>;
    /// The container, or `None` when there is none by that name or id.
    async fn inspect_container(
        &self,
        container: &str,
    ) -> Result<Option<ContainerInfo>, RuntimeError>;
    /// How the container was hardened and limited, as the engine reports it.
    async fn inspect_security(&self, container: &str) -> Result<ContainerSecurity, RuntimeError>;
    /// Containers in any state whose labels match `labels`.
    async fn list_containers(
        &self,
        labels: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// Containers in any state attached to `network` (name or id) whose labels match `labels`.
    async fn list_containers_on(
        &self,
        network: &str,
        labels: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// Start/die/oom/destroy events of containers whose labels match `labels`. The stream
    /// ends or errs when the engine goes away; callers reconnect.
    async fn events(
        &self,
        labels: &LabelFilter,
    ) -> Result<BoxStream<'static, Result<RuntimeEvent, RuntimeError>>, RuntimeError>;
    /// The last `tail` lines of stdout and stderr, each prefixed with its RFC 3339 time.
    async fn logs(&self, container: &str, tail: usize) -> Result<String, RuntimeError>;
    /// Current memory use in bytes, if the engine reports it.
    async fn memory_usage(&self, container: &str) -> Result<Option<u64>, RuntimeError>;

    /// The container this process runs in on this engine, if any (then it must join each
    /// gateway's network to reach it).
    async fn own_container(&self) -> Option<String>;
}
