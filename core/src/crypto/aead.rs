//! AES-256-GCM with 96-bit nonces and 128-bit tags.
//!
//! SOCP v1.3 itself removed AES-GCM from the wire (socp-1.3.md §1.2); socp uses it for
//! its own sessions and the [keystore](crate::crypto::keystore). Output is
//! `ciphertext ‖ tag`. A (key, nonce) pair must never be used twice: callers derive
//! nonces from counters or draw them from their CSPRNG.

use core::fmt;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// Tag length in bytes.
pub const TAG_LEN: usize = 16;

/// AES-GCM failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AeadError {
    /// Wrong key, nonce or associated data, or a modified ciphertext or tag. No detail.
    #[error("AEAD decryption failed")]
    Open,
    /// The plaintext exceeds AES-GCM's limit of 2³⁶ − 32 bytes.
    #[error("plaintext too long for AES-GCM")]
    PlaintextTooLong,
}

/// An AES-256-GCM key, zeroized on drop. `Debug` is redacted.
#[derive(Clone)]
pub struct AeadKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl AeadKey {
    /// Wraps 32 key bytes.
    #[must_use]
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// [`seal`] under this key.
    ///
    /// # Errors
    /// As [`seal`].
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        seal(&self.bytes, nonce, aad, plaintext)
    }

    /// [`open`] under this key.
    ///
    /// # Errors
    /// As [`open`].
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AeadError> {
        open(&self.bytes, nonce, aad, ciphertext)
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Encrypts `plaintext`, authenticating `aad` too; returns `ciphertext ‖ tag`
/// (plaintext length + 16 bytes).
///
/// # Errors
/// [`AeadError::PlaintextTooLong`] beyond AES-GCM's 64 GiB limit (the underlying
/// crate reports this as an error rather than panicking, so this does too).
pub fn seal(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, AeadError> {
    cipher(key)
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| AeadError::PlaintextTooLong)
}

/// Decrypts and authenticates `ciphertext ‖ tag` with `aad`. The tag is checked in
/// constant time before any plaintext is released.
///
/// # Errors
/// [`AeadError::Open`] for any failure, including input shorter than a tag.
pub fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AeadError> {
    cipher(key)
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| AeadError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_tamper_fails() {
        let key = AeadKey::new([0x42; KEY_LEN]);
        let nonce = [7u8; NONCE_LEN];
        let sealed = key.seal(&nonce, b"header", b"attack at dawn").unwrap();
        assert_eq!(sealed.len(), 14 + TAG_LEN);
        assert_eq!(
            key.open(&nonce, b"header", &sealed).unwrap().as_slice(),
            b"attack at dawn"
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                key.open(&nonce, b"header", &bad),
                Err(AeadError::Open),
                "byte {i}"
            );
        }
        assert_eq!(key.open(&nonce, b"headeR", &sealed), Err(AeadError::Open));
        assert_eq!(
            key.open(&[8; NONCE_LEN], b"header", &sealed),
            Err(AeadError::Open)
        );
        assert_eq!(
            open(&[0x43; KEY_LEN], &nonce, b"header", &sealed),
            Err(AeadError::Open)
        );
        assert_eq!(
            key.open(&nonce, b"", &sealed[..TAG_LEN - 1]),
            Err(AeadError::Open)
        );
        assert_eq!(key.open(&nonce, b"", &[]), Err(AeadError::Open));
    }

    #[test]
    fn empty_plaintext_is_just_a_tag_and_debug_is_redacted() {
        let sealed = seal(&[0; KEY_LEN], &[0; NONCE_LEN], b"", b"").unwrap();
        // NIST GCM test case 13 (AES-256, zero key and IV, empty input).
        assert_eq!(
            sealed,
            [
                0x53, 0x0f, 0x8a, 0xfb, 0xc7, 0x45, 0x36, 0xb9, 0xa9, 0x63, 0xb4, 0xf1, 0xc4, 0xcb,
                0x73, 0x8b
            ]
        );
        assert_eq!(
            format!("{:?}", AeadKey::new([9; KEY_LEN])),
            "AeadKey(<redacted>)"
        );
    }
}
