//! The engine under test: skip-or-fail when it is missing, a per-test instance name, the
//! clean-up guard, and `docker` CLI helpers for inspecting and killing (tests only).

use crate::support::Frontdoor;
use std::process::Command;
use std::time::{Duration, Instant};

/// The image the tests run.
pub fn image() -> String {
    std::env::var("MCP_TEST_GATEWAY_IMAGE").unwrap_or_else(|_| "mcp-test-gateway:dev".into())
}

/// One test's view of the engine; removes every object of its instance when dropped.
pub struct Engine {
    pub instance: String,
    pub image: String,
}

/// The engine for a test named `tag`, or `None` (after printing why) when the test cannot run
/// here. Under `CI=true` a missing engine or image fails the test.
pub fn engine(tag: &str) -> Option<Engine> {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = |why: String| {
        if ci {
            panic!("CI=true but {why}");
        }
        eprintln!("SKIPPED docker test `{tag}`: {why}");
        None
    };
    match Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return skip(format!(
                "the Docker engine is not reachable: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return skip(format!("the docker CLI cannot run: {e}")),
    }
    let image = image();
    if !docker(&["image", "inspect", "--format", "{{.Id}}", &image]).0 {
        return skip(format!(
            "image {image} is missing; build it with test-gateway/build-image.sh"
        ));
    }
    // [a-z0-9-], at most 20 characters, unique per run.
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .take(10)
        .collect();
    let instance = format!("t{tag}-{:08x}", rand::random::<u32>());
    Some(Engine { instance, image })
}

/// Runs `docker args`; (success, trimmed stdout).
pub fn docker(args: &[&str]) -> (bool, String) {
    match Command::new("docker").args(args).output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
        ),
        Err(_) => (false, String::new()),
    }
}

/// The non-empty, trimmed lines of a command's output.
pub fn lines(s: String) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

impl Engine {
    fn label(&self) -> String {
        instance_label(&self.instance)
    }

    /// The `gateways.docker` line for this instance, plus `extra` keys (`key: value, ...`).
    /// The test gateway runs no containers, so it gets no Docker API unless `extra` says.
    pub fn docker_line(&self, extra: &str) -> String {
        let mut extra = if extra.is_empty() {
            String::new()
        } else {
            format!(", {extra}")
        };
        if !extra.contains("engine_for_gateways") {
            extra.push_str(", engine_for_gateways: none");
        }
        format!(
            "docker: {{ instance: {}, image: \"{}\", memory: 64m, cpus: 0.5, pids: 64{extra} }}",
            self.instance, self.image
        )
    }

    /// A plain-HTTP front door with the container lifecycle for this instance.
    pub async fn frontdoor(&self, gateways: &[&str], docker_extra: &str) -> Frontdoor {
        self.builder(gateways, docker_extra).start().await
    }

    /// The same with a data dir that outlives the front door (restarts).
    pub async fn frontdoor_in(
        &self,
        data: &std::path::Path,
        gateways: &[&str],
        docker_extra: &str,
    ) -> Frontdoor {
        self.builder(gateways, docker_extra)
            .data_dir(data.to_path_buf())
            .start()
            .await
    }

    /// The builder behind [`Engine::frontdoor`], to add to.
    pub fn builder(
        &self,
        gateways: &[&str],
        docker_extra: &str,
    ) -> crate::support::frontdoor::FrontdoorBuilder {
        let mut b = Frontdoor::builder()
            .plain()
            .lifecycle()
            .custom_servers()
            .gateways("spawn_timeout: 30s")
            .gateways(&self.docker_line(docker_extra));
        for g in gateways {
            b = b.gateways(g);
        }
        b
    }

    /// Container names of this instance (`all` includes stopped ones).
    pub fn containers(&self, all: bool) -> Vec<String> {
        let label = self.label();
        let mut args = vec!["ps", "--filter", &label, "--format", "{{.Names}}"];
        if all {
            args.push("-a");
        }
        lines(docker(&args).1)
    }

    /// Network names of this instance.
    pub fn networks(&self) -> Vec<String> {
        let label = self.label();
        lines(docker(&["network", "ls", "--filter", &label, "--format", "{{.Name}}"]).1)
    }

    /// `docker inspect --format <format> <name>`.
    /// This instance's volumes (none are made; tests plant some), found by the instance label
    /// as every other managed object.
    pub fn volumes(&self) -> Vec<String> {
        lines(docker(&["volume", "ls", "-q", "--filter", &self.label()]).1)
    }

