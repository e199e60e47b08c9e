use super::*;
use crate::auth::principal::slug;
use crate::secrets::{KeyRing, SecretValue};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const VICTIM: &str = "Victim@Example.com";
/// The old scheme's slug of [`VICTIM`], which is also a plain id of its own.
const COPYCAT: &str = "victim-example-com-e664e0e07c";

struct Fixture {
    dir: tempfile::TempDir,
    layout: DataLayout,
    secrets: Arc<SecretStore>,
    owners: Owners,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let layout = DataLayout::new(dir.path().join("data"));
    let ring = Arc::new(KeyRing::load(None, Some(&key)).unwrap());
    let secrets = Arc::new(SecretStore::new(layout.clone(), ring));
    let owners = Owners::new(layout.clone(), secrets.clone());
    Fixture {
        dir,
        layout,
        secrets,
        owners,
    }
}

impl Fixture {
    fn user_dir(&self, slug: &str) -> PathBuf {
        self.layout.user_dir(slug).unwrap()
    }

    /// A directory as the old front door left it: files, no marker.
    fn legacy(&self, slug: &str, custom: &str, secret: Option<&str>) {
        let d = self.user_dir(slug);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("custom.yaml"), custom).unwrap();
        if let Some(v) = secret {
            self.secrets
                .put(slug, "github.token", &SecretValue::new(v))
                .unwrap();
        }
    }

    fn claim(&self, id: &str) -> Result<Claim, OwnerError> {
        self.owners.claim_blocking(id, Access::Write)
    }
}

#[test]
fn a_new_id_gets_a_private_marked_directory() {
    let f = fixture();
    let c = f.claim("Alice").unwrap();
    assert_eq!(c.how, Claimed::Created);
    assert_eq!(c.slug, slug("Alice"));
    let d = f.user_dir(&c.slug);
    assert_eq!(
        std::fs::read_to_string(d.join("owner")).unwrap(),
        marker_of("Alice")
    );
    let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert_eq!(f.claim("Alice").unwrap().how, Claimed::Existing);
    // Nothing but the user's directory is left in users/ (no staging leftovers).
    let names: Vec<_> = std::fs::read_dir(f.layout.users_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [c.slug]);
}

#[test]
fn a_directory_marked_for_another_id_is_refused() {
    let f = fixture();
    let d = f.user_dir("alice");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("owner"), marker_of("someone-else")).unwrap();
    let err = f.claim("alice").unwrap_err();
    assert!(matches!(err, OwnerError::Taken { .. }), "{err}");
    assert!(!err.to_string().contains("someone-else"));
    // Admin confirmation does not override another id's marker.
    let err = f
        .owners
        .claim_blocking("alice", Access::AdminConfirm)
        .unwrap_err();
    assert!(matches!(err, OwnerError::Taken { .. }), "{err}");
}

#[test]
fn an_unmarked_plain_directory_is_marked_for_its_only_possible_owner() {
    let f = fixture();
    f.legacy("alice", "registry: {}\n", Some("v"));
    let c = f.claim("alice").unwrap();
    assert_eq!(c.how, Claimed::Marked);
    assert!(f.user_dir("alice").join("custom.yaml").is_file());
    assert!(f
        .secrets
        .render_gateway_secrets("alice")
        .unwrap()
        .contains("github.token=v"));
}

#[test]
fn the_old_hashed_directory_moves_to_its_id_and_never_to_the_copycat() {
    let f = fixture();
    f.legacy(COPYCAT, "name: victim\n", Some("victim-secret"));
    // The copycat (a plain id spelling the victim's old slug) comes first: refused.
    let err = f.claim(COPYCAT).unwrap_err();
    assert!(matches!(err, OwnerError::Unconfirmed { .. }), "{err}");
    assert!(
        f.user_dir(COPYCAT).join("custom.yaml").is_file(),
        "untouched"
    );

    let c = f.claim(VICTIM).unwrap();
    assert_eq!(
        c.how,
        Claimed::Migrated {
            from: COPYCAT.into()
        }
    );
    let new = f.user_dir(&c.slug);
    assert_eq!(
        std::fs::read_to_string(new.join("custom.yaml")).unwrap(),
        "name: victim\n"
    );
    assert_eq!(
        std::fs::read_to_string(new.join("owner")).unwrap(),
        marker_of(VICTIM)
    );
    let rendered = f.secrets.render_gateway_secrets(&c.slug).unwrap();
    assert!(rendered.contains("github.token=victim-secret"));
    assert!(!f.user_dir(COPYCAT).exists(), "old directory removed");

    // Now the copycat gets a fresh, empty directory of its own.
    let copy = f.claim(COPYCAT).unwrap();
    assert_eq!(copy.how, Claimed::Created);
    assert_eq!(copy.slug, COPYCAT);
    assert!(f.secrets.list_names(COPYCAT).unwrap().is_empty());
    assert!(!f.user_dir(COPYCAT).join("custom.yaml").exists());
    assert_eq!(f.claim(VICTIM).unwrap().how, Claimed::Existing);
}

