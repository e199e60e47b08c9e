//! Content digests of catalogs and overrides, independent of key order and formatting.
//!
//! Encoding (v1): every value is a type tag byte followed by its content; strings and numbers
//! are length-prefixed (u64 LE) UTF-8; maps are written with keys sorted bytewise. Reordering
//! keys in a file therefore does not change a digest (and does not restart a gateway), while
//! any change of content does.

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::model::Catalog;
use super::overrides::{Override, Overrides};

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// A value together with the digest of its content, computed once when it is loaded.
#[derive(Clone, Debug)]
pub struct Digested<T> {
    value: Arc<T>,
    digest: Digest,
}

impl<T: CanonicalHash> Digested<T> {
    /// Wraps a value and computes its digest.
    pub fn new(value: T) -> Self {
        Self::from_arc(Arc::new(value))
    }

    /// Wraps a shared value and computes its digest.
    pub fn from_arc(value: Arc<T>) -> Self {
        let mut h = Sha256::new();
        value.canonical_hash(&mut h);
        Digested {
            value,
            digest: h.finalize().into(),
        }
    }
}

impl<T> Digested<T> {
    /// The wrapped value.
    pub fn value(&self) -> &Arc<T> {
        &self.value
    }

    /// The digest of the value's canonical encoding.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

/// Feeds a canonical, order-independent encoding of `self` into a hasher.
pub trait CanonicalHash {
    /// Writes the canonical encoding.
    fn canonical_hash(&self, h: &mut Sha256);
}

pub(crate) fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

fn put_map(h: &mut Sha256, m: &Map<String, Value>) {
    h.update(b"{");
    h.update((m.len() as u64).to_le_bytes());
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_unstable();
    for k in keys {
        put_str(h, k);
        put_value(h, &m[k]);
    }
}

fn put_value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(true) => h.update(b"t"),
        Value::Bool(false) => h.update(b"f"),
        Value::Number(n) => {
            h.update(b"#");
            put_str(h, &n.to_string());
        }
        Value::String(s) => {
            h.update(b"s");
            put_str(h, s);
        }
        Value::Array(a) => {
            h.update(b"[");
            h.update((a.len() as u64).to_le_bytes());
            for x in a {
                put_value(h, x);
            }
        }
        Value::Object(m) => put_map(h, m),
    }
}

fn put_opt(h: &mut Sha256, s: Option<&str>) {
    match s {
        None => h.update(b"-"),
        Some(s) => {
            h.update(b"+");
            put_str(h, s);
        }
    }
}

impl CanonicalHash for Catalog {
    fn canonical_hash(&self, h: &mut Sha256) {
        h.update(b"catalog/v1");
        put_opt(h, self.name.as_deref());
        put_opt(h, self.display_name.as_deref());
        put_map(h, &self.extra);
        h.update((self.registry.len() as u64).to_le_bytes());
        let mut names: Vec<&String> = self.registry.keys().collect();
        names.sort_unstable();
        for n in names {
            put_str(h, n);
            put_map(h, &self.registry[n]);
        }
    }
}

impl CanonicalHash for Overrides {
    fn canonical_hash(&self, h: &mut Sha256) {
        h.update(b"overrides/v1");
        h.update((self.0.len() as u64).to_le_bytes());
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort_unstable();
        for n in names {
            put_str(h, n);
            match &self.0[n] {
                Override::Enabled(true) => h.update(b"t"),
                Override::Enabled(false) => h.update(b"f"),
                Override::Patch(p) => put_map(h, p),
            }
        }
    }
}

/// Lower-case hex of a digest.
pub fn to_hex(d: &Digest) -> String {
    use std::fmt::Write;
    d.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::format::Format;

    fn digest_of(yaml: &str) -> Digest {
        *Digested::new(Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap()).digest()
    }

    #[test]
    fn key_order_does_not_matter_content_does() {
        let a = digest_of("name: x\nregistry:\n  a: {image: i, t: 1}\n  b: {image: j}\n");
        let b = digest_of("registry:\n  b: {image: j}\n  a: {t: 1, image: i}\nname: x\n");
        let c = digest_of("name: x\nregistry:\n  a: {image: i, t: 2}\n  b: {image: j}\n");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn encoding_is_unambiguous() {
        // "ab" + "c" must not collide with "a" + "bc".
        let a = digest_of("registry:\n  s: {ab: c}\n");
        let b = digest_of("registry:\n  s: {a: bc}\n");
        assert_ne!(a, b);
        let s = digest_of("registry:\n  s: {v: '1'}\n");
        let n = digest_of("registry:\n  s: {v: 1}\n");
        assert_ne!(s, n);
    }

    #[test]
    fn hex_is_64_lowercase_chars() {
        let h = to_hex(&digest_of("registry: {}\n"));
        assert_eq!(h.len(), 64);
        assert!(h
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
