//! Two front door replicas sharing the socket directory: the one that adopts a gateway does
//! not take over a socket another serves, and serves it when nobody answers any more.

use super::*;

fn apis(dir: &Path) -> GatewayApis {
    GatewayApis::new(
        ApiSettings {
            engine_host: None,
            lookup_timeout: std::time::Duration::from_secs(1),
            dir: dir.to_path_buf(),
            host_dir: None,
            policy: ServerPolicy {
                memory: 1 << 20,
                nano_cpus: 1,
                pids: 1,
                cap_add: Vec::new(),
                binds: Vec::new(),
            },
        },
        ApiMetrics::default(),
    )
    .unwrap()
}

fn scope() -> Scope {
    Scope::new("ann", "i", "mcp-fd-i-ann", images::AllowedImages::new([]))
}

#[tokio::test]
async fn a_served_socket_is_left_to_its_server_and_served_again_once_dead() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (apis(d.path()), apis(d.path()));
    assert!(!b.answered("ann"), "nothing yet");
    assert!(a.open_unless_served(scope()).unwrap(), "A serves it");
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let sock = a.socket_dir("ann").join(SOCKET_FILE);
    let before = inode(&sock);
    assert!(b.answered("ann"));
    assert!(
        !b.open_unless_served(scope()).unwrap(),
        "B does not take it"
    );
    assert!(!b.serves("ann"));
    assert_eq!(inode(&sock), before, "A's socket untouched");
    // A goes (its listener ends; the socket file stays, as after a crash).
    a.shutdown();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while b.answered("ann") {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("A's listener ends");
    assert!(b.open_unless_served(scope()).unwrap(), "B serves it now");
    assert!(b.serves("ann") && b.answered("ann"), "answered again, by B");
}
