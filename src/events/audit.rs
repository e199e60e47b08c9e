//! Changes made through the API become events at the one place every change passes: its
//! audit line ([`crate::api`]'s `Permit`). Only successful changes are published.

use super::model::{CatalogAction, EventBody, Scope};
use super::EventBus;
use crate::audit::{Action, Outcome, Subject};

/// Publishes the event for one audited change, if it is one the stream carries.
pub fn publish_change(
    bus: &EventBus,
    action: Action,
    subject: &Subject,
    outcome: Outcome,
    count: usize,
) {
    if outcome != Outcome::Success {
        return;
    }
    let catalog = move |action| match subject {
        Subject::Base(name) => Some((
            None,
            EventBody::Catalog {
                scope: Scope::Base,
                name: Some(name.clone()),
                team: None,
                action,
            },
        )),
        Subject::Team(team) => Some((
            None,
            EventBody::Catalog {
                scope: Scope::Team,
                name: None,
                team: Some(team.clone()),
                action,
            },
        )),
        Subject::User(slug) => Some((
            Some(slug.as_str()),
            EventBody::Catalog {
                scope: Scope::User,
                name: None,
                team: None,
                action,
            },
        )),
        Subject::AllUsers => None,
    };
    let secrets = move |action| match subject {
        Subject::User(slug) => Some((Some(slug.as_str()), EventBody::Secrets { action, count })),
        _ => None,
    };
    let (kind, event) = match action {
        Action::BaseCatalogPut | Action::TeamCatalogPut | Action::UserCatalogPut => {
            ("catalog.changed", catalog(CatalogAction::Put))
        }
        Action::BaseCatalogDelete | Action::TeamCatalogDelete => {
            ("catalog.changed", catalog(CatalogAction::Delete))
        }
        Action::UserServers => ("catalog.changed", catalog(CatalogAction::Servers)),
        Action::UserConfigImport => ("catalog.changed", catalog(CatalogAction::Import)),
        Action::SecretPut => ("secrets.changed", secrets("put")),
        Action::SecretDelete => ("secrets.changed", secrets("delete")),
        // Gateway starts and stops show as `gateway.state` from the lifecycle itself;
        // regeneration and key rotation change no one's inputs.
        Action::GatewayStart
        | Action::GatewayStop
        | Action::CatalogsRegenerate
        | Action::SecretsRotate => return,
    };
    if let Some((user, body)) = event {
        bus.publish(kind, user, body);
    }
}