    /// This instance's images (the gateway image with the init, `mcp-fd-<instance>-gateway`),
    /// by id.
    pub fn images(&self) -> Vec<String> {
        lines(docker(&["image", "ls", "-q", "--no-trunc", "--filter", &self.label()]).1)
    }

    pub fn inspect(&self, name: &str, format: &str) -> String {
        docker(&["inspect", "--format", format, name]).1
    }

    /// `docker network inspect --format <format> <name>`.
    pub fn inspect_network(&self, name: &str, format: &str) -> String {
        docker(&["network", "inspect", "--format", format, name]).1
    }

    /// The container name of a user's gateway.
    pub fn name(&self, slug: &str) -> String {
        format!("mcp-fd-{}-{slug}", self.instance)
    }

    /// The container's IP on its own network.
    pub fn ip(&self, slug: &str) -> String {
        let name = self.name(slug);
        self.inspect(
            &name,
            &format!("{{{{(index .NetworkSettings.Networks \"{name}\").IPAddress}}}}"),
        )
    }

    /// Waits until `f` holds (polling every 50 ms) or panics after `limit`.
    pub async fn until(&self, what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Engine {
    /// Containers first: a network, volume or image in use cannot be removed.
    fn drop(&mut self) {
        let containers = lines(docker(&["ps", "-aq", "--filter", &self.label()]).1);
        for (remove, ids) in [
            (&["rm", "-fv"][..], containers),
            (&["network", "rm"][..], self.networks()),
            (&["volume", "rm"][..], self.volumes()),
            (&["image", "rm", "-f"][..], self.images()),
        ] {
            if !ids.is_empty() {
                let mut args = remove.to_vec();
                args.extend(ids.iter().map(String::as_str));
                docker(&args);
            }
        }
    }
}

/// The `docker ... --filter` of everything an instance made.
pub fn instance_label(instance: &str) -> String {
    format!("label=mcp-frontdoor.instance={instance}")
}

/// How the engine reports a gateway hardened, through the front door's runtime.
pub async fn security(fd: &Frontdoor, name: &str) -> mcp_frontdoor::runtime::ContainerSecurity {
    fd.gateways
        .as_ref()
        .expect("lifecycle front door")
        .runtime()
        .inspect_security(name)
        .await
        .expect("inspect_security")
}

/// `mcp-frontdoor gateways stop-all` for `instance` with `env` (no config file); asserts it
/// succeeded and returns what it printed.
pub fn stop_all_cli(instance: &str, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-frontdoor"))
        .args(["gateways", "stop-all"])
        .env("FRONTDOOR_GATEWAYS__DOCKER__INSTANCE", instance)
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run mcp-frontdoor");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A whole gateway status as JSON, for assertions.
pub async fn status(fd: &Frontdoor, slug: &str) -> mcp_frontdoor::gateways::GatewayStatus {
    use mcp_frontdoor::gateways::GatewayControl;
    fd.gateways
        .as_ref()
        .expect("lifecycle front door")
        .status(slug)
        .await
        .expect("status")
}

/// Waits for a gateway state.
pub async fn wait_state(fd: &Frontdoor, slug: &str, state: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let s = status(fd, slug).await;
        if s.state == state {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{slug} did not become {state} in {limit:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A metric's value from the Prometheus text (0 when absent).
pub async fn metric(fd: &Frontdoor, name: &str) -> f64 {
    let text = fd.metrics_text().await;
    text.lines()
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name).then(|| v.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// The host firewall guard of `scripts/bridge-guard.sh` for the gateways' default subnet pool,
/// under a table named after the test's instance; removed when dropped. `None` (a printed
/// skip, or a panic under CI=true) when this process cannot install it (not root, no nft).
pub struct BridgeGuard {
    table: String,
}

impl Engine {
    pub fn bridge_guard(&self) -> Option<BridgeGuard> {
        let table = format!("mcpfd_{}", self.instance.replace('-', "_"));
        let out = Command::new("bash")
            .args([GUARD_SCRIPT, "install", DEFAULT_POOL, &table])
            .output();
        match out {
            Ok(o) if o.status.success() => Some(BridgeGuard { table }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true but the bridge guard cannot be installed: {why}");
                }
                eprintln!(
                    "SKIPPED: the bridge guard cannot be installed (root and nft needed): {why}"
                );
                None
            }
        }
    }
}

const GUARD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bridge-guard.sh");

/// `gateways.docker.subnet_pool`'s default, which the Docker tests use.
pub const DEFAULT_POOL: &str = "10.213.0.0/16";

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([GUARD_SCRIPT, "remove", DEFAULT_POOL, &self.table])
            .output();
    }
}
