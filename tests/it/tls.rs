//! Certificates are reloaded when their files change; new connections see the new one.

use crate::support::client::{Client, Proto};
use crate::support::Frontdoor;
use std::time::Duration;

#[tokio::test]
async fn replaced_certificate_files_are_served_to_new_connections() {
    let fd = Frontdoor::builder().start().await;
    let old_ca = fd.ca_pem.clone().unwrap();
    // A second, unrelated self-signed pair.
    let other = fd.dir.path().join("other");
    let (cert2, key2) =
        mcp_frontdoor::server::tls::generate_self_signed(&other, &["localhost".into()]).unwrap();
    let new_ca = std::fs::read(&cert2).unwrap();

    let trusting_new = Client::new(&fd.base(), Some(&new_ca), Proto::H1);
    let healthz = || {
        trusting_new
            .req("GET", "/healthz")
            .body(crate::support::client::empty())
            .unwrap()
    };
    assert!(
        trusting_new.try_send(healthz()).await.is_err(),
        "old cert is not trusted by the new CA"
    );

    // Replace the live files the way a renewal does (write + rename).
    let tls_dir = fd.dir.path().join("tls");
    for (src, dst) in [(&cert2, "cert.pem"), (&key2, "key.pem")] {
        let tmp = tls_dir.join(format!("{dst}.new"));
        std::fs::copy(src, &tmp).unwrap();
        std::fs::rename(&tmp, tls_dir.join(dst)).unwrap();
    }
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A fresh client per attempt: pooled connections would keep the old handshake.
        let fresh = Client::new(&fd.base(), Some(&new_ca), Proto::H1);
        if let Ok(resp) = fresh
            .try_send(
                fresh
                    .req("GET", "/healthz")
                    .body(crate::support::client::empty())
                    .unwrap(),
            )
            .await
        {
            assert_eq!(resp.status(), 200);
            ok = true;
            break;
        }
    }
    assert!(ok, "the new certificate was not served within 5 s");
    let trusting_old = Client::new(&fd.base(), Some(&old_ca), Proto::H2);
    assert!(
        trusting_old
            .try_send(
                trusting_old
                    .req("GET", "/healthz")
                    .body(crate::support::client::empty())
                    .unwrap()
            )
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
}

#[tokio::test]
async fn a_broken_renewal_keeps_the_previous_certificate() {
    let fd = Frontdoor::builder().start().await;
    std::fs::write(fd.dir.path().join("tls/cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let c = fd.client(Proto::H1);
    let resp = c.send(c.req("GET", "/healthz")).await;
    assert_eq!(resp.status(), 200);
}
