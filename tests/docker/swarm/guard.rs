//! A one-node swarm for the Swarm tests: made (`docker swarm init`) by the first test that
//! needs it when the engine is in none, left (`docker swarm leave --force`) after the last
//! such test in this process (with the `docker_gwbridge` that init made), and never left when
//! it was there before. Each test's [`SwarmEngine`] removes its instance's services before the
//! plain clean-up of [`Engine`] (a network a service still names cannot be removed), even when
//! the test panics.

use crate::engine::{docker, engine, instance_label, lines, Engine};
use std::ops::Deref;
use std::time::{Duration, Instant};

/// Tests holding the swarm, and whether this process made it.
struct Holders {
    count: usize,
    made: bool,
    /// `docker_gwbridge` was made by our `swarm init` (leaving does not remove it).
    made_gwbridge: bool,
}

static HOLDERS: parking_lot::Mutex<Holders> = parking_lot::Mutex::new(Holders {
    count: 0,
    made: false,
    made_gwbridge: false,
});

/// One test's hold on the swarm.
pub struct SwarmLease(());

impl SwarmLease {
    /// Joins (or makes) the swarm; `Err` says why not.
    fn take() -> Result<Self, String> {
        let mut h = HOLDERS.lock();
        if h.count == 0 {
            let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).1;
            match state.as_str() {
                "active" => {}
                "inactive" => {
                    let had_gwbridge = docker(&["network", "inspect", "docker_gwbridge"]).0;
                    let out = std::process::Command::new("docker")
                        .args(["swarm", "init", "--advertise-addr", "127.0.0.1"])
                        .output()
                        .map_err(|e| e.to_string())?;
                    if !out.status.success() {
                        return Err(format!(
                            "docker swarm init failed: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        ));
                    }
                    h.made = true;
                    h.made_gwbridge = !had_gwbridge;
                }
                other => return Err(format!("the engine's swarm state is `{other}`")),
            }
        }
        h.count += 1;
        Ok(Self(()))
    }
}

impl Drop for SwarmLease {
    fn drop(&mut self) {
        let mut h = HOLDERS.lock();
        h.count -= 1;
        if h.count == 0 && h.made {
            docker(&["swarm", "leave", "--force"]);
            if h.made_gwbridge {
                docker(&["network", "rm", "docker_gwbridge"]);
            }
            h.made = false;
        }
    }
}

/// An [`Engine`] on a swarm. Field order is drop order: services go in `Drop::drop`, then
/// the engine's containers, networks and images, then the lease.
pub struct SwarmEngine {
    pub eng: Engine,
    _lease: SwarmLease,
}

impl Deref for SwarmEngine {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.eng
    }
}

/// The engine on a swarm for a test named `tag`, or `None` (after printing why) when it
/// cannot run here; under `CI=true` a swarm that cannot be made fails the test.
pub fn swarm_engine(tag: &str) -> Option<SwarmEngine> {
    let eng = engine(tag)?;
    match SwarmLease::take() {
        Ok(lease) => Some(SwarmEngine { eng, _lease: lease }),
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {why}");
            }
            eprintln!("SKIPPED swarm test `{tag}`: {why}");
            None
        }
    }
}

impl SwarmEngine {
    fn label(&self) -> String {
        instance_label(&self.instance)
    }

    /// Service names of this instance.
    pub fn services(&self) -> Vec<String> {
        let label = self.label();
        let mut s =
            lines(docker(&["service", "ls", "--filter", &label, "--format", "{{.Name}}"]).1);
        s.sort();
        s
    }

    /// Ids of the containers of a service's tasks on this node (any state).
    pub fn task_containers(&self, service: &str) -> Vec<String> {
        let filter = format!("label=com.docker.swarm.service.name={service}");
        lines(docker(&["ps", "-aq", "--no-trunc", "--filter", &filter]).1)
    }

    /// The id of the running task container of a user's gateway.
    pub fn running_task(&self, slug: &str) -> String {
        let filter = format!("label=com.docker.swarm.service.name={}", self.name(slug));
        let ids = lines(docker(&["ps", "-q", "--no-trunc", "--filter", &filter]).1);
        assert_eq!(ids.len(), 1, "one running task for {slug}: {ids:?}");
        ids[0].clone()
    }

    /// `docker service inspect --format <format> <name>`.
    /// Asserts that `slug`'s gateway service is pinned to this node (a gateway with the
    /// policed Docker API, whose socket is a file of this host) and returns its running task's
    /// mounts as `type:source->destination:rw ...`.
    pub fn pinned_with_policed_api(&self, slug: &str) -> String {
        let node = docker(&["info", "--format", "{{.Swarm.NodeID}}"]).1;
        assert_eq!(
            self.inspect_service(
                &self.name(slug),
                "{{json .Spec.TaskTemplate.Placement.Constraints}}"
            ),
            format!("[\"node.id=={node}\"]"),
            "a gateway with the policed API stays on the front door's node"
        );
        let task = self.running_task(slug);
        self.inspect(
            &task,
            "{{range .Mounts}}{{.Type}}:{{.Source}}->{{.Destination}}:{{.RW}} {{end}}",
        )
    }

    pub fn inspect_service(&self, name: &str, format: &str) -> String {
        docker(&["service", "inspect", "--format", format, name]).1
    }

    /// A container's address on `network` as the network lists it (without the prefix).
    pub fn address_on(&self, network: &str, container: &str) -> String {
        let f = format!("{{{{(index .Containers \"{container}\").IPv4Address}}}}");
        let a = self.inspect_network(network, &f);
        a.split('/').next().unwrap_or_default().to_string()
    }
}

impl Drop for SwarmEngine {
    fn drop(&mut self) {
        let label = self.label();
        let ids = lines(docker(&["service", "ls", "-q", "--filter", &label]).1);
        if !ids.is_empty() {
            let mut args = vec!["service", "rm"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
        // Their task containers go with them; what else of the instance runs (a front door
        // in a container, joined to the overlays) goes now, or the overlays stay in use.
        let start = Instant::now();
        let left = lines(docker(&["ps", "-aq", "--filter", &label]).1);
        if !left.is_empty() {
            let mut args = vec!["rm", "-fv"];
            args.extend(left.iter().map(String::as_str));
            docker(&args);
        }
        // The manager lets go of an overlay a moment after its last task is gone.
        while !self.networks().is_empty() && start.elapsed() < Duration::from_secs(25) {
            for n in self.networks() {
                docker(&["network", "rm", &n]);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
