//! Every config file in config/ parses and validates (with the TLS paths pointed at a
//! generated pair through the documented environment overrides).

use mcp_frontdoor::config::{Config, EventsConfig};
use std::path::Path;

#[test]
fn every_shipped_config_file_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) =
        mcp_frontdoor::server::tls::generate_self_signed(tmp.path(), &["localhost".into()])
            .unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            continue;
        }
        let env = vec![
            (
                "FRONTDOOR_SERVER__TLS__CERT".to_string(),
                cert.display().to_string(),
            ),
            (
                "FRONTDOOR_SERVER__TLS__KEY".to_string(),
                key.display().to_string(),
            ),
        ];
        let config =
            Config::load(Some(&path), env).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if path.ends_with("frontdoor.yaml") {
            // The documented file states the defaults (a key whose text drifted from its
            // default would mislead whoever copies it).
            let (shown, default) = (&config.events, EventsConfig::default());
            assert_eq!(shown.history, default.history);
            assert_eq!(shown.max_streams_per_user, default.max_streams_per_user);
        }
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected the shipped configs in {}",
        dir.display()
    );
}