#[test]
fn an_admin_confirmed_copycat_keeps_the_directory_and_the_hashed_id_starts_fresh() {
    let f = fixture();
    f.legacy(COPYCAT, "name: plain-user\n", None);
    let c = f
        .owners
        .claim_blocking(COPYCAT, Access::AdminConfirm)
        .unwrap();
    assert_eq!(c.how, Claimed::Marked);
    let v = f.claim(VICTIM).unwrap();
    assert_eq!(
        v.how,
        Claimed::Created,
        "a marked old directory never moves"
    );
    assert!(f.user_dir(COPYCAT).join("custom.yaml").is_file());
}

#[test]
fn old_plain_ids_that_are_no_longer_plain_move_too() {
    let f = fixture();
    for id in ["bob-", "a--b"] {
        f.legacy(id, "x: 1\n", Some("s"));
        let c = f.claim(id).unwrap();
        assert_eq!(c.how, Claimed::Migrated { from: id.into() }, "{id}");
        assert_ne!(c.slug, id);
        assert!(f
            .secrets
            .render_gateway_secrets(&c.slug)
            .unwrap()
            .contains("github.token=s"));
        assert!(!f.user_dir(id).exists());
    }
}

#[test]
fn an_unmarked_directory_at_a_hashed_slug_is_not_taken_silently() {
    // Only an old plain id spelled like this slug could have made it.
    let f = fixture();
    let s = slug(VICTIM);
    f.legacy(&s, "planted: true\n", None);
    let err = f.claim(VICTIM).unwrap_err();
    assert!(matches!(err, OwnerError::Unconfirmed { .. }), "{err}");
    let c = f
        .owners
        .claim_blocking(VICTIM, Access::AdminConfirm)
        .unwrap();
    assert_eq!(c.how, Claimed::Marked);
}

#[test]
fn staging_leftovers_are_replaced_and_never_listed_as_users() {
    let f = fixture();
    let staged = migrate::staging_dir(&f.layout, "carol");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("junk"), "x").unwrap();
    assert_eq!(f.claim("carol").unwrap().how, Claimed::Created);
    assert!(!staged.exists());
    assert!(!f.user_dir("carol").join("junk").exists());
}

#[test]
fn locate_reads_without_writing() {
    let f = fixture();
    f.legacy(COPYCAT, "x: 1\n", None);
    assert_eq!(locate(&f.layout, VICTIM).unwrap(), COPYCAT);
    assert!(matches!(
        locate(&f.layout, COPYCAT),
        Err(OwnerError::Unconfirmed { .. })
    ));
    assert_eq!(locate(&f.layout, "alice").unwrap(), "alice");
    assert!(!f.user_dir("alice").exists());
    assert!(!f.user_dir(COPYCAT).join("owner").exists());
}

#[test]
fn only_containers_started_after_the_claim_are_adoptable() {
    let f = fixture();
    let before = SystemTime::now() - Duration::from_secs(5);
    let c = f.claim("dana").unwrap();
    let after = SystemTime::now() + Duration::from_secs(1);
    assert!(claimed_before(&f.layout, &c.slug, after));
    assert!(!claimed_before(&f.layout, &c.slug, before));
    assert!(!claimed_before(&f.layout, "nobody", after));
    drop(f.dir);
}

#[tokio::test]
async fn the_async_claim_remembers_what_it_checked() {
    let f = fixture();
    let owners = Arc::new(f.owners);
    // A read of a user with nothing on disk makes nothing.
    assert_eq!(
        owners.claim("Eve", Access::Read).await.unwrap(),
        slug("Eve")
    );
    assert!(!f.layout.user_dir(&slug("Eve")).unwrap().exists());
    assert_eq!(
        owners.claim("Eve", Access::Write).await.unwrap(),
        slug("Eve")
    );
    assert!(f.layout.user_dir(&slug("Eve")).unwrap().is_dir());
    // Once checked, the marker is not read again for every request.
    std::fs::remove_file(f.layout.user_file(&slug("Eve"), UserFile::Owner).unwrap()).unwrap();
    assert_eq!(
        owners.claim("Eve", Access::Read).await.unwrap(),
        slug("Eve")
    );
    assert!(matches!(
        owners.existing("nobody--aaaaaaaaaaaaaaaaaaaaaaaa"),
        Err(OwnerError::NoSuchSlug { .. })
    ));
}
