//! RSA-4096 with OAEP-SHA256 encryption and PSS-SHA256 signatures: the only
//! asymmetric algorithm SOCP v1.3 allows (socp-1.3.md §1.1, §1.2).
//!
//! - [`RsaPublic`] parses every public-key encoding peers are known to send
//!   (socp-1.3.md §2 row 3) and refuses anything but a 4096-bit modulus with
//!   e = 65537 (§4 case 4), with [`ErrorCode::BadKey`].
//! - [`RsaIdentity`] is a private key: PSS signatures with the maximal salt, as every
//!   Python peer makes them (§2 row 4), and OAEP decryption.
//!
//! Parameters, as socp reads the spec (§3): OAEP uses SHA-256 for both the label hash
//! and MGF1 and an empty label (impl A's labelled variant is available on request);
//! PSS uses SHA-256 and MGF1-SHA256, signs with a 478-byte salt and verifies with any
//! salt length.
//!
//! # Side channels: where RSA decryption may run
//!
//! The `rsa` crate has an unfixed timing advisory, RUSTSEC-2023-0071 ("Marvin"): the
//! time a private-key operation takes can leak information about the operand, and
//! an attacker who can submit many ciphertexts *and* time or observe the outcome of
//! each decryption can eventually decrypt or sign as the key holder. socp uses
//! blinded private operations everywhere (the caller's CSPRNG supplies the blinding
//! factor), which removes the classic timing attack but does not close the advisory.
//!
//! Therefore RSA decryption must only happen where a remote party can neither time it
//! nor learn anything from its result: a client decrypting mail addressed to itself,
//! whose failures are silent and never answered on the wire. A server never decrypts
//! (SOCP servers route opaque ciphertext, §1.6), and no code path may ever answer a
//! network request with "this ciphertext did (not) decrypt". Signing is exposed to the
//! same leak in principle but signs only locally chosen messages.
//!
//! [`ErrorCode::BadKey`]: crate::wire::ErrorCode::BadKey

mod identity;
mod pem;
mod public;

pub use identity::RsaIdentity;
pub use public::RsaPublic;

use crate::wire::ErrorCode;

/// Modulus size of every SOCP key, in bits.
pub const RSA_BITS: usize = 4096;

/// Modulus size in bytes: the length of every ciphertext and signature.
pub const RSA_BYTES: usize = 512;

/// The largest OAEP-SHA256 plaintext for a 4096-bit key: 512 − 2·32 − 2.
pub const OAEP_MAX_PLAINTEXT: usize = 446;

/// The largest PSS-SHA256 salt for a 4096-bit key: emLen − hLen − 2 = 512 − 32 − 2.
/// This is what Python's `PSS.MAX_LENGTH` produces, and what socp signs with.
pub const PSS_MAX_SALT: usize = 478;

/// The only public exponent SOCP accepts.
pub const PUBLIC_EXPONENT: u32 = 65537;

/// How a peer encoded a public key on the wire (socp-1.3.md §2 row 3), remembered so
/// that we can answer in kind (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyEncoding {
    /// base64url of the DER SubjectPublicKeyInfo: what the spec means, and what we
    /// emit to peers we have not heard from (impl A, D, E).
    #[default]
    Der,
    /// base64url of the PEM text (impl B, C, H). Raw PEM text, which a few peers send
    /// although it is not base64url at all, is also reported as this: answering with
    /// base64url(PEM) is the closest in-spec reply.
    PemText,
}

/// A key was refused: it is malformed, or not RSA-4096 with e = 65537.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not base64url, not PEM, not DER, or structurally invalid.
    #[error("malformed RSA key")]
    Malformed,
    /// A well-formed key of another algorithm.
    #[error("not an RSA key")]
    NotRsa,
    /// An RSA key whose modulus is not 4096 bits.
    #[error("RSA modulus is {bits} bits; SOCP requires exactly 4096")]
    WrongSize {
        /// The modulus size that was found.
        bits: usize,
    },
    /// An RSA key whose public exponent is not 65537 (e = 3 is the classic backdoor).
    #[error("RSA public exponent is not 65537")]
    WeakExponent,
}

impl KeyError {
    /// The SOCP error code to report: always [`ErrorCode::BadKey`].
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        ErrorCode::BadKey
    }
}

/// RSA key generation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyGenError {
    /// The `rsa` crate could not produce or encode a key (does not happen with a
    /// working CSPRNG).
    #[error("RSA key generation failed")]
    Failed,
}

/// OAEP encryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The plaintext does not fit one OAEP block.
    #[error("plaintext of {len} bytes exceeds the OAEP-SHA256 limit of {max} bytes")]
    PlaintextTooLong {
        /// Plaintext length.
        len: usize,
        /// [`OAEP_MAX_PLAINTEXT`].
        max: usize,
    },
    /// The `rsa` crate refused the operation (for example an absurdly long label).
    #[error("RSA-OAEP encryption failed")]
    Failed,
}

/// OAEP decryption failed. Deliberately carries no detail: which check failed must
/// not be observable (see the module docs on RUSTSEC-2023-0071).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// Wrong length, wrong key, wrong label or a corrupted ciphertext.
    #[error("RSA-OAEP decryption failed")]
    Failed,
}

/// PSS signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The private-key operation failed its self-check (a fault, not an input error).
    #[error("RSA-PSS signing failed")]
    Failed,
}
