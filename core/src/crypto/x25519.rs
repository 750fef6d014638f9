//! X25519 key agreement (RFC 7748) for socp's session handshakes.
//!
//! [`X25519Secret::diffie_hellman`] refuses the all-zero shared secret that a
//! low-order peer key forces (RFC 7748 §6.1 "MAY check"): such a result is known to
//! everyone, so accepting it would let an active attacker fix the session key.

use core::fmt;

use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::CryptoError;

/// Length of X25519 keys and shared secrets in bytes.
pub const KEY_LEN: usize = 32;

/// An X25519 private key. Zeroized on drop; `Debug` shows only the public key.
#[derive(Clone)]
pub struct X25519Secret {
    secret: StaticSecret,
}

impl X25519Secret {
    /// A fresh secret from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self {
            secret: StaticSecret::random_from_rng(rng),
        }
    }

    /// The secret with these bytes (clamped when used, as RFC 7748 says).
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let bytes = Zeroizing::new(bytes);
        Self {
            secret: StaticSecret::from(*bytes),
        }
    }

    /// The secret's bytes, for storing in the [keystore](crate::crypto::keystore).
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public key.
    #[must_use]
    pub fn public(&self) -> X25519Public {
        X25519Public {
            key: PublicKey::from(&self.secret),
        }
    }

    /// X25519 with the peer's public key.
    ///
    /// # Errors
    /// [`CryptoError::NonContributory`] if the result is all zeros (a low-order peer
    /// key), checked in constant time.
    pub fn diffie_hellman(&self, theirs: &X25519Public) -> Result<SharedSecret, CryptoError> {
        let shared = self.secret.diffie_hellman(&theirs.key);
        if !shared.was_contributory() {
            return Err(CryptoError::NonContributory);
        }
        Ok(SharedSecret {
            bytes: Zeroizing::new(shared.to_bytes()),
        })
    }
}

impl fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X25519Secret")
            .field("public", &self.public())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// An X25519 public key (a Montgomery u-coordinate; any 32 bytes are accepted).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct X25519Public {
    key: PublicKey,
}

impl X25519Public {
    /// The public key with these bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self {
            key: PublicKey::from(bytes),
        }
    }

    /// Parses a public key from a slice.
    ///
    /// # Errors
    /// [`CryptoError::InvalidLength`] unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::InvalidLength {
            expected: KEY_LEN,
            got: bytes.len(),
        })?;
        Ok(Self::from_bytes(array))
    }

    /// The 32-byte encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        self.key.as_bytes()
    }
}

impl fmt::Debug for X25519Public {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X25519Public(")?;
        for byte in self.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// The result of an X25519 exchange, zeroized on drop. Feed it to a KDF; never use it
/// as a key directly.
pub struct SharedSecret {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl SharedSecret {
    /// The raw shared secret.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    #[test]
    fn rfc7748_section_6_1() {
        let alice = X25519Secret::from_bytes(arr(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob = X25519Secret::from_bytes(arr(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        assert_eq!(
            *alice.public().as_bytes(),
            arr("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let shared = arr("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(
            *alice.diffie_hellman(&bob.public()).unwrap().as_bytes(),
            shared
        );
        assert_eq!(
            *bob.diffie_hellman(&alice.public()).unwrap().as_bytes(),
            shared
        );
    }

    #[test]
    fn all_zero_result_is_rejected() {
        let me = X25519Secret::from_bytes([9; 32]);
        // The identity (u = 0) and the order-2 point (u = 1) are low-order points.
        for low in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert!(matches!(
                me.diffie_hellman(&X25519Public::from_bytes(low)),
                Err(CryptoError::NonContributory)
            ));
        }
    }

    #[test]
    fn debug_redacts_secrets_and_slices_are_checked() {
        let me = X25519Secret::from_bytes([0xcd; 32]);
        let text = format!("{me:?}");
        assert!(
            text.contains("<redacted>") && !text.contains("cdcd"),
            "{text}"
        );
        let shared = me
            .diffie_hellman(&X25519Secret::from_bytes([7; 32]).public())
            .unwrap();
        assert_eq!(format!("{shared:?}"), "SharedSecret(<redacted>)");
        assert_eq!(*me.to_bytes(), [0xcd; 32]);
        assert!(X25519Public::from_slice(&[1; 33]).is_err());
        assert!(X25519Public::from_slice(&[1; 32]).is_ok());
    }
}
