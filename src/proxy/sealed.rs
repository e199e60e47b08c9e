//! MCP session ids that travel with the client: the front door hands out
//! `fd1.<base64url(nonce ‖ AES-256-GCM(upstream id))>`, with the user's slug in the associated
//! data, and opens it on the way in. Any replica that shares the master key opens it (the key
//! is derived from it, `secrets::KeyRing::derive`), so a session begun on one replica goes on
//! on another with nothing shared but the key. An id that does not open for the caller (another
//! user's, tampered with, truncated, sealed under an unknown key, or a raw upstream id) is the
//! same 404 as an unknown session, and never reaches a gateway.

use aes_gcm::aead::{Aead, AeadInOut, Generate, KeyInit, Nonce, Payload, Tag};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;

/// The derivation purpose of the session key (changing it invalidates every session).
const PURPOSE: &str = "mcp-frontdoor/session-id/v1";
/// Marks a sealed id (and its format version).
const PREFIX: &str = "fd1.";
/// AES-GCM's nonce length.
const NONCE_LEN: usize = 12;
/// Longest upstream id sealed; gateways use UUIDs or 32 hex digits. A longer one is not
/// handed on (the client gets no session id, as from a gateway that sent none).
pub const MAX_UPSTREAM_ID: usize = 512;

/// Seals and opens session ids; cheap to share.
pub struct SessionSeal {
    /// Current key first; the others open ids sealed before a master key rotation.
    ciphers: Vec<Aes256Gcm>,
}

const AAD_PREFIX: &[u8] = b"mcp-frontdoor/session/v1\0";
/// AES-GCM's tag length.
const TAG_LEN: usize = 16;
/// The longest id that opens: nonce, the longest upstream id, tag (base64 of it is about
/// 720 characters).
const MAX_RAW: usize = NONCE_LEN + MAX_UPSTREAM_ID + TAG_LEN;

/// The associated data for `slug` (user slugs are at most 40 bytes; a longer one, which no
/// caller has, goes to the heap), handed to `f`.
fn with_aad<T>(slug: &str, f: impl FnOnce(&[u8]) -> T) -> T {
    let mut stack = [0u8; AAD_PREFIX.len() + 64];
    let len = AAD_PREFIX.len() + slug.len();
    if len <= stack.len() {
        stack[..AAD_PREFIX.len()].copy_from_slice(AAD_PREFIX);
        stack[AAD_PREFIX.len()..len].copy_from_slice(slug.as_bytes());
        f(&stack[..len])
    } else {
        f(&[AAD_PREFIX, slug.as_bytes()].concat())
    }
}

impl SessionSeal {
    /// Keys derived from the secrets master key ring (the same on every replica).
    pub fn from_keyring(ring: &crate::secrets::KeyRing) -> Self {
        let ciphers = ring
            .derive(PURPOSE)
            .iter()
            .map(|k| Aes256Gcm::new((&**k).into()))
            .collect();
        Self { ciphers }
    }

    /// A key of this process only (sessions do not survive a restart nor move between
    /// replicas); `None` when the system's RNG fails.
    pub fn random() -> Option<Self> {
        crate::secrets::MasterKey::generate()
            .ok()
            .map(|k| Self::from_keyring(&crate::secrets::KeyRing::single(k)))
    }

