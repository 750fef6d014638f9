//! Cryptographic primitives of socp, with no I/O: randomness comes in as a
//! [`CoreRng`] (or any `rand_core::CryptoRng`) from the caller.
//!
//! SOCP v1.3 itself (socp-1.3.md §1.1–§1.2) needs only:
//! - [`rsa`] — RSA-4096, OAEP-SHA256 encryption and PSS-SHA256 signatures, with the
//!   key encodings real peers send;
//! - [`content_sig`] — the three byte layouts peers sign end-to-end content with
//!   (§2 rows 1 and 12), all accepted, one emitted;
//! - [`hash`] — SHA-256.
//!
//! socp's own features add:
//! - [`ed25519`] and [`x25519`] — identity signatures and key agreement for sessions;
//! - [`aead`] — AES-256-GCM;
//! - [`mac`] — HMAC-SHA256, HKDF-SHA256 and constant-time comparison;
//! - [`keystore`] — the password-protected private-key blob (§1.10 `privkey_store`);
//! - [`rng`] — the seeded CSPRNG each state machine holds;
//! - `fixtures` (feature `fixtures`) — fixed RSA test keys, without file I/O.
//!
//! Conventions: secrets are zeroized on drop and never printed by `Debug`; every tag
//! and token comparison is constant-time; authentication failures carry no detail.

pub mod aead;
pub mod content_sig;
pub mod ed25519;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod hash;
pub mod keystore;
pub mod mac;
pub mod rng;
pub mod rsa;
pub mod x25519;

pub use aead::{AeadError, AeadKey};
pub use content_sig::{
    ContentSigError, DmFields, KeyShareFields, KeyShareLayout, PublicFields, SigLayout,
};
pub use ed25519::{Ed25519Identity, Ed25519Public};
pub use hash::sha256;
pub use keystore::{KeystoreError, KeystoreParams, SecretBundle};
pub use mac::{KdfError, MacError, ct_eq, hkdf_sha256, hmac_sha256, verify_hmac_sha256};
pub use rng::{CoreRng, rng_from_seed};
pub use rsa::{
    DecryptError, EncryptError, KeyEncoding, KeyError, KeyGenError, RsaIdentity, RsaPublic,
    SignError,
};
pub use x25519::{SharedSecret, X25519Public, X25519Secret};

/// A signature did not verify. Carries no detail on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Wrong key, wrong message, or a malformed signature.
    #[error("signature verification failed")]
    Invalid,
}

impl SignatureError {
    /// The SOCP error code to report: [`ErrorCode::InvalidSig`](crate::wire::ErrorCode::InvalidSig).
    #[must_use]
    pub fn code(&self) -> crate::wire::ErrorCode {
        crate::wire::ErrorCode::InvalidSig
    }
}

/// Invalid key material for the small primitives ([`ed25519`], [`x25519`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Input of the wrong length.
    #[error("expected {expected} bytes, got {got}")]
    InvalidLength {
        /// Required length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// Bytes of the right length that are not a valid public key.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// An X25519 exchange gave the all-zero shared secret: the peer's public key is of
    /// low order, so the result would be known to everyone.
    #[error("X25519 key agreement produced the all-zero secret (low-order public key)")]
    NonContributory,
}
