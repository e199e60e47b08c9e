//! A hostile gateway against its policed Docker API (issue 11). The real gateway image
//! (`../shared/real-gateway/make-image.sh` → `mcp-real-gateway:2bd20fe`, which carries the
//! docker CLI 28.2) runs for two users; from inside alice's gateway, with the environment it
//! was given, its own `docker` CLI tries every call a tenant must not make. Each is refused,
//! nothing of the engine changes, and in the same gateway a legitimate `docker run` of a
//! catalog image works (so an endpoint that refuses everything cannot pass).

use crate::engine::{docker, engine, metric};
use crate::support::client::Proto;
use crate::support::{tokens, Frontdoor};
use mcp_frontdoor::catalog::{Catalog, Format};
use std::process::{Command, Stdio};

pub const REAL_GATEWAY: &str = "mcp-real-gateway:2bd20fe";
pub const STDIO: &str = "mcp-test-stdio:dev";

/// Whether the real gateway's and the stdio server's images are there; prints why not (and
/// fails under `CI=true`) when not.
pub fn real_images(tag: &str) -> bool {
    for image in [REAL_GATEWAY, STDIO] {
        if !docker(&["image", "inspect", "--format", "{{.Id}}", image]).0 {
            let why = format!("image {image} is missing (../shared/real-gateway/make-image.sh, test-gateway/build-image.sh)");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {why}"
            );
            eprintln!("SKIPPED docker test `{tag}`: {why}");
            return false;
        }
    }
    true
}