    /// The id handed to `slug`'s client for the gateway's `upstream` id; `None` when the
    /// upstream id is too long or the RNG fails (the header is then left out).
    pub fn seal(&self, slug: &str, upstream: &str) -> Option<String> {
        if upstream.len() > MAX_UPSTREAM_ID {
            return None;
        }
        let nonce = Nonce::<Aes256Gcm>::try_generate().ok()?;
        let ct = with_aad(slug, |aad| {
            self.ciphers
                .first()?
                .encrypt(
                    &nonce,
                    Payload {
                        msg: upstream.as_bytes(),
                        aad,
                    },
                )
                .ok()
        });
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&ct?);
        Some(format!("{PREFIX}{}", B64.encode(raw)))
    }

    /// The upstream id inside `sealed` when it was sealed for `slug`; `None` otherwise.
    /// Decoded and decrypted on the stack: every request of a session pays this.
    pub fn open(&self, slug: &str, sealed: &str) -> Option<String> {
        let mut raw = [0u8; MAX_RAW];
        // Longer than any id this seals: `decode_slice` refuses it for want of room.
        let len = B64
            .decode_slice(sealed.strip_prefix(PREFIX)?, &mut raw)
            .ok()?;
        if len <= NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = raw[..len].split_at_mut(NONCE_LEN);
        let nonce = Nonce::<Aes256Gcm>::try_from(&*nonce).ok()?;
        let (ct, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let tag = Tag::<Aes256Gcm>::try_from(&*tag).ok()?;
        // Each key decrypts a fresh copy: a failed attempt may leave the buffer changed.
        let mut plain = [0u8; MAX_UPSTREAM_ID];
        let plain = &mut plain[..ct.len()];
        let opened = with_aad(slug, |aad| {
            self.ciphers.iter().any(|c| {
                plain.copy_from_slice(ct);
                c.decrypt_inout_detached(&nonce, aad, (&mut *plain).into(), &tag)
                    .is_ok()
            })
        });
        if !opened {
            return None;
        }
        std::str::from_utf8(plain).ok().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{KeyRing, MasterKey};

    fn ring(b: u8) -> KeyRing {
        KeyRing::single(MasterKey::from_bytes([b; 32]))
    }

    #[test]
    fn round_trip_on_another_replica_with_the_same_key() {
        let (a, b) = (
            SessionSeal::from_keyring(&ring(1)),
            SessionSeal::from_keyring(&ring(1)),
        );
        let id = a.seal("alice", "3f2a-upstream").unwrap();
        assert!(id.starts_with("fd1.") && !id.contains("3f2a"));
        assert!(
            id.bytes().all(|c| (0x21..0x7f).contains(&c)),
            "a header value"
        );
        assert_eq!(b.open("alice", &id).as_deref(), Some("3f2a-upstream"));
        assert_ne!(a.seal("alice", "x"), a.seal("alice", "x"), "fresh nonce");
    }

    #[test]
    fn another_user_another_key_tampering_and_raw_ids_do_not_open() {
        let s = SessionSeal::from_keyring(&ring(1));
        let id = s.seal("alice", "sess-1").unwrap();
        assert_eq!(s.open("bob", &id), None, "another user's id");
        assert_eq!(SessionSeal::from_keyring(&ring(2)).open("alice", &id), None);
        assert_eq!(SessionSeal::random().unwrap().open("alice", &id), None);
        assert_eq!(s.open("alice", "sess-1"), None, "a raw upstream id");
        assert_eq!(s.open("alice", &id[..id.len() - 1]), None, "truncated");
        assert_eq!(s.open("alice", &id[..10]), None, "truncated to the nonce");
        assert_eq!(s.open("alice", "fd1."), None);
        assert_eq!(s.open("alice", "fd1.!!!"), None);
        // Every single-character change of the body is refused.
        let body = &id[4..];
        for i in 0..body.len() {
            let mut t: Vec<u8> = body.bytes().collect();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = format!("fd1.{}", String::from_utf8(t).unwrap());
            if t != id {
                assert_eq!(s.open("alice", &t), None, "changed at {i}");
            }
        }
        assert_eq!(s.seal("alice", &"x".repeat(MAX_UPSTREAM_ID + 1)), None);
        // The longest id that is sealed opens; one byte more of ciphertext does not fit.
        let longest = "y".repeat(MAX_UPSTREAM_ID);
        let id = s.seal("alice", &longest).unwrap();
        assert_eq!(s.open("alice", &id).as_deref(), Some(longest.as_str()));
        let raw = B64.decode(&id[4..]).unwrap();
        let longer = format!("fd1.{}", B64.encode([&raw[..], &[0u8][..]].concat()));
        assert_eq!(s.open("alice", &longer), None);
        // A slug longer than the stack's room for the associated data still seals and opens.
        let slug = "s".repeat(100);
        let id = s.seal(&slug, "z").unwrap();
        assert_eq!(s.open(&slug, &id).as_deref(), Some("z"));
        assert_eq!(s.open(&slug[..99], &id), None);
    }

    #[test]
    fn ids_sealed_before_a_rotation_still_open() {
        let old = MasterKey::from_bytes([1; 32]);
        let new = MasterKey::from_bytes([3; 32]);
        let before = SessionSeal::from_keyring(&KeyRing::single(old.clone()));
        let id = before.seal("alice", "s").unwrap();
        let after = SessionSeal::from_keyring(&KeyRing::new(vec![new, old]).unwrap());
        assert_eq!(after.open("alice", &id).as_deref(), Some("s"));
    }
}
