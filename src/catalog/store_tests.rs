use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::catalog::error::ErrorClass;
use crate::catalog::merge::merge;

/// A store whose users may add servers of their own with any image.
fn open(dir: &Path) -> CatalogStore {
    let mut policy = CatalogPolicy::default();
    policy.user.custom_servers = true;
    policy.user.images = vec![crate::catalog::policy::Pattern::new("**")];
    CatalogStore::open(DataLayout::new(dir), Arc::default())
        .unwrap()
        .with_policy(Arc::new(policy))
}

fn cat(yaml: &str) -> Catalog {
    Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_open_creates_private_layout_and_seeds_examples() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("data");
    let s = open(&root);
    for sub in [
        "",
        "catalogs",
        "catalogs/base",
        "catalogs/teams",
        "users",
        "audit",
    ] {
        assert_eq!(mode(&root.join(sub)), 0o700, "{sub}");
    }
    let base = s.list_base().unwrap();
    let names: Vec<_> = base.iter().map(|b| (b.name.as_str(), b.priority)).collect();
    assert_eq!(names, [("official", 0), ("organization", 10)]);
    assert_eq!(mode(&root.join("catalogs/base/official.yaml")), 0o600);
    let (_, official) = s.get_base("official").unwrap();
    assert!(official.registry.contains_key("fetch"));

    // Deleting the examples sticks: only a fresh data dir is seeded.
    s.delete_base("official").unwrap();
    s.delete_base("organization").unwrap();
    let s = open(&root);
    assert!(s.list_base().unwrap().is_empty());
}

#[test]
fn example_catalogs_merge_with_org_winning() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let m = merge(&s.load_inputs("alice", &[]).unwrap());
    assert_eq!(
        m.registry["github"].str_field("title"),
        Some("GitHub (Example Org)")
    );
    assert!(m.registry.contains_key("fetch") && m.registry.contains_key("wiki"));
}

#[test]
fn base_crud_and_priority_rules() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let c = cat("registry:\n  a: {image: x/a}\n");
    assert_eq!(s.put_base("extra", &c, None).unwrap(), 0);
    assert_eq!(s.put_base("extra", &c, Some(7)).unwrap(), 7);
    assert_eq!(
        s.put_base("extra", &c, None).unwrap(),
        7,
        "None keeps priority"
    );
    let (info, got) = s.get_base("extra").unwrap();
    assert_eq!(info.priority, 7);
    assert_eq!(*got, c);
    s.delete_base("extra").unwrap();
    let err = s.get_base("extra").unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert_eq!(
        s.delete_base("extra").unwrap_err().class(),
        ErrorClass::NotFound
    );
    assert!(!d.path().join("catalogs/base/extra.meta.yaml").exists());
}

#[test]
fn bad_names_and_bodies_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let good = cat("registry:\n  a: {image: x/a}\n");
    for name in ["../x", "a/b", "%2F", ".hidden", ""] {
        let err = s.put_team(name, &good).unwrap_err();
        assert!(matches!(err, CatalogError::InvalidName(_)), "{name}: {err}");
        assert!(s.put_custom(name, &good).is_err());
    }
    let bad = cat("registry:\n  a: {title: no image}\n");
    let err = s.put_team("ml", &bad).unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadRequest);
    assert!(s.list_teams().unwrap().is_empty());
    s.put_team("ml", &good).unwrap();
    assert_eq!(s.list_teams().unwrap(), ["ml"]);
    assert_eq!(*s.get_team("ml").unwrap(), good);
    s.delete_team("ml").unwrap();
    assert_eq!(s.get_team("ml").unwrap_err().class(), ErrorClass::NotFound);
}

