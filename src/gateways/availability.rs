//! Which of a user's servers the gateway can run. docker/mcp-gateway pulls and verifies the
//! image of every server it is told to enable and exits when one fails, so one missing or
//! refused image would take the user's whole gateway down. The front door checks first and
//! leaves such servers out of `--servers`, saying which and why in the gateway's status; the
//! others run.

use super::pulls::Pulls;
use crate::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// A server left out of a user's gateway, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Unavailable {
    pub server: String,
    pub reason: String,
}

/// docker/mcp-gateway's own rule (pkg/gateway/pull.go): while it verifies signatures (its
/// default; `--verify-signatures=false` turns it off) a Docker Hub `mcp/*` image must be
/// referenced by digest.
pub(super) fn refused_by_gateway(image: &str, gateway_args: &[String]) -> Option<String> {
    let verifies = !gateway_args
        .iter()
        .any(|a| a == "--verify-signatures=false");
    let path = image
        .strip_prefix("docker.io/")
        .or_else(|| image.strip_prefix("registry-1.docker.io/"))
        .or_else(|| image.strip_prefix("index.docker.io/"))
        .unwrap_or(image);
    (verifies && path.starts_with("mcp/") && !image.contains("@sha256:")).then(|| {
        format!("image `{image}` is not pinned by digest; docker/mcp-gateway refuses unpinned mcp/* images (pin it as {image}@sha256:<digest>)")
    })
}

/// The servers among `images` (server, image) that a gateway run with `gateway_args` could
/// not run: refused by the gateway's rule, or missing and not pullable (pulls shared with
/// other starts).
pub(super) async fn unavailable_servers(
    rt: &dyn Runtime,
    pulls: &Pulls,
    gateway_args: &[String],
    images: &[(String, String)],
    cancel: &CancellationToken,
) -> Vec<Unavailable> {
    let checks = images.iter().map(|(server, image)| async move {
        let reason = match refused_by_gateway(image, gateway_args) {
            Some(r) => Some(r),
            None => match rt.image(image).await {
                Ok(Some(_)) => None,
                Ok(None) => match pulls.pull(image, cancel).await {
                    Some(Ok(())) => None,
                    Some(Err(e)) => Some(format!("image `{image}` could not be pulled: {e}")),
                    None => Some(format!("image `{image}` was still being pulled")),
                },
                Err(e) => Some(format!("image `{image}` could not be checked: {e}")),
            },
        };
        reason.map(|reason| Unavailable {
            server: server.clone(),
            reason,
        })
    });
    let found: Vec<_> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    for u in &found {
        tracing::warn!(server = %u.server, reason = %u.reason, "server left out of the gateway");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::refused_by_gateway;

    #[test]
    fn unpinned_docker_hub_mcp_images_are_refused_while_signatures_are_verified() {
        let none: Vec<String> = Vec::new();
        assert!(refused_by_gateway("mcp/fetch:latest", &none).is_some());
        assert!(refused_by_gateway("docker.io/mcp/fetch", &none).is_some());
        assert!(refused_by_gateway("mcp/fetch@sha256:ef95", &none).is_none());
        assert!(refused_by_gateway("ghcr.io/mcp/fetch:1", &none).is_none());
        assert!(refused_by_gateway("mcp-test-stdio:dev", &none).is_none());
        let off = vec!["--verify-signatures=false".to_string()];
        assert!(refused_by_gateway("mcp/fetch:latest", &off).is_none());
    }

    /// The seeded example catalogs must start on the real gateway as they are.
    #[test]
    fn seeded_catalogs_name_no_image_the_gateway_refuses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/catalogs");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".yaml") || name.ends_with(".meta.yaml") {
                continue;
            }
            let text = std::fs::read(&path).unwrap();
            let cat = crate::catalog::Catalog::parse(&text, crate::catalog::Format::Yaml).unwrap();
            for (server, s) in &cat.registry {
                if let Some(image) = s.image() {
                    assert_eq!(refused_by_gateway(image, &[]), None, "{name}: {server}");
                }
                assert!(
                    s.get("volumes").is_none(),
                    "{name}: {server} mounts volumes"
                );
            }
        }
    }
}
