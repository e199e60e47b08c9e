//! Keys for other purposes than sealing secrets, derived from the master key ring (HKDF-SHA256,
//! RFC 5869) so every replica that shares the master key derives the same ones, and HMAC-SHA256
//! (RFC 2104) to authenticate what replicas say to each other. RustCrypto's `hkdf` and `hmac`
//! do the work (checked against the RFCs' test vectors below); `subtle` compares MACs.

use super::keyring::KeyRing;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A derived 256-bit key; zeroed on drop.
pub type DerivedKey = Zeroizing<[u8; 32]>;

/// HMAC-SHA256 of `parts` (concatenated) under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length (a long one is hashed first), so this never fails; were
    // it to, a random MAC matches nothing and fails closed.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return rand::random();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// HKDF-SHA256 with a 32-byte output (one expand block).
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> DerivedKey {
    let mut okm = Zeroizing::new([0u8; 32]);
    // Expanding fails only past 255 blocks; 32 bytes is one.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut okm[..]);
    okm
}

/// Compares two MACs in time that does not depend on where they differ.
pub fn same_mac(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Salt of every derivation: fixed, so replicas agree without exchanging anything.
const SALT: &[u8] = b"mcp-frontdoor/derive/v1";

impl KeyRing {
    /// The key for `purpose` derived from each master key of the ring, current first (values
    /// made before a rotation still open under the older ones).
    pub fn derive(&self, purpose: &str) -> Vec<DerivedKey> {
        self.ids()
            .into_iter()
            .filter_map(|id| self.get(id))
            .map(|k| hkdf_sha256(k.bytes(), SALT, purpose.as_bytes()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 (short key) and 6 (key longer than a block).
        assert_eq!(
            hex(&hmac_sha256(
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn hkdf_matches_rfc_5869_case_1() {
        let okm = hkdf_sha256(
            &[0x0b; 22],
            &unhex("000102030405060708090a0b0c"),
            &unhex("f0f1f2f3f4f5f6f7f8f9"),
        );
        // The first 32 of the RFC's 42 bytes (one expand block).
        assert_eq!(
            hex(&okm[..]),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn purposes_and_keys_give_different_keys() {
        let a = KeyRing::single(super::super::MasterKey::from_bytes([7; 32]));
        let b = KeyRing::single(super::super::MasterKey::from_bytes([8; 32]));
        assert_ne!(a.derive("x")[0][..], a.derive("y")[0][..]);
        assert_ne!(a.derive("x")[0][..], b.derive("x")[0][..]);
        assert_eq!(a.derive("x")[0][..], a.derive("x")[0][..]);
        assert!(same_mac(b"abc", b"abc") && !same_mac(b"abc", b"abd") && !same_mac(b"a", b"ab"));
    }
}