#[test]
fn user_files_and_inputs() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    assert!(s.get_custom("bob").unwrap().is_none());
    assert!(s.get_overrides("bob").unwrap().is_empty());
    s.put_team("ml", &cat("registry:\n  nb: {image: ml/nb}\n"))
        .unwrap();
    s.put_custom("bob", &cat("registry:\n  mine: {image: me/x}\n"))
        .unwrap();
    let o = Overrides::parse(b"fetch: false\n", Format::Yaml).unwrap();
    s.put_overrides("bob", &o).unwrap();
    assert_eq!(s.get_overrides("bob").unwrap(), o);
    assert_eq!(s.list_users().unwrap(), ["bob"]);
    assert_eq!(mode(&d.path().join("users/bob")), 0o700);
    assert_eq!(mode(&d.path().join("users/bob/custom.yaml")), 0o600);

    let teams = ["ml".to_string(), "no-catalog".into(), "/bad group".into()];
    let m = merge(&s.load_inputs("bob", &teams).unwrap());
    assert!(m.registry.contains_key("nb") && m.registry.contains_key("mine"));
    assert!(!m.registry.contains_key("fetch"));
}

#[test]
fn hand_broken_file_is_an_operator_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let path = d.path().join("catalogs/teams/ml.yaml");
    fs::write(&path, "registry: [oops\n").unwrap();
    let err = s.get_team("ml").unwrap_err();
    assert_eq!(err.class(), ErrorClass::Internal);
    assert!(err.to_string().contains("catalogs/teams/ml.yaml"), "{err}");
}

#[test]
fn concurrent_writers_last_wins_and_readers_always_parse() {
    let d = tempfile::tempdir().unwrap();
    let s = Arc::new(open(d.path()));
    s.put_team("race", &cat("registry:\n  s: {image: x/s}\n"))
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Every read parses: never a half-written file.
                    let c = s.get_team("race").unwrap();
                    assert_eq!(c.registry.len(), 1);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                // Big enough that a torn write would be visible.
                let desc = "x".repeat(20_000 + i);
                let c = cat(&format!(
                    "registry:\n  s: {{image: x/s, description: {desc}, n: {i}}}\n"
                ));
                s.put_team("race", &c).unwrap();
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    let last = s.get_team("race").unwrap();
    let n = last.registry["s"]["n"].as_u64().unwrap();
    assert!(n < 50);
    let leftovers: Vec<_> = fs::read_dir(d.path().join("catalogs/teams"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");
}

#[test]
fn no_catalog_may_name_the_front_doors_objects_and_a_refusal_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let evil = cat("registry:\n  a: {image: x/a, volumes: [\"mcp-fd-init-0123456789ab:/x\"]}\n");
    let err = s.put_base("evil", &evil, Some(5)).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Policy);
    assert!(err.to_string().contains("registry.a.volumes[0]"), "{err}");
    assert!(!d.path().join("catalogs/base/evil.yaml").exists());
    assert!(!d.path().join("catalogs/base/evil.meta.yaml").exists());
    let err = s.put_team("ml", &evil).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Policy);
    assert!(s.list_teams().unwrap().is_empty());
    assert!(s.put_custom("bob", &evil).is_err());
    assert!(!d.path().join("users/bob").exists());

    // Put there by hand: an unusable admin file (500 for operators), never merged.
    fs::write(
        d.path().join("catalogs/teams/ml.yaml"),
        "registry:\n  a: {image: x/a, volumes: [\"/var/run/docker.sock:/s\"]}\n",
    )
    .unwrap();
    let err = s.load_inputs("alice", &["ml".into()]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Internal);
    assert!(err.to_string().contains("docker.sock"), "{err}");
}

#[test]
fn default_policy_refuses_servers_of_users_own() {
    let d = tempfile::tempdir().unwrap();
    let s = CatalogStore::open(DataLayout::new(d.path()), Arc::default()).unwrap();
    let err = s
        .put_custom("bob", &cat("registry:\n  mine: {image: me/x}\n"))
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Policy);
    assert!(err.to_string().contains("custom.registry.mine"), "{err}");
    assert!(!d.path().join("users/bob").exists());
    let o = Overrides::parse(b"fetch: false\ngithub: {image: evil/x}\n", Format::Yaml).unwrap();
    let err = s.put_overrides("bob", &o).unwrap_err();
    assert!(err.to_string().contains("overrides.github.image"), "{err}");
    assert!(!d.path().join("users/bob").exists());
}
