//! socp's secure profile: an authenticated key exchange, then ratcheted
//! AES-256-GCM channels (architecture.md, "Two profiles on one wire").
//!
//! - [`identity`]: a party's long-term Ed25519 key, bound to its RSA-4096
//!   SOCP identity by an RSA-PSS cross-signature.
//! - [`handshake`]: a three-message SIGMA-style exchange. X25519 ephemerals,
//!   fresh nonces, both identities and each side's role go into one transcript
//!   hash that both sides sign with Ed25519 and confirm with an HMAC under the
//!   new keys. A typestate makes encrypting before it completes impossible.
//! - [`chain`]: symmetric KDF chains (a message key and the next chain key
//!   per step) and the bounded store of skipped message keys.
//! - [`channel`]: two chains, one per direction, with an explicit counter in
//!   every record. Secure server links and direct peer sessions run on it.
//! - [`link`]: a channel carrying whole SOCP frames on a server or client
//!   link (`SECURE` envelopes).
//! - [`ratchet`]: the Double Ratchet (X25519 DH steps plus the chains) for
//!   user-to-user DMs, which adds post-compromise recovery.
//!
//! # Labels
//!
//! Every KDF, MAC, signature and AEAD input starts with a label naming the
//! protocol, its version and the purpose (the `LABEL_*` constants), so no
//! value computed for one purpose is ever valid for another. The layouts are
//! spelled out where each is computed; `core/tests/session_vectors.rs` checks
//! them against checked-in vectors.
//!
//! # Errors leave state unchanged
//!
//! Every decrypting call works on copies and commits only after the AEAD tag
//! verifies: a forged, altered, replayed or out-of-bound record returns an
//! error and leaves the session exactly as it was.

pub mod chain;
pub mod channel;
pub mod handshake;
pub mod identity;
pub mod link;
pub mod ratchet;

pub use channel::Channel;
pub use handshake::{Established, Initiator, Responder, ResponderAwaitingFinish, ResponderPending};
pub use identity::{LocalIdentity, PeerIdentity};
pub use ratchet::DoubleRatchet;

/// The protocol name and version every label starts with.
pub const PROTOCOL: &str = "socp-session-v1";

/// Transcript hash domain.
pub const LABEL_TRANSCRIPT: &[u8] = b"socp-session-v1 transcript";
/// Signature of the responder over the transcript after message 2.
pub const LABEL_SIG_RESPONDER: &[u8] = b"socp-session-v1 responder signature";
/// Signature of the initiator over the transcript after message 3.
pub const LABEL_SIG_INITIATOR: &[u8] = b"socp-session-v1 initiator signature";
/// Key confirmation MAC of the responder.
pub const LABEL_CONFIRM_RESPONDER: &[u8] = b"socp-session-v1 responder confirm";
/// Key confirmation MAC of the initiator.
pub const LABEL_CONFIRM_INITIATOR: &[u8] = b"socp-session-v1 initiator confirm";
/// HKDF info of the handshake's key schedule.
pub const LABEL_KEYS: &[u8] = b"socp-session-v1 keys";
/// The RSA-PSS cross-signature binding an Ed25519 key to an RSA identity.
pub const LABEL_BINDING: &[u8] = b"socp-session-v1 ed25519 binding";
/// Associated data prefix of channel records.
pub const LABEL_CHANNEL: &[u8] = b"socp-session-v1 channel";
/// HKDF info of a Double Ratchet root step.
pub const LABEL_ROOT: &[u8] = b"socp-session-v1 ratchet root";
/// Associated data prefix of Double Ratchet messages.
pub const LABEL_RATCHET: &[u8] = b"socp-session-v1 ratchet message";

/// Why a handshake or a record was refused. The session is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The bytes do not parse as the expected message or record.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A version this implementation does not speak.
    #[error("unsupported session version {0}")]
    Version(u8),
    /// The peer's identity signature does not verify over this transcript
    /// (a replayed, relayed or forged handshake message).
    #[error("the peer's handshake signature does not verify")]
    BadSignature,
    /// The peer's key confirmation MAC is wrong: it does not hold the keys.
    #[error("the peer's key confirmation is wrong")]
    BadConfirmation,
    /// The peer is not who we expected (a different identity or key than the
    /// pinned contact).
    #[error("unexpected peer: {0}")]
    UnexpectedPeer(String),
    /// The peer presented our own identity key or echoed our own ephemeral:
    /// a reflection.
    #[error("reflected handshake: the peer presented our own key")]
    Reflection,
    /// The peer's RSA cross-signature of its Ed25519 key is missing or wrong.
    #[error("the peer's Ed25519 key is not bound to its RSA identity")]
    BadBinding,
    /// A low-order X25519 key (all-zero shared secret).
    #[error("weak X25519 key")]
    WeakKey,
    /// The AEAD tag does not verify (altered, forged or misdirected record).
    #[error("record does not decrypt")]
    Decrypt,
    /// A record whose counter was already received (a replay or duplicate).
    #[error("record {counter} was already received")]
    Duplicate {
        /// Its counter.
        counter: u64,
    },
    /// A record too far ahead of the chain: more than [`chain::MAX_SKIP`]
    /// records would have to be skipped.
    #[error("record {counter} is {gap} ahead of the chain (at most {max})")]
    TooFarAhead {
        /// Its counter.
        counter: u64,
        /// How many keys would be skipped.
        gap: u64,
        /// [`chain::MAX_SKIP`].
        max: u64,
    },
    /// A chain reached its last counter; the session must be re-established.
    #[error("chain exhausted")]
    Exhausted,
    /// The plaintext is too long for AES-GCM.
    #[error("plaintext too long")]
    TooLong,
}

/// A cursor over handshake and record bytes: every read is bounds-checked.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { rest: bytes, what }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], SessionError> {
        if self.rest.len() < n {
            return Err(SessionError::Malformed(self.what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], SessionError> {
        self.bytes(N)?
            .try_into()
            .map_err(|_| SessionError::Malformed(self.what))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SessionError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, SessionError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SessionError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// How many bytes are left.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Fails unless everything was read.
    pub(crate) fn end(self) -> Result<(), SessionError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(SessionError::Malformed(self.what))
        }
    }
}

/// Appends `bytes` with a big-endian u16 length prefix. Callers bound
/// lengths well below 65 536 before calling.
pub(crate) fn put_u16_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
}
