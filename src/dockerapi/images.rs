//! Image references as the engine resolves them, so `alpine`, `docker.io/library/alpine:latest`
//! and `index.docker.io/library/alpine` are one image, and a tag is never taken for a digest.

/// A reference in the engine's canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry/path`, e.g. `docker.io/library/alpine`.
    pub repo: String,
    /// `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference the way the engine does (the syntax check is
    /// `crate::catalog::check_image_ref`); `None` for anything that is not one, image ids
    /// (`sha256:...`, bare 64 hex) included: only references a catalog names are allowed.
    pub fn parse(r: &str) -> Option<Self> {
        crate::catalog::image_ref::check_image_ref(r).ok()?;
        if r.starts_with("sha256:") {
            return None;
        }
        let (rest, digest) = match r.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (r, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, path.to_string())
            }
            _ => ("docker.io", name.to_string()),
        };
        let domain = match domain {
            "index.docker.io" | "registry-1.docker.io" => "docker.io",
            d => d,
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Some(Self {
            repo: format!("{domain}/{path}"),
            tag,
            digest,
        })
    }

    /// The reference of a pull (`fromImage` plus `tag`, which may hold a digest).
    pub fn of_pull(from_image: &str, tag: Option<&str>) -> Option<Self> {
        match tag.filter(|t| !t.is_empty()) {
            Some(t) if t.contains(':') => Self::parse(&format!("{from_image}@{t}")),
            Some(t) => Self::parse(&format!("{from_image}:{t}")),
            None => Self::parse(from_image),
        }
    }

    /// Whether a request for `self` gets the image `allowed` names: the same repository, and
    /// the pinned digest when `allowed` pins one, else the same tag (and no digest, which
    /// could be any content).
    pub fn is_allowed_by(&self, allowed: &ImageRef) -> bool {
        if self.repo != allowed.repo {
            return false;
        }
        match &allowed.digest {
            Some(d) => self.digest.as_ref() == Some(d),
            None => self.digest.is_none() && self.tag == allowed.tag,
        }
    }
}

/// The images one gateway may use: those its user's merged catalog names.
#[derive(Debug, Clone, Default)]
pub struct AllowedImages(Vec<ImageRef>);

impl AllowedImages {
    /// From the catalog's image references (unparsable ones allow nothing).
    pub fn new<'a>(refs: impl IntoIterator<Item = &'a str>) -> Self {
        Self(refs.into_iter().filter_map(ImageRef::parse).collect())
    }

    /// Whether `requested` (a reference as a client sent it) is one of them.
    pub fn allows(&self, requested: &str) -> bool {
        ImageRef::parse(requested).is_some_and(|r| self.allows_ref(&r))
    }

    /// The same for a parsed reference.
    pub fn allows_ref(&self, r: &ImageRef) -> bool {
        self.0.iter().any(|a| r.is_allowed_by(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_short_forms_are_one_image() {
        let a = ImageRef::parse("alpine").unwrap();
        assert_eq!(a.repo, "docker.io/library/alpine");
        assert_eq!(a.tag.as_deref(), Some("latest"));
        for same in [
            "alpine:latest",
            "docker.io/library/alpine",
            "index.docker.io/library/alpine:latest",
            "library/alpine",
        ] {
            assert_eq!(ImageRef::parse(same).unwrap(), a, "{same}");
        }
        assert_eq!(
            ImageRef::parse("mcp/fetch:1").unwrap().repo,
            "docker.io/mcp/fetch"
        );
        assert_eq!(
            ImageRef::parse("ghcr.io/o/i:2").unwrap().repo,
            "ghcr.io/o/i"
        );
        assert_eq!(
            ImageRef::parse("localhost:5000/i").unwrap().repo,
            "localhost:5000/i"
        );
    }

    #[test]
    fn ids_and_junk_are_no_reference() {
        assert!(ImageRef::parse(D).is_none());
        assert!(ImageRef::parse(&"a".repeat(64)).is_none());
        assert!(ImageRef::parse("").is_none());
        assert!(ImageRef::parse("Alpine").is_none());
        assert!(ImageRef::parse("a b").is_none());
    }

    #[test]
    fn tags_and_digests_match_as_pinned() {
        let allowed = AllowedImages::new(["mcp-test-stdio:dev", &format!("mcp/fetch@{D}")]);
        assert!(allowed.allows("mcp-test-stdio:dev"));
        assert!(allowed.allows("docker.io/library/mcp-test-stdio:dev"));
        assert!(!allowed.allows("mcp-test-stdio"), "another tag");
        assert!(!allowed.allows("mcp-test-stdio:latest"));
        assert!(
            !allowed.allows(&format!("mcp-test-stdio@{D}")),
            "a digest could be any content"
        );
        assert!(allowed.allows(&format!("docker.io/mcp/fetch@{D}")));
        assert!(allowed.allows(&format!("mcp/fetch:1@{D}")));
        assert!(!allowed.allows("mcp/fetch:latest"), "pinned: tags refused");
        assert!(!allowed.allows("evil/mcp-test-stdio:dev"));
        assert!(!allowed.allows("ubuntu"));
    }

    #[test]
    fn pulls_combine_image_and_tag() {
        let allowed = AllowedImages::new([format!("mcp/fetch@{D}").as_str(), "a/b:1"]);
        let pull = |i: &str, t: Option<&str>| {
            ImageRef::of_pull(i, t).is_some_and(|r| allowed.allows_ref(&r))
        };
        assert!(pull("docker.io/mcp/fetch", Some(D)));
        assert!(pull("a/b", Some("1")));
        assert!(pull("a/b:1", None));
        assert!(!pull("a/b", Some("2")));
        assert!(!pull("a/b", None), "no tag is latest");
    }
}