/// `docker exec -i <container> docker <args>` with `stdin`: (exit ok, stdout, stderr).
pub fn in_gateway(container: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new("docker")
        .args(["exec", "-i", container, "docker"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker exec");
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        let _ = i.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lines(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = docker(args)
        .1
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// What the attack could have changed: the instance's containers (with their state), networks
/// and volumes, and anything engine-wide carrying the attack's own names and labels.
fn snapshot(instance: &str, marker: &str) -> Vec<Vec<String>> {
    let label = format!("label=mcp-frontdoor.instance={instance}");
    let mark = format!("label=frontdoor-attack={marker}");
    let name = format!("name={marker}");
    vec![
        lines(&[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &label,
            "--format",
            "{{.ID}} {{.State}} {{.Names}}",
        ]),
        lines(&["network", "ls", "-q", "--filter", &label]),
        lines(&["volume", "ls", "-q", "--filter", &label]),
        lines(&["ps", "-aq", "--filter", &mark]),
        lines(&["network", "ls", "-q", "--filter", &name]),
        lines(&["volume", "ls", "-q", "--filter", &name]),
        lines(&[
            "image",
            "ls",
            "-q",
            "--filter",
            &format!("reference={marker}*"),
        ]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_gateway_is_refused_everything_but_running_its_catalog_servers() {
    let Some(mut eng) = engine("gwapi") else {
        return;
    };
    if !real_images("gwapi") {
        return;
    }
    eng.image = REAL_GATEWAY.into();
    let data = tempfile::tempdir().unwrap();
    let docker_line = format!(
        "docker: {{ instance: {}, image: \"{}\", engine_for_gateways: policed, \
         servers: {{ memory: 96m, cpus: 0.5, pids: 32 }} }}",
        eng.instance, eng.image
    );
    let frontdoor = || {
        Frontdoor::builder()
            .plain()
            .lifecycle()
            .data_dir(data.path().to_path_buf())
            .gateways("spawn_timeout: 60s")
            .gateways("idle_timeout: 1h")
            .gateways(&docker_line)
            .start()
    };
    let fd: Frontdoor = frontdoor().await;
    let services = fd.services.clone().unwrap();
    for c in services.catalogs.list_base().unwrap() {
        services.catalogs.delete_base(&c.name).unwrap();
    }
    let catalog =
        format!("registry:\n  hashsrv: {{ type: server, image: \"{STDIO}\", title: stdio }}\n");
    let catalog = Catalog::parse(catalog.as_bytes(), Format::Yaml).unwrap();
    services.catalogs.put_base("gwapi", &catalog, None).unwrap();

    let start = |sub: &'static str| {
        let client = fd.client(Proto::H1);
        async move {
            let req = client
                .req("POST", "/api/v1/users/me/gateway")
                .header("authorization", tokens::bearer(sub));
            let resp = client.send(req).await;
            assert_eq!(resp.status(), 200, "{sub}'s gateway start");
        }
    };
    tokio::join!(start("alice"), start("bob"));
    let (alice, bob) = (eng.name("alice"), eng.name("bob"));

    // The gateways hold no engine socket of the host: only their own directory is mounted.
    let mounts = eng.inspect(
        &alice,
        "{{range .Mounts}}{{.Source}}->{{.Destination}} {{end}}",
    );
    assert!(
        mounts.contains("gateway-api/alice->/var/run") && !mounts.contains("docker.sock"),
        "{mounts}"
    );

    // Bob's server container, started through bob's own endpoint (detached, stdin held open).
    let (ok, bob_server, err) =
        in_gateway(&bob, &["run", "-d", "-i", "--pull", "never", STDIO], "");
    assert!(ok, "bob's own server: {err}");
    let bob_server = bob_server.trim().to_string();
    let labels = eng.inspect(&bob_server, "{{json .Config.Labels}} {{.HostConfig.NetworkMode}} {{.HostConfig.Memory}} {{json .HostConfig.CapDrop}}");
    assert!(
        labels.contains("\"mcp-frontdoor.user\":\"bob\"")
            && labels.contains("\"mcp-frontdoor.role\":\"server\"")
            && labels.contains(&format!(" {bob} {} [\"ALL\"]", 96 << 20)),
        "bob's server as the engine has it: {labels}"
    );

    let marker = format!("atk-{}", eng.instance);
    let mark = format!("frontdoor-attack={marker}");
    let before = snapshot(&eng.instance, &marker);
    let run = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--rm", "--pull", "never", "-l", &mark]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let bob_short = &bob_server[..12];
    let attacks: Vec<(&str, Vec<String>)> = vec![
        ("privileged", run(&["--privileged", STDIO])),
        ("host pid", run(&["--pid", "host", STDIO])),
        ("host network", run(&["--network", "host", STDIO])),
        ("bob's network", run(&["--network", &bob, STDIO])),
        ("bind of /", run(&["-v", "/:/host", STDIO])),
        (
            "engine socket",
            run(&["-v", "/var/run/docker.sock:/s", STDIO]),
        ),
        ("cap-add", run(&["--cap-add", "SYS_ADMIN", STDIO])),
        ("device", run(&["--device", "/dev/kmsg", STDIO])),
        ("sysctl", run(&["--sysctl", "net.ipv4.ip_forward=1", STDIO])),
        (
            "seccomp",
            run(&["--security-opt", "seccomp=unconfined", STDIO]),
        ),
        ("name squat", run(&["--name", &eng.name("carol"), STDIO])),
        ("image not in catalog", run(&[&eng.image])),
        ("pull", vec!["pull".into(), "alpine:3".into()]),
        (
            "image inspect",
            vec!["image".into(), "inspect".into(), eng.image.clone()],
        ),
        (
            "exec into bob's",
            vec!["exec".into(), bob_server.clone(), "true".into()],
        ),
        ("inspect bob's", vec!["inspect".into(), bob_short.into()]),
        ("inspect bob's gateway", vec!["inspect".into(), bob.clone()]),
        ("logs of bob's", vec!["logs".into(), bob_server.clone()]),
        ("stop bob's", vec!["stop".into(), bob_server.clone()]),
        ("rm bob's", vec!["rm".into(), "-f".into(), bob_short.into()]),
        (
            "volume create",
            vec!["volume".into(), "create".into(), marker.clone()],
        ),
        ("volume ls", vec!["volume".into(), "ls".into()]),
        (
            "network create",
            vec!["network".into(), "create".into(), marker.clone()],
        ),
        (
            "network connect",
            vec![
                "network".into(),
                "connect".into(),
                bob.clone(),
                alice.clone(),
            ],
        ),
        (
            "network inspect bob's",
            vec!["network".into(), "inspect".into(), bob.clone()],
        ),
        (
            "build",
            vec!["build".into(), "-t".into(), marker.clone(), "-".into()],
        ),
        ("swarm init", vec!["swarm".into(), "init".into()]),
        ("plugin ls", vec!["plugin".into(), "ls".into()]),
        (
            "events",
            vec![
                "events".into(),
                "--since".into(),
                "0".into(),
                "--until".into(),
                "1".into(),
            ],
        ),
        (
            "info",
            vec!["info".into(), "--format".into(), "{{.Containers}}".into()],
        ),
        ("image ls", vec!["image".into(), "ls".into()]),
    ];
    let refused_before = metric(
        &fd,
        "mcp_frontdoor_gateway_api_refused_total{reason=\"field\"}",
    )
    .await;
    let mut let_through = Vec::new();
    for (what, args) in &attacks {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdin = if *what == "build" {
            "FROM scratch\n"
        } else {
            ""
        };
        let (ok, out, err) = in_gateway(&alice, &args, stdin);
        // The CLI's exit status is not enough (`rm -f` and `info` exit 0 after an error): the
        // endpoint's own words must be there, and the snapshot below shows nothing happened.
        if !err.contains("mcp-frontdoor:") {
            let tail: String = err
                .chars()
                .rev()
                .take(400)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let_through.push(format!("{what}: ok={ok} out={out:.200} err=...{tail}"));
        }
    }
    assert!(
        let_through.is_empty(),
        "not refused:\n{}",
        let_through.join("\n")
    );

    // Listing shows alice her own containers only.
    let (ok, ps, err) = in_gateway(&alice, &["ps", "-a", "--no-trunc", "-q"], "");
    assert!(ok, "{err}");
    assert!(!ps.contains(&bob_server), "alice lists bob's server: {ps}");
    // Nothing changed: bob's server still runs, no object of the attack exists anywhere.
    assert_eq!(
        snapshot(&eng.instance, &marker),
        before,
        "the engine changed"
    );
    assert_eq!(eng.inspect(&bob_server, "{{.State.Status}}"), "running");
    let refused = metric(
        &fd,
        "mcp_frontdoor_gateway_api_refused_total{reason=\"field\"}",
    )
    .await;
    assert!(
        refused >= refused_before + 8.0,
        "field refusals counted: {refused}"
    );

    // The legitimate call, in the same gateway: the catalog's server answers on stdio.
    // `docker run --rm -i` of the catalog's image answers tools/list over stdio.
    let legit_run = |when: &str| {
        let request = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
        let (ok, out, err) = in_gateway(
            &alice,
            &["run", "--rm", "-i", "--pull", "never", STDIO],
            &format!("{request}\n"),
        );
        assert!(
            out.contains(r#""id":7"#),
            "{when}: legit docker run failed: ok={ok} out={out} err={err}"
        );
    };
    legit_run("first front door");

    // Stopping bob's gateway removes his server container with it (by label).
    use mcp_frontdoor::gateways::GatewayControl;
    assert!(fd.gateways.as_ref().unwrap().stop("bob").await.unwrap());
    assert!(
        !docker(&["inspect", &bob_server]).0,
        "bob's server outlived his gateway"
    );
    assert!(
        !data.path().join("gateway-api/bob").exists(),
        "bob's socket directory outlived his gateway"
    );

    // A restarted front door adopts alice's gateway and serves its endpoint again (a fresh
    // socket in the directory the gateway's mount shows).
    let mut fd = fd;
    fd.shutdown.trigger(std::time::Duration::ZERO);
    fd.join().await.unwrap();
    drop(fd);
    let fd = frontdoor().await;
    crate::engine::wait_state(&fd, "alice", "ready", std::time::Duration::from_secs(30)).await;
    legit_run("after adoption");
    let (_, _, err) = in_gateway(
        &alice,
        &["run", "--rm", "--pull", "never", "--privileged", STDIO],
        "",
    );
    assert!(
        err.contains("mcp-frontdoor:"),
        "still policed after adoption: {err}"
    );
}
