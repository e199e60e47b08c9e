//! One user id, one slug: an id spelled like another user's slug reaches none of that user's
//! data, and directories of the old slug scheme go to the id they were made for.

use crate::support::frontdoor::MASTER_KEY;
use crate::support::tokens::bearer;
use crate::support::{body_json, Frontdoor, Proto};
use mcp_frontdoor::catalog::DataLayout;
use mcp_frontdoor::secrets::{KeyRing, SecretStore, SecretValue};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

const VICTIM: &str = "Victim@Example.com";
/// What the old scheme made of [`VICTIM`]; also a valid plain id an attacker can get a token for.
const ATTACKER: &str = "victim-example-com-e664e0e07c";

const CATALOGS: &str = "/api/v1/users/me/catalogs?include=custom";
const SECRETS: &str = "/api/v1/users/me/secrets";

async fn put(c: &crate::support::client::Client, who: &str, path: &str, body: &str) -> u16 {
    c.send_body(
        c.req("PUT", path)
            .header("authorization", bearer(who))
            .header("content-type", "application/json"),
        body.to_string(),
    )
    .await
    .status()
    .as_u16()
}

async fn get(
    c: &crate::support::client::Client,
    who: &str,
    path: &str,
) -> (u16, serde_json::Value) {
    let resp = c.get_as(who, path).await;
    let status = resp.status().as_u16();
    (status, body_json(resp).await)
}

/// The secrets the data dir holds for `slug`, opened with the test master key.
fn rendered(data: &Path, slug: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, MASTER_KEY).unwrap();
    let ring = KeyRing::load(None, Some(&key)).unwrap();
    let store = SecretStore::new(DataLayout::new(data), Arc::new(ring));
    store.render_gateway_secrets(slug).unwrap().to_string()
}

#[tokio::test]
async fn an_id_spelled_like_another_users_slug_reaches_none_of_their_data() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let overrides = r#"{"overrides":{"github":false}}"#;
    assert_eq!(
        put(&c, VICTIM, SECRETS, r#"{"github.token":"victim-value"}"#).await,
        200
    );
    assert_eq!(
        put(&c, VICTIM, "/api/v1/users/me/catalogs", overrides).await,
        200
    );
    let (_, victim) = get(&c, VICTIM, SECRETS).await;
    let victim_slug = victim["user"].as_str().unwrap().to_string();
    assert_ne!(victim_slug, ATTACKER);

    // Reading: the attacker's own, empty data.
    let (status, theirs) = get(&c, ATTACKER, SECRETS).await;
    assert_eq!(status, 200);
    assert_eq!(theirs["user"], ATTACKER);
    assert_eq!(
        theirs["names"],
        json!([]),
        "the victim's secret names leaked"
    );
    let (status, theirs) = get(&c, ATTACKER, CATALOGS).await;
    assert_eq!(status, 200);
    assert_eq!(
        theirs["overrides"],
        json!({}),
        "the victim's overrides leaked"
    );

    // Writing and deleting: only the attacker's own directory changes.
    assert_eq!(
        put(
            &c,
            ATTACKER,
            SECRETS,
            r#"{"github.token":"attacker-value"}"#
        )
        .await,
        200
    );
    assert_eq!(
        put(
            &c,
            ATTACKER,
            "/api/v1/users/me/catalogs",
            r#"{"overrides":{"fetch":false}}"#
        )
        .await,
        200
    );
    let del = c
        .send(
            c.req("DELETE", &format!("{SECRETS}?name=github.token"))
                .header("authorization", bearer(ATTACKER)),
        )
        .await;
    assert_eq!(del.status(), 204);
    let data = fd.dir.path().join("data");
    assert_eq!(rendered(&data, &victim_slug), "github.token=victim-value\n");
    let (_, victim) = get(&c, VICTIM, CATALOGS).await;
    assert_eq!(victim["overrides"], json!({"github": false}));

    // Naming the victim in the path is someone else's user: 403.
    for path_user in [VICTIM, victim_slug.as_str()] {
        let (status, body) = get(&c, ATTACKER, &format!("/api/v1/users/{path_user}/secrets")).await;
        assert_eq!(status, 403, "{path_user}: {body}");
    }
}

#[tokio::test]
async fn an_old_scheme_directory_goes_to_the_id_it_was_made_for() {
    // The data dir as the previous release left it: the victim's directory under the slug the
    // attacker's plain id spells, secrets sealed for that slug, no owner marker.
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let key = root.path().join("master.key");
    std::fs::write(&key, MASTER_KEY).unwrap();
    let ring = Arc::new(KeyRing::load(None, Some(&key)).unwrap());
    let old = SecretStore::new(DataLayout::new(&data), ring);
    old.put(ATTACKER, "github.token", &SecretValue::new("victim-value"))
        .unwrap();
    std::fs::write(
        data.join("users").join(ATTACKER).join("overrides.yaml"),
        "github: false\n",
    )
    .unwrap();

    let fd = Frontdoor::builder().data_dir(data.clone()).start().await;
    let c = fd.client(Proto::H1);
    // The attacker comes first after the upgrade: refused, nothing served, nothing moved.
    for path in [SECRETS, CATALOGS] {
        let (status, body) = get(&c, ATTACKER, path).await;
        assert_eq!(status, 409, "{path}: {body}");
        assert_eq!(body["error"], "user_dir_unconfirmed");
        assert!(!body.to_string().contains("victim-value"));
    }
    assert_eq!(
        put(&c, ATTACKER, SECRETS, r#"{"github.token":"x"}"#).await,
        409
    );

    // The victim's first request moves the directory to their new slug, secrets intact.
    let (status, mine) = get(&c, VICTIM, SECRETS).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["names"], json!(["github.token"]));
    let slug = mine["user"].as_str().unwrap();
    assert_eq!(rendered(&data, slug), "github.token=victim-value\n");
    let (_, cat) = get(&c, VICTIM, CATALOGS).await;
    assert_eq!(cat["overrides"], json!({"github": false}));
    assert!(!data.join("users").join(ATTACKER).exists());

    // From now on the attacker is just another new user.
    let (status, theirs) = get(&c, ATTACKER, SECRETS).await;
    assert_eq!(status, 200);
    assert_eq!(theirs["names"], json!([]));
}
