//! Ed25519 signatures (RFC 8032) for socp's own identity and session features.
//!
//! Verification is `verify_strict`: it refuses non-canonical and small-order
//! encodings and malleable signatures, so a signature is valid for exactly one
//! (key, message) pair.

use core::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{CryptoError, SignatureError};

/// Length of an Ed25519 seed (the RFC 8032 private key) in bytes.
pub const SEED_LEN: usize = 32;
/// Length of an Ed25519 public key in bytes.
pub const PUBLIC_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 signing key. Zeroized on drop; `Debug` shows only the public key.
#[derive(Clone)]
pub struct Ed25519Identity {
    key: SigningKey,
}

impl Ed25519Identity {
    /// The key with this 32-byte seed.
    #[must_use]
    pub fn from_seed(seed: [u8; SEED_LEN]) -> Self {
        let seed = Zeroizing::new(seed);
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A fresh key: a 32-byte seed drawn from `rng` (what `SigningKey::generate` does;
    /// that needs an `ed25519-dalek` feature the workspace does not enable).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        rng.fill_bytes(seed.as_mut_slice());
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The seed, for storing in the [keystore](crate::crypto::keystore).
    #[must_use]
    pub fn seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// Signs `msg` (deterministic, RFC 8032).
    #[must_use]
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(msg).to_bytes()
    }

    /// The public key.
    #[must_use]
    pub fn public(&self) -> Ed25519Public {
        Ed25519Public {
            key: self.key.verifying_key(),
        }
    }
}

impl fmt::Debug for Ed25519Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Identity")
            .field("public", &self.public())
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// An Ed25519 public key. `Debug` shows it in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ed25519Public {
    key: VerifyingKey,
}

impl Ed25519Public {
    /// Parses a 32-byte compressed point.
    ///
    /// # Errors
    /// [`CryptoError::InvalidLength`] unless 32 bytes;
    /// [`CryptoError::InvalidPublicKey`] if they do not decode to a curve point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: &[u8; PUBLIC_LEN] =
            bytes.try_into().map_err(|_| CryptoError::InvalidLength {
                expected: PUBLIC_LEN,
                got: bytes.len(),
            })?;
        VerifyingKey::from_bytes(array)
            .map(|key| Self { key })
            .map_err(|_| CryptoError::InvalidPublicKey)
    }

    /// The 32-byte encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; PUBLIC_LEN] {
        self.key.as_bytes()
    }

    /// Verifies `sig` over `msg` with `verify_strict`.
    ///
    /// # Errors
    /// [`SignatureError::Invalid`] for a wrong, malformed, malleable or non-canonical
    /// signature, a signature that is not 64 bytes, or a weak (small-order) key.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let sig = Signature::from_slice(sig).map_err(|_| SignatureError::Invalid)?;
        self.key
            .verify_strict(msg, &sig)
            .map_err(|_| SignatureError::Invalid)
    }
}

impl fmt::Debug for Ed25519Public {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519Public(")?;
        for byte in self.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc8032_test_1() {
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .try_into()
                .unwrap();
        let id = Ed25519Identity::from_seed(seed);
        assert_eq!(
            id.public().as_bytes().to_vec(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let sig = id.sign(b"");
        assert_eq!(
            sig.to_vec(),
            hex(concat!(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
                "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            ))
        );
        assert_eq!(*id.seed(), seed);
        assert!(id.public().verify(b"", &sig).is_ok());
    }

    #[test]
    fn rejects_tampering_and_bad_lengths() {
        let id = Ed25519Identity::from_seed([3; 32]);
        let sig = id.sign(b"msg");
        let mut bad = sig;
        bad[10] ^= 1;
        assert_eq!(
            id.public().verify(b"msg", &bad),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            id.public().verify(b"msh", &sig),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            id.public().verify(b"msg", &sig[..63]),
            Err(SignatureError::Invalid)
        );
        let other = Ed25519Identity::from_seed([4; 32]).public();
        assert_eq!(other.verify(b"msg", &sig), Err(SignatureError::Invalid));
        assert_eq!(
            Ed25519Public::from_bytes(&[0; 31]),
            Err(CryptoError::InvalidLength {
                expected: 32,
                got: 31
            })
        );
    }

    #[test]
    fn debug_redacts_the_seed() {
        let id = Ed25519Identity::from_seed([0xab; 32]);
        let text = format!("{id:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.contains("abab"), "{text}");
        assert!(text.contains(&format!("{:02x}", id.public().as_bytes()[0])));
    }

    #[test]
    fn generate_uses_the_rng() {
        let mut rng = crate::crypto::rng::rng_from_seed([1; 32]);
        let a = Ed25519Identity::generate(&mut rng);
        let b = Ed25519Identity::generate(&mut rng);
        assert_ne!(a.public(), b.public());
        let mut rng = crate::crypto::rng::rng_from_seed([1; 32]);
        assert_eq!(Ed25519Identity::generate(&mut rng).public(), a.public());
    }
}
