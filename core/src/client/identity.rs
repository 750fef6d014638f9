//! A user's identity: its id and private keys, and how they are stored.

use rand_core::CryptoRng;

use crate::crypto::keystore::{self, KeystoreError, KeystoreParams, SecretBundle};
use crate::crypto::rsa::RsaIdentity;

/// The prefix of a stored identity (see [`UserIdentity::to_keystore`]).
const STORE_PREFIX: &str = "socp-user-v1";

/// A user: its UUIDv4 and its RSA-4096 key (legacy profile: the same key signs
/// and decrypts, and is sent as both `pubkey` and `enc_pubkey`).
///
/// The secure profile (docs/architecture.md) will add an Ed25519 identity key
/// and an X25519 key here, bound to the RSA key by a cross-signature; the
/// keystore already holds both kinds ([`SecretBundle::with_ed25519`],
/// [`SecretBundle::with_x25519`]), so adding them changes no stored format.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UserIdentity {
    /// The user id, a UUIDv4 (case-sensitive, network-unique).
    pub user_id: String,
    /// The RSA-4096 key (OAEP decryption, PSS signatures).
    pub rsa: RsaIdentity,
}

/// Why a stored identity could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The keystore did not open (wrong password, tampered, malformed).
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// Not a stored identity, or the user id is not a UUIDv4.
    #[error("malformed stored identity")]
    Malformed,
    /// The keystore holds no usable RSA key.
    #[error("stored identity has no valid RSA key")]
    NoRsaKey,
}

impl UserIdentity {
    /// An identity from its parts.
    #[must_use]
    pub fn new(user_id: impl Into<String>, rsa: RsaIdentity) -> Self {
        Self {
            user_id: user_id.into(),
            rsa,
        }
    }

    /// An identity for `rsa` with a fresh random UUIDv4.
    #[must_use]
    pub fn with_random_id<R: CryptoRng + ?Sized>(rsa: RsaIdentity, rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self::new(super::uuid_from(bytes), rsa)
    }

    /// Seals the private keys under `password` with [`keystore::seal`]
    /// (Argon2id and AES-256-GCM). The result is one ASCII line, `socp-user-v1 <user_id>
    /// <keystore>`: the id is public (it is in every frame) and stored beside
    /// the sealed keys, not inside them.
    ///
    /// # Errors
    /// As [`keystore::seal`].
    pub fn to_keystore<R: CryptoRng + ?Sized>(
        &self,
        password: &[u8],
        params: &KeystoreParams,
        rng: &mut R,
    ) -> Result<String, KeystoreError> {
        let bundle = SecretBundle::default().with_rsa(&self.rsa);
        let sealed = keystore::seal(password, &bundle, params, rng)?;
        Ok(format!("{STORE_PREFIX} {} {sealed}", self.user_id))
    }

    /// Opens what [`UserIdentity::to_keystore`] wrote.
    ///
    /// # Errors
    /// [`IdentityError::Malformed`] for a line of another shape,
    /// [`IdentityError::Keystore`] for a wrong password or a damaged keystore,
    /// [`IdentityError::NoRsaKey`] if it holds no valid RSA-4096 key.
    pub fn from_keystore(password: &[u8], blob: &str) -> Result<Self, IdentityError> {
        let mut fields = blob.trim().splitn(3, ' ');
        let (Some(STORE_PREFIX), Some(user_id), Some(sealed)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(IdentityError::Malformed);
        };
        if !crate::wire::is_uuid_v4(user_id) {
            return Err(IdentityError::Malformed);
        }
        let bundle = keystore::open(password, sealed)?;
        let rsa = bundle
            .rsa_identity()
            .ok_or(IdentityError::NoRsaKey)?
            .map_err(|_| IdentityError::NoRsaKey)?;
        Ok(Self::new(user_id, rsa))
    }
}
