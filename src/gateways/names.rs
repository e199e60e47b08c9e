//! Names and labels of managed objects: the contract other tools (and other front door
//! replicas) rely on to find a user's gateway (DESIGN.md §4).

use std::collections::HashMap;

/// Every managed container and network carries `mcp-frontdoor.managed=true`.
pub const LABEL_MANAGED: &str = "mcp-frontdoor.managed";
/// The user slug.
pub const LABEL_USER: &str = "mcp-frontdoor.user";
/// `gateways.docker.instance`: separates deployments sharing one engine.
pub const LABEL_INSTANCE: &str = "mcp-frontdoor.instance";
/// The merged catalog's hash at spawn.
pub const LABEL_CATALOG_HASH: &str = "mcp-frontdoor.catalog-hash";
/// On the derived gateway image (see `init.rs`): the hash of the init it carries.
pub const LABEL_INIT_IMAGE: &str = "mcp-frontdoor.init";
/// On the helper container the derived image is committed from: the making process.
pub const LABEL_INIT_HELPER: &str = "mcp-frontdoor.init-helper";
/// On a gateway network: until when (ms since the epoch) the replica that made it may still be
/// starting its gateway. Other replicas wait for that gateway instead of removing the network
/// as a leftover (`claim.rs`, the reconcile).
pub const LABEL_STARTING_UNTIL: &str = "mcp-frontdoor.starting-until";

/// True while a network's start window (its [`LABEL_STARTING_UNTIL`]) is open.
pub fn start_window_open(labels: &HashMap<String, String>, now_ms: u64) -> bool {
    labels
        .get(LABEL_STARTING_UNTIL)
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|until| now_ms < until)
}

/// The environment variable that carries the per-gateway bearer token.
pub const TOKEN_ENV: &str = "MCP_GATEWAY_AUTH_TOKEN";

/// Names and label filters for one instance.
#[derive(Debug, Clone)]
pub struct Naming {
    pub instance: String,
}

impl Naming {
    /// Container (and network) name of a user's gateway: `mcp-fd-<slug>`, or
    /// `mcp-fd-<instance>-<slug>` when the instance is not `default`.
    pub fn object_name(&self, slug: &str) -> String {
        if self.instance == "default" {
            format!("mcp-fd-{slug}")
        } else {
            format!("mcp-fd-{}-{slug}", self.instance)
        }
    }

    /// Labels of a user's container and network (the container adds the catalog hash).
    pub fn labels(&self, slug: &str) -> HashMap<String, String> {
        let mut labels = self.instance_labels();
        labels.insert(LABEL_USER.to_string(), slug.to_string());
        labels
    }

    /// Labels of a managed object that belongs to no user (the init volume's helper).
    pub fn instance_labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_INSTANCE.to_string(), self.instance.clone()),
        ])
    }

    /// The filter that finds exactly this instance's objects.
    pub fn filter(&self) -> Vec<(String, String)> {
        vec![
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_INSTANCE.to_string(), self.instance.clone()),
        ]
    }

    /// The user slug of a managed object, if its labels and name agree (anything else is not
    /// ours to adopt).
    pub fn owner(&self, name: &str, labels: &HashMap<String, String>) -> Option<String> {
        if labels.get(LABEL_MANAGED).map(String::as_str) != Some("true")
            || labels.get(LABEL_INSTANCE) != Some(&self.instance)
        {
            return None;
        }
        let slug = labels.get(LABEL_USER)?;
        (self.object_name(slug) == name).then(|| slug.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_instance_unless_default() {
        let d = Naming {
            instance: "default".into(),
        };
        assert_eq!(d.object_name("alice"), "mcp-fd-alice");
        let t = Naming {
            instance: "t1".into(),
        };
        assert_eq!(t.object_name("alice"), "mcp-fd-t1-alice");
        let labels = t.labels("alice");
        assert_eq!(
            t.owner("mcp-fd-t1-alice", &labels).as_deref(),
            Some("alice")
        );
        assert_eq!(t.owner("mcp-fd-alice", &labels), None, "name must match");
        assert_eq!(d.owner("mcp-fd-t1-alice", &labels), None, "other instance");
    }
}
