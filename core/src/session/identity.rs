//! Who a party is in a session: an id (a SOCP user or server id, or a peer's
//! nickname), its long-term Ed25519 key, and optionally an RSA-PSS signature
//! by its SOCP RSA-4096 key over that Ed25519 key (the *binding*).
//!
//! The binding is what lets a SOCP identity, known by its RSA key from the
//! roster or the directory, vouch for the much faster Ed25519 key that signs
//! handshakes. Its signed bytes are
//!
//! ```text
//! LABEL_BINDING ‖ u16 len(id) ‖ id ‖ ed25519_public (32)
//! ```
//!
//! so a binding for one id never vouches for a key under another id.

use rand_core::CryptoRng;

use super::{Reader, SessionError, put_u16_prefixed};
use crate::crypto::ed25519::{Ed25519Identity, Ed25519Public};
use crate::crypto::rsa::{RsaIdentity, RsaPublic};

/// Longest id carried in a handshake, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Longest binding signature carried in a handshake (an RSA-4096 signature is
/// 512 bytes).
pub const MAX_BINDING_LEN: usize = 1024;

/// The bytes an RSA key signs to bind `key` to `id`.
#[must_use]
pub fn binding_message(id: &str, key: &Ed25519Public) -> Vec<u8> {
    let mut msg = Vec::with_capacity(super::LABEL_BINDING.len() + 2 + id.len() + 32);
    msg.extend_from_slice(super::LABEL_BINDING);
    put_u16_prefixed(&mut msg, id.as_bytes());
    msg.extend_from_slice(key.as_bytes());
    msg
}

/// Our side of a session: id, Ed25519 key and its binding (if any).
#[derive(Debug)]
pub struct LocalIdentity {
    id: String,
    key: Ed25519Identity,
    binding: Vec<u8>,
}

impl LocalIdentity {
    /// An identity with no RSA binding (direct peer sessions, where contacts
    /// pin the Ed25519 key itself).
    ///
    /// # Errors
    /// [`SessionError::Malformed`] if `id` is empty or longer than
    /// [`MAX_ID_LEN`].
    pub fn new(id: impl Into<String>, key: Ed25519Identity) -> Result<Self, SessionError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(SessionError::Malformed("identity id"));
        }
        Ok(Self {
            id,
            key,
            binding: Vec::new(),
        })
    }

    /// An identity whose Ed25519 key is cross-signed by `rsa` (one RSA-PSS
    /// signature, about 7 ms: done once per key, not per session).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn bound<R: CryptoRng + ?Sized>(
        id: impl Into<String>,
        key: Ed25519Identity,
        rsa: &RsaIdentity,
        rng: &mut R,
    ) -> Result<Self, SessionError> {
        let mut me = Self::new(id, key)?;
        let msg = binding_message(&me.id, &me.key.public());
        me.binding = rsa
            .sign_pss(rng, &msg)
            .map_err(|_| SessionError::BadBinding)?;
        Ok(me)
    }

    /// An identity with a binding made earlier (for example loaded from a
    /// keystore). The binding is not checked here; peers check it.
    ///
    /// # Errors
    /// As [`new`](Self::new), or [`SessionError::Malformed`] for a binding
    /// longer than [`MAX_BINDING_LEN`].
    pub fn with_binding(
        id: impl Into<String>,
        key: Ed25519Identity,
        binding: Vec<u8>,
    ) -> Result<Self, SessionError> {
        if binding.len() > MAX_BINDING_LEN {
            return Err(SessionError::Malformed("identity binding"));
        }
        let mut me = Self::new(id, key)?;
        me.binding = binding;
        Ok(me)
    }

    /// The id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The Ed25519 public key.
    #[must_use]
    pub fn public(&self) -> Ed25519Public {
        self.key.public()
    }

    /// The RSA binding signature (empty when unbound).
    #[must_use]
    pub fn binding(&self) -> &[u8] {
        &self.binding
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg)
    }

    /// This identity as a peer sees it.
    #[must_use]
    pub fn as_peer(&self) -> PeerIdentity {
        PeerIdentity {
            id: self.id.clone(),
            key: self.key.public(),
            binding: self.binding.clone(),
        }
    }
}

/// The other side of a session as it presented itself. After a completed
/// handshake its `key` is authenticated (it signed the transcript); its `id`
/// is only as good as the check the caller made: a pinned contact key, or
/// [`verify_binding`](Self::verify_binding) against the RSA key the roster
/// or directory holds for `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Its id.
    pub id: String,
    /// Its Ed25519 public key.
    pub key: Ed25519Public,
    /// Its RSA binding signature (may be empty).
    pub binding: Vec<u8>,
}

impl PeerIdentity {
    /// Checks that `rsa` (the RSA key known for [`id`](Self::id)) signed this
    /// Ed25519 key for this id.
    ///
    /// # Errors
    /// [`SessionError::BadBinding`] if the binding is missing or wrong.
    pub fn verify_binding(&self, rsa: &RsaPublic) -> Result<(), SessionError> {
        if self.binding.is_empty() {
            return Err(SessionError::BadBinding);
        }
        rsa.verify_pss(&binding_message(&self.id, &self.key), &self.binding)
            .map_err(|_| SessionError::BadBinding)
    }

    /// Appends the wire form: `u16 len ‖ id ‖ key (32) ‖ u16 len ‖ binding`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16_prefixed(out, self.id.as_bytes());
        out.extend_from_slice(self.key.as_bytes());
        put_u16_prefixed(out, &self.binding);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SessionError> {
        let id_len = usize::from(r.u16()?);
        if id_len == 0 || id_len > MAX_ID_LEN {
            return Err(SessionError::Malformed("identity id"));
        }
        let id = core::str::from_utf8(r.bytes(id_len)?)
            .map_err(|_| SessionError::Malformed("identity id"))?
            .to_owned();
        let key = Ed25519Public::from_bytes(r.bytes(32)?)
            .map_err(|_| SessionError::Malformed("identity key"))?;
        let binding_len = usize::from(r.u16()?);
        if binding_len > MAX_BINDING_LEN {
            return Err(SessionError::Malformed("identity binding"));
        }
        let binding = r.bytes(binding_len)?.to_vec();
        Ok(Self { id, key, binding })
    }
}
