//! How replicas know each other: every activity question carries
//! `Authorization: FrontdoorPeer t=<ms>,n=<nonce>,m=<mac>`, the MAC an HMAC-SHA256 over method,
//! path, time and nonce under a key derived from the secrets master key (which only the
//! replicas hold). A question older than [`WINDOW`] or whose nonce was seen already (a replay)
//! is refused; the answer carries `x-frontdoor-peer-mac`, an HMAC over the question's nonce
//! and the body, so an answer cannot be made up or moved to another question either. This is
//! enough on its own: in compose the front door sits on every user network, so gateways can
//! reach the listener (README: Replicas).

use crate::secrets::{hmac_sha256, same_mac, DerivedKey, KeyRing};
use parking_lot::Mutex;
use std::collections::HashMap;

/// How far a question's time may be from ours (clock skew plus transit).
pub const WINDOW_MS: u64 = 30_000;
/// The derivation purpose of the peer key.
const PURPOSE: &str = "mcp-frontdoor/replica-peer/v1";
/// The `Authorization` scheme.
const SCHEME: &str = "FrontdoorPeer ";
/// Most nonces remembered at once (questions within one window; a flood beyond this is
/// refused rather than remembered).
const MAX_NONCES: usize = 100_000;

/// Signs questions and answers, checks them.
pub struct PeerAuth {
    /// Current key first (signing); all of them verify, across a master key rotation.
    keys: Vec<DerivedKey>,
    /// Nonces seen within the window, with their time.
    seen: Mutex<HashMap<String, u64>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a question was refused (logged, never sent back).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Missing,
    Malformed,
    Stale,
    Replayed,
    BadMac,
}

impl PeerAuth {
    pub fn from_keyring(ring: &KeyRing) -> Self {
        Self {
            keys: ring.derive(PURPOSE),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, key: &DerivedKey, parts: &[&[u8]]) -> [u8; 32] {
        hmac_sha256(&key[..], parts)
    }

    /// The `Authorization` value for `GET path` at `now_ms`, and its nonce.
    pub fn sign(&self, path: &str, now_ms: u64) -> (String, String) {
        let nonce = hex(&rand::random::<[u8; 16]>());
        let t = now_ms.to_string();
        let m = self.mac(
            &self.keys[0],
            &[
                b"GET\n",
                path.as_bytes(),
                b"\n",
                t.as_bytes(),
                b"\n",
                nonce.as_bytes(),
            ],
        );
        (format!("{SCHEME}t={t},n={nonce},m={}", hex(&m)), nonce)
    }

    /// Checks a question's `Authorization`; returns its nonce.
    pub fn verify(&self, header: Option<&str>, path: &str, now_ms: u64) -> Result<String, Refused> {
        let v = header.ok_or(Refused::Missing)?;
        let v = v.strip_prefix(SCHEME).ok_or(Refused::Malformed)?;
        let mut t = None;
        let mut n = None;
        let mut m = None;
        for part in v.split(',') {
            match part.split_once('=') {
                Some(("t", x)) => t = Some(x),
                Some(("n", x)) => n = Some(x),
                Some(("m", x)) => m = Some(x),
                _ => return Err(Refused::Malformed),
            }
        }
        let (t, n, m) = (
            t.ok_or(Refused::Malformed)?,
            n.ok_or(Refused::Malformed)?,
            m.ok_or(Refused::Malformed)?,
        );
        let time: u64 = t.parse().map_err(|_| Refused::Malformed)?;
        if n.len() != 32 || unhex(n).is_none() {
            return Err(Refused::Malformed);
        }
        let mac = unhex(m).ok_or(Refused::Malformed)?;
        let good = self.keys.iter().any(|k| {
            let want = self.mac(
                k,
                &[
                    b"GET\n",
                    path.as_bytes(),
                    b"\n",
                    t.as_bytes(),
                    b"\n",
                    n.as_bytes(),
                ],
            );
            same_mac(&want, &mac)
        });
        if !good {
            return Err(Refused::BadMac);
        }
        if time.abs_diff(now_ms) > WINDOW_MS {
            return Err(Refused::Stale);
        }
        let mut seen = self.seen.lock();
        seen.retain(|_, at| now_ms.saturating_sub(*at) <= 2 * WINDOW_MS);
        if seen.len() >= MAX_NONCES || seen.contains_key(n) {
            return Err(Refused::Replayed);
        }
        seen.insert(n.to_string(), now_ms);
        Ok(n.to_string())
    }

    /// The MAC of an answer `body` to the question with `nonce`.
    pub fn sign_answer(&self, nonce: &str, body: &[u8]) -> String {
        hex(&self.mac(&self.keys[0], &[b"answer\n", nonce.as_bytes(), b"\n", body]))
    }

    /// Whether `mac` is the MAC of `body` answering the question with `nonce`.
    pub fn verify_answer(&self, nonce: &str, body: &[u8], mac: &str) -> bool {
        let Some(mac) = unhex(mac) else {
            return false;
        };
        self.keys.iter().any(|k| {
            same_mac(
                &self.mac(k, &[b"answer\n", nonce.as_bytes(), b"\n", body]),
                &mac,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MasterKey;

    fn auth(b: u8) -> PeerAuth {
        PeerAuth::from_keyring(&KeyRing::single(MasterKey::from_bytes([b; 32])))
    }

    #[test]
    fn a_signed_question_passes_once() {
        let (a, b) = (auth(1), auth(1));
        let (h, nonce) = a.sign("/internal/v1/activity/alice", 1_000_000);
        assert_eq!(
            b.verify(Some(&h), "/internal/v1/activity/alice", 1_000_500),
            Ok(nonce)
        );
        assert_eq!(
            b.verify(Some(&h), "/internal/v1/activity/alice", 1_000_600),
            Err(Refused::Replayed)
        );
    }

    #[test]
    fn unsigned_other_key_other_path_stale_and_tampered_questions_are_refused() {
        let (a, b) = (auth(1), auth(1));
        let path = "/internal/v1/activity/alice";
        assert_eq!(b.verify(None, path, 0), Err(Refused::Missing));
        assert_eq!(b.verify(Some("Bearer x"), path, 0), Err(Refused::Malformed));
        let (h, _) = auth(2).sign(path, 1_000_000);
        assert_eq!(b.verify(Some(&h), path, 1_000_000), Err(Refused::BadMac));
        let (h, _) = a.sign(path, 1_000_000);
        assert_eq!(
            b.verify(Some(&h), "/internal/v1/activity/bob", 1_000_000),
            Err(Refused::BadMac),
            "a question about alice does not ask about bob"
        );
        assert_eq!(
            b.verify(Some(&h), path, 1_000_000 + WINDOW_MS + 1),
            Err(Refused::Stale)
        );
        let tampered = h.replace("t=1000000", "t=1000001");
        assert_eq!(
            b.verify(Some(&tampered), path, 1_000_000),
            Err(Refused::BadMac)
        );
    }

    #[test]
    fn answers_are_bound_to_their_question_and_body() {
        let a = auth(1);
        let mac = a.sign_answer("n1", b"{\"open_streams\":1}");
        assert!(auth(1).verify_answer("n1", b"{\"open_streams\":1}", &mac));
        assert!(!a.verify_answer("n2", b"{\"open_streams\":1}", &mac));
        assert!(!a.verify_answer("n1", b"{\"open_streams\":0}", &mac));
        assert!(!auth(2).verify_answer("n1", b"{\"open_streams\":1}", &mac));
    }
}
