//! The one door every authenticated route passes: the proxy path and the REST API ask the same
//! gate, so a refused token is counted by reason and answered with the same challenge on both.

use crate::auth::{Authenticator, Principal};
use crate::error::Error;
use crate::metrics::{Metrics, ReasonLabels};
use std::sync::Arc;

/// The authenticator with the metric its refusals are counted in.
pub struct AuthGate {
    auth: Authenticator,
    metrics: Arc<Metrics>,
}

impl AuthGate {
    pub fn new(auth: Authenticator, metrics: Arc<Metrics>) -> Self {
        Self { auth, metrics }
    }

    /// Who is calling. A refusal is counted by reason and carries the `WWW-Authenticate`
    /// challenge; an accepted token marks the request's connection as a user's (it is then
    /// never evicted to make room, `server::conns`).
    pub async fn check(
        &self,
        headers: &http::HeaderMap,
        uri: &http::Uri,
        extensions: &http::Extensions,
    ) -> Result<Arc<Principal>, Error> {
        match self.auth.authenticate(headers, uri).await {
            Ok(p) => {
                crate::server::mark_authenticated(extensions);
                Ok(p)
            }
            Err(reason) => {
                self.metrics
                    .auth_failures
                    .get_or_create(&ReasonLabels {
                        reason: reason.label(),
                    })
                    .inc();
                Err(Error::unauthorized(reason, self.auth.challenge(), headers))
            }
        }
    }
}
