//! Master keys: a wrong key stops start-up and changes nothing; rotation keeps every value.

use mcp_frontdoor::config::Config;
use mcp_frontdoor::secrets::{rotate, SecretValue};
use mcp_frontdoor::services::Services;
use std::path::Path;

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn config(dir: &Path, keys: &str) -> Config {
    let key_file = dir.join("master.key");
    std::fs::write(&key_file, keys).unwrap();
    std::fs::write(dir.join("hs"), crate::support::tokens::HS_SECRET).unwrap();
    Config::from_yaml(&format!(
        "data_dir: {}\nsecrets: {{ master_key_file: {} }}\nauth: {{ hs256_secret_file: {} }}\n",
        dir.join("data").display(),
        key_file.display(),
        dir.join("hs").display()
    ))
    .unwrap()
}

fn secrets_file(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("data/users/alice/secrets.enc")).unwrap()
}

#[test]
fn a_wrong_master_key_fails_start_up_and_destroys_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::open(&config(dir.path(), KEY_A)).unwrap();
    services
        .secrets
        .put("alice", "github.token", &SecretValue::new("v-123"))
        .unwrap();
    drop(services);
    let before = secrets_file(dir.path());

    let err = Services::open(&config(dir.path(), KEY_B))
        .err()
        .expect("start-up refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("master key"), "{msg}");
    assert!(!msg.contains("v-123"));
    assert_eq!(
        secrets_file(dir.path()),
        before,
        "the sealed file was not touched"
    );

    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    let cfg = Config::from_yaml(&format!(
        "data_dir: {}\nsecrets: {{ master_key_file: {} }}\nauth: {{ hs256_secret_file: {} }}\n",
        dir.path().join("data").display(),
        dir.path().join("master.key").display(),
        dir.path().join("hs").display()
    ))
    .unwrap();
    assert!(
        Services::open(&cfg).is_err(),
        "a missing key file is an error too"
    );
    assert_eq!(secrets_file(dir.path()), before);
}

#[test]
fn rotation_reseals_under_the_new_key_and_keeps_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::open(&config(dir.path(), KEY_A)).unwrap();
    for (name, value) in [("github.token", "gh-1"), ("fetch.key", "fk-2")] {
        services
            .secrets
            .put("alice", name, &SecretValue::new(value))
            .unwrap();
    }
    drop(services);
    // New key first, old key still listed so old values open.
    let cfg = config(dir.path(), &format!("{KEY_B}\n{KEY_A}\n"));
    let ring = mcp_frontdoor::secrets::KeyRing::load(None, cfg.secrets.master_key_file.as_deref())
        .unwrap();
    let report = rotate(&cfg.data_dir, &ring).unwrap();
    assert_eq!(report.resealed, 2);
    // The old key is gone: everything must open with the new one alone.
    let services = Services::open(&config(dir.path(), KEY_B)).unwrap();
    let rendered = services.secrets.render_gateway_secrets("alice").unwrap();
    assert!(rendered.contains("github.token=gh-1"), "rendered file");
    assert!(rendered.contains("fetch.key=fk-2"));
}
