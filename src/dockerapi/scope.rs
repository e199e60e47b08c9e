//! What one gateway's endpoint may touch: its user, its network, its catalog's images, and
//! the server containers it created (known by id, so the common path needs no lookup).

use super::images::AllowedImages;
use crate::gateways::names::{LABEL_INSTANCE, LABEL_MANAGED, LABEL_USER};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};

/// On every server container: `server`, so the lifecycle can find and remove them by label.
pub const LABEL_ROLE: &str = "mcp-frontdoor.role";
/// The value of [`LABEL_ROLE`] on server containers.
pub const ROLE_SERVER: &str = "server";
/// On every server container: the gateway container that created it.
pub const LABEL_GATEWAY: &str = "mcp-frontdoor.gateway";

/// Swarm's label on a task's container naming its service (clients cannot name containers,
/// and the front door's own labels, which must match too, are replaced on theirs).
const SWARM_SERVICE_LABEL: &str = "com.docker.swarm.service.name";

/// Ids remembered per gateway; older ones fall back to a lookup through the engine.
const KNOWN_IDS: usize = 1024;

/// One gateway's view.
#[derive(Debug)]
pub struct Scope {
    pub slug: String,
    pub instance: String,
    /// The gateway container's name, which is also its network's.
    pub gateway: String,
    pub images: AllowedImages,
    /// Forced onto every server container.
    pub labels: Vec<(String, String)>,
    known: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Scope {
    pub fn new(slug: &str, instance: &str, gateway: &str, images: AllowedImages) -> Self {
        Self {
            labels: server_labels(instance, slug, gateway),
            slug: slug.to_string(),
            instance: instance.to_string(),
            gateway: gateway.to_string(),
            images,
            known: Mutex::new(Known::default()),
        }
    }

    /// Remembers a server container this gateway created (full id).
    pub fn remember(&self, id: &str) {
        let mut k = self.known.lock();
        if k.ids.insert(id.to_string()) {
            k.order.push_back(id.to_string());
            if k.order.len() > KNOWN_IDS {
                if let Some(old) = k.order.pop_front() {
                    k.ids.remove(&old);
                }
            }
        }
    }

    /// Whether `id` is the full id of a server container this gateway created.
    pub fn knows(&self, id: &str) -> bool {
        self.known.lock().ids.contains(id)
    }

    /// Whether labels mark a server container of this user and instance (one this gateway,
    /// or an earlier gateway of the same user, created).
    pub fn owns(&self, labels: &HashMap<String, String>) -> bool {
        labels.get(LABEL_ROLE).map(String::as_str) == Some(ROLE_SERVER)
            && labels.get(LABEL_INSTANCE) == Some(&self.instance)
            && labels.get(LABEL_USER) == Some(&self.slug)
    }

    /// Whether a container (its name and labels) is this gateway itself: the container of
    /// that name, or on Swarm the task container of the service of that name
    /// (`<service>.<slot>.<task id>`, labelled with the service's name by Swarm).
    pub fn is_gateway(&self, name: &str, labels: &HashMap<String, String>) -> bool {
        let name = name.trim_start_matches('/');
        let task_of_service = name
            .strip_prefix(self.gateway.as_str())
            .is_some_and(|rest| rest.starts_with('.'))
            && labels.get(SWARM_SERVICE_LABEL) == Some(&self.gateway);
        (name == self.gateway || task_of_service)
            && labels.get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && labels.get(LABEL_INSTANCE) == Some(&self.instance)
            && labels.get(LABEL_USER) == Some(&self.slug)
    }
}

/// The labels of a user's server containers, and the filter that finds them.
pub fn server_labels(instance: &str, slug: &str, gateway: &str) -> Vec<(String, String)> {
    let mut l = server_filter(instance, slug);
    l.push((LABEL_GATEWAY.to_string(), gateway.to_string()));
    l
}

/// The label filter of every server container of `slug` in `instance`.
pub fn server_filter(instance: &str, slug: &str) -> Vec<(String, String)> {
    let mut f = instance_servers_filter(instance);
    f.push((LABEL_USER.to_string(), slug.to_string()));
    f
}

/// The label filter of every server container of every user in `instance`.
pub fn instance_servers_filter(instance: &str) -> Vec<(String, String)> {
    vec![
        (LABEL_INSTANCE.to_string(), instance.to_string()),
        (LABEL_ROLE.to_string(), ROLE_SERVER.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(user: &str, service: Option<&str>) -> HashMap<String, String> {
        let mut l = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_INSTANCE.to_string(), "i1".to_string()),
            (LABEL_USER.to_string(), user.to_string()),
        ]);
        if let Some(s) = service {
            l.insert(SWARM_SERVICE_LABEL.into(), s.into());
        }
        l
    }

    #[test]
    fn the_gateway_is_its_container_or_its_swarm_task_and_nobody_elses() {
        let s = Scope::new("alice", "i1", "mcp-fd-i1-alice", AllowedImages::default());
        let own = labels("alice", None);
        assert!(s.is_gateway("/mcp-fd-i1-alice", &own));
        let task = labels("alice", Some("mcp-fd-i1-alice"));
        assert!(s.is_gateway("/mcp-fd-i1-alice.1.q3k0x9ilm2s4v8w1a5d7f6g2h", &task));
        // A task of another service, even one whose name starts like alice's.
        let longer = labels("alice", Some("mcp-fd-i1-alice2"));
        assert!(!s.is_gateway("/mcp-fd-i1-alice2.1.q3k0x9ilm2s4v8w1a5d7f6g2h", &longer));
        assert!(
            !s.is_gateway("/mcp-fd-i1-alice.1.x", &own),
            "no service label"
        );
        // Bob's task, or a container claiming alice's service without our labels.
        let bob = labels("bob", Some("mcp-fd-i1-alice"));
        assert!(!s.is_gateway("/mcp-fd-i1-alice.1.x", &bob));
        let bare = HashMap::from([(SWARM_SERVICE_LABEL.to_string(), "mcp-fd-i1-alice".into())]);
        assert!(!s.is_gateway("/mcp-fd-i1-alice.1.x", &bare));
    }
}
