//! The symmetric channel of an established session: one [`ChainKey`] per
//! direction, an explicit counter in every record.
//!
//! ```text
//! record = counter (u64 BE) ‖ AES-256-GCM(MK_counter, nonce = counter, aad, plaintext) ‖ tag
//! aad    = LABEL_CHANNEL ‖ session_id (32) ‖ counter (8) ‖ u32 len ‖ context
//! ```
//!
//! `context` is what the caller binds besides the bytes: for a DM the
//! canonical `from`, `to` and `ts`; for a link, the frame's direction. A
//! record opened with another context fails like a forged one.
//!
//! Secure server links and direct peer sessions run on a channel: ordered
//! transports, so in the common case each record costs one chain step (two
//! HMACs) and one AES-GCM operation. Reordering and loss within
//! [`MAX_SKIP`](super::chain::MAX_SKIP) are tolerated all the same.

use zeroize::Zeroizing;

use super::chain::{ChainKey, SkippedKeys};
use super::identity::PeerIdentity;
use super::{LABEL_CHANNEL, Reader, SessionError};

/// Bytes a record adds to its plaintext: the counter and the tag.
pub const RECORD_OVERHEAD: usize = 8 + crate::crypto::aead::TAG_LEN;

/// An established channel (see the module docs).
#[derive(Debug)]
pub struct Channel {
    session_id: [u8; 32],
    peer: PeerIdentity,
    send: ChainKey,
    recv: ChainKey,
    skipped: SkippedKeys<()>,
}

fn aad(session_id: &[u8; 32], counter: u64, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(LABEL_CHANNEL.len() + 32 + 8 + 4 + context.len());
    aad.extend_from_slice(LABEL_CHANNEL);
    aad.extend_from_slice(session_id);
    aad.extend_from_slice(&counter.to_be_bytes());
    aad.extend_from_slice(
        &u32::try_from(context.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    aad.extend_from_slice(context);
    aad
}

impl Channel {
    pub(crate) fn new(
        session_id: [u8; 32],
        peer: PeerIdentity,
        send: ChainKey,
        recv: ChainKey,
    ) -> Self {
        Self {
            session_id,
            peer,
            send,
            recv,
            skipped: SkippedKeys::default(),
        }
    }

    /// The authenticated peer.
    #[must_use]
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The session id (equal on both sides).
    #[must_use]
    pub fn session_id(&self) -> &[u8; 32] {
        &self.session_id
    }

    /// The counter the next sealed record gets.
    #[must_use]
    pub fn send_counter(&self) -> u64 {
        self.send.counter()
    }

    /// The counter of the next record expected in order.
    #[must_use]
    pub fn recv_counter(&self) -> u64 {
        self.recv.counter()
    }

    /// How many skipped keys are held.
    #[must_use]
    pub fn skipped_keys(&self) -> usize {
        self.skipped.len()
    }

    /// Seals `plaintext` bound to `context` as the next record.
    ///
    /// # Errors
    /// [`SessionError::Exhausted`] after 2⁶⁴ − 1 records;
    /// [`SessionError::TooLong`] past AES-GCM's limit.
    pub fn seal(&mut self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        let mut next = self.send.clone();
        let key = next.step()?;
        let counter = key.counter();
        let sealed = key.seal(&aad(&self.session_id, counter, context), plaintext)?;
        let mut record = Vec::with_capacity(8 + sealed.len());
        record.extend_from_slice(&counter.to_be_bytes());
        record.extend_from_slice(&sealed);
        self.send = next;
        Ok(record)
    }

    /// Opens a record sealed by the peer with `context`. Each record opens
    /// once; on any error the channel is unchanged.
    ///
    /// # Errors
    /// [`SessionError::Decrypt`] (forged, altered, other context),
    /// [`SessionError::Duplicate`] (already opened),
    /// [`SessionError::TooFarAhead`] (beyond the skip bound),
    /// [`SessionError::Malformed`] (shorter than a counter and a tag).
    pub fn open(
        &mut self,
        context: &[u8],
        record: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let mut r = Reader::new(record, "channel record");
        let counter = r.u64()?;
        let sealed = r.bytes(r.remaining())?;
        if sealed.len() < crate::crypto::aead::TAG_LEN {
            return Err(SessionError::Malformed("channel record"));
        }
        let aad = aad(&self.session_id, counter, context);
        if counter < self.recv.counter() {
            let key = self
                .skipped
                .get(&(), counter)
                .ok_or(SessionError::Duplicate { counter })?;
            let plaintext = key.open(&aad, sealed)?;
            self.skipped.remove(&(), counter);
            return Ok(plaintext);
        }
        let advance = self.recv.advance_to(counter)?;
        let plaintext = advance.key.open(&aad, sealed)?;
        self.recv = advance.chain;
        self.skipped.insert(&(), advance.skipped);
        Ok(plaintext)
    }
}
