//! One gateway for everybody (`gateways.upstream_url`), e.g. a shared docker/mcp-gateway.

use super::{GatewayError, GatewayResolver, Retry, Upstream};
use crate::auth::Principal;
use crate::config::UpstreamUrl;
use async_trait::async_trait;

/// Resolves every principal to the same address.
pub struct FixedUpstream {
    base: http::uri::Authority,
    authorization: Option<http::HeaderValue>,
}

impl FixedUpstream {
    /// Every request goes to `url`; `token` is sent as the gateway's bearer token.
    pub fn new(url: &UpstreamUrl, token: Option<String>) -> Result<Self, String> {
        let base = url.authority().clone();
        let authorization = match token {
            Some(t) => {
                Some(super::bearer(&t).ok_or("the gateway token is not a valid header value")?)
            }
            None => None,
        };
        Ok(Self {
            base,
            authorization,
        })
    }
}

#[async_trait]
impl GatewayResolver for FixedUpstream {
    async fn ensure(&self, _: &Principal) -> Result<Upstream, GatewayError> {
        Ok(Upstream {
            base: self.base.clone(),
            authorization: self.authorization.clone(),
            lease: None,
            retry: Retry::Never,
        })
    }
}
