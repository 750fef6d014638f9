//! [`RsaIdentity`]: our own RSA-4096 private key.

use core::fmt;

use rand_core::CryptoRng;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::{BoxedUint, Oaep, Pss, RsaPrivateKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{
    DecryptError, KeyError, KeyGenError, PSS_MAX_SALT, PUBLIC_EXPONENT, RSA_BITS, RsaPublic,
    SignError, pem,
};
use crate::crypto::hash::sha256;

/// An RSA-4096 private key (e = 65537) with its public half.
///
/// The `rsa` crate zeroizes the private components on drop; the cached PKCS#8 encoding
/// is zeroized too. `Debug` prints only the public fingerprint. Private operations
/// are blinded with randomness from the caller's CSPRNG; read the module docs before
/// decrypting anything a remote party chose.
#[derive(Clone)]
pub struct RsaIdentity {
    key: RsaPrivateKey,
    public: RsaPublic,
    /// Canonical PKCS#8 DER, kept so that exporting cannot fail.
    pkcs8: Zeroizing<Vec<u8>>,
}

impl RsaIdentity {
    /// Generates a fresh 4096-bit key with e = 65537 (about a second in release builds,
    /// much longer unoptimised).
    ///
    /// # Errors
    /// [`KeyGenError::Failed`] if the `rsa` crate fails (not expected with a CSPRNG).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Result<Self, KeyGenError> {
        let key = RsaPrivateKey::new_with_exp(rng, RSA_BITS, BoxedUint::from(PUBLIC_EXPONENT))
            .map_err(|_| KeyGenError::Failed)?;
        Self::from_rsa(key).map_err(|_| KeyGenError::Failed)
    }

    /// Imports a PKCS#8 DER `PrivateKeyInfo` (unencrypted).
    ///
    /// # Errors
    /// [`KeyError`] if it is malformed, not RSA, or not 4096 bits with e = 65537.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = RsaPrivateKey::from_pkcs8_der(der).map_err(|_| KeyError::Malformed)?;
        Self::from_rsa(key)
    }

    /// Imports PEM text: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`). Encrypted PEM is not supported: socp keeps private
    /// keys in its own [keystore](crate::crypto::keystore).
    ///
    /// # Errors
    /// As [`RsaIdentity::from_pkcs8_der`].
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let (label, der) = pem::decode(text).ok_or(KeyError::Malformed)?;
        let key = match label {
            "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| KeyError::Malformed),
            "RSA PRIVATE KEY" => {
                RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| KeyError::Malformed)
            }
            _ => Err(KeyError::Malformed),
        }?;
        Self::from_rsa(key)
    }

    fn from_rsa(key: RsaPrivateKey) -> Result<Self, KeyError> {
        let public = RsaPublic::from_rsa(key.to_public_key())?;
        let document = key.to_pkcs8_der().map_err(|_| KeyError::Malformed)?;
        let pkcs8 = Zeroizing::new(document.as_bytes().to_vec());
        Ok(Self { key, public, pkcs8 })
    }

    /// The PKCS#8 DER encoding of the private key.
    #[must_use]
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// PKCS#8 PEM (`BEGIN PRIVATE KEY`), as Python `cryptography` writes it.
    #[must_use]
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        pem::encode("PRIVATE KEY", &self.pkcs8)
    }

    /// The public half.
    #[must_use]
    pub fn public(&self) -> &RsaPublic {
        &self.public
    }

    /// Signs `msg` with RSASSA-PSS: SHA-256, MGF1-SHA256, a random 478-byte salt (the
    /// maximum, as Python's `PSS.MAX_LENGTH`), blinded. The result is 512 bytes.
    ///
    /// # Errors
    /// [`SignError::Failed`] if the private-key operation fails its fault check.
    pub fn sign_pss<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        msg: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        self.key
            .sign_with_rng(
                rng,
                Pss::<Sha256>::new_blinded_with_salt(PSS_MAX_SALT),
                &sha256(msg),
            )
            .map_err(|_| SignError::Failed)
    }

    /// Decrypts an RSA-OAEP ciphertext (SHA-256, MGF1-SHA256, empty label), blinded
    /// with randomness from `rng`.
    ///
    /// Only for ciphertexts addressed to us whose failure is never reported to anyone
    /// (module docs: RUSTSEC-2023-0071).
    ///
    /// # Errors
    /// [`DecryptError::Failed`], without detail.
    pub fn decrypt_oaep<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        self.key
            .decrypt_blinded(rng, Oaep::<Sha256>::new(), ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| DecryptError::Failed)
    }

    /// As [`RsaIdentity::decrypt_oaep`] with a non-empty OAEP `label` (impl A's
    /// public-channel wraps, socp-1.3.md §2 row 6).
    ///
    /// # Errors
    /// [`DecryptError::Failed`], without detail; a wrong label fails like a wrong key.
    pub fn decrypt_oaep_labelled<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        self.key
            .decrypt_blinded(rng, Oaep::<Sha256>::new_with_label(label), ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| DecryptError::Failed)
    }
}

impl fmt::Debug for RsaIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaIdentity")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}
