//! The Double Ratchet (Signal's construction) over X25519, HKDF-SHA256,
//! HMAC-SHA256 chains and AES-256-GCM, for user-to-user DMs.
//!
//! Besides the chains' forward secrecy, every round trip mixes a fresh
//! X25519 exchange into the root key, so a party whose state leaked
//! recovers secrecy as soon as it sends under a new ratchet key
//! (post-compromise security).
//!
//! ```text
//! message = header ‖ AES-256-GCM(MK, nonce = n, aad, plaintext) ‖ tag
//! header  = dh_pub (32) ‖ pn (u64 BE) ‖ n (u64 BE)                 48 bytes
//! aad     = LABEL_RATCHET ‖ session_id (32) ‖ header ‖ u32 len ‖ context
//! root step: root' ‖ CK = HKDF-SHA256(salt = root, ikm = X25519(dh), info = LABEL_ROOT, 64)
//! ```
//!
//! `context` is the canonical `from`, `to` and `ts` of the DM: a message
//! replayed under another sender, recipient or time does not open.
//!
//! # Start from a handshake
//!
//! Both sides start from the handshake's root key. The responder's first
//! ratchet key is its handshake ephemeral, and it may send at once on the
//! handshake's responder→initiator chain. The initiator performs a sending
//! ratchet step before its first message, so its very first message already
//! uses a fresh DH key.
//!
//! A new ratchet key from the peer is taken on receipt (receiving step); our
//! own new ratchet key is made lazily at our next send (sending step), so
//! decrypting needs no randomness and a failed decryption changes nothing.

use std::collections::VecDeque;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::chain::{ChainKey, MAX_SKIP, MessageKey, SkippedKeys};
use super::handshake::{Established, Role};
use super::identity::PeerIdentity;
use super::{LABEL_RATCHET, LABEL_ROOT, Reader, SessionError};
use crate::crypto::mac::hkdf_sha256;
use crate::crypto::x25519::{X25519Public, X25519Secret};

/// Length of a message header.
pub const HEADER_LEN: usize = 32 + 8 + 8;

/// A Double Ratchet session with one peer.
pub struct DoubleRatchet {
    session_id: [u8; 32],
    peer: PeerIdentity,
    root: Zeroizing<[u8; 32]>,
    dhs: X25519Secret,
    /// `dhs`'s public key, computed once per step (a base-point
    /// multiplication costs more than a whole chain step).
    dhs_pub: X25519Public,
    dhr: X25519Public,
    send: ChainKey,
    /// Previous sending chain's length, sent in headers.
    pn: u64,
    recv: Option<ChainKey>,
    /// A new peer ratchet key arrived since we last sent: the next send makes
    /// a new key of ours.
    pending_step: bool,
    skipped: SkippedKeys<[u8; 32]>,
    /// The peer's earlier ratchet keys (the last [`PAST_KEYS`]): a message
    /// under one of them whose key is not held was already received or
    /// given up, and is a [`SessionError::Duplicate`], not a new step.
    past: VecDeque<[u8; 32]>,
}

/// How many of the peer's earlier ratchet keys are remembered.
pub const PAST_KEYS: usize = 64;

impl core::fmt::Debug for DoubleRatchet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DoubleRatchet")
            .field("peer", &self.peer.id)
            .field("send", &self.send)
            .field("recv", &self.recv)
            .field("skipped", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

fn root_step(
    root: &[u8; 32],
    mine: &X25519Secret,
    theirs: &X25519Public,
) -> Result<(Zeroizing<[u8; 32]>, ChainKey), SessionError> {
    let dh = mine
        .diffie_hellman(theirs)
        .map_err(|_| SessionError::WeakKey)?;
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf_sha256(Some(root), dh.as_bytes(), LABEL_ROOT, &mut *okm)
        .map_err(|_| SessionError::Malformed("ratchet root step"))?;
    let (r, c) = okm.split_at(32);
    let root: [u8; 32] = r
        .try_into()
        .map_err(|_| SessionError::Malformed("ratchet root step"))?;
    let chain: [u8; 32] = c
        .try_into()
        .map_err(|_| SessionError::Malformed("ratchet root step"))?;
    Ok((Zeroizing::new(root), ChainKey::new(chain)))
}

fn aad(session_id: &[u8; 32], header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(LABEL_RATCHET.len() + 32 + HEADER_LEN + 4 + context.len());
    aad.extend_from_slice(LABEL_RATCHET);
    aad.extend_from_slice(session_id);
    aad.extend_from_slice(header);
    aad.extend_from_slice(
        &u32::try_from(context.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    aad.extend_from_slice(context);
    aad
}

/// Skips `chain` up to (not including) `until`, bounded by [`MAX_SKIP`].
fn skip_until(chain: &ChainKey, until: u64) -> Result<Vec<MessageKey>, SessionError> {
    if until <= chain.counter() {
        return Ok(Vec::new());
    }
    let gap = until - chain.counter();
    if gap > MAX_SKIP {
        return Err(SessionError::TooFarAhead {
            counter: until,
            gap,
            max: MAX_SKIP,
        });
    }
    let mut chain = chain.clone();
    let mut keys = Vec::new();
    while chain.counter() < until {
        keys.push(chain.step()?);
    }
    Ok(keys)
}

impl DoubleRatchet {
    pub(crate) fn from_handshake(hs: Established) -> Self {
        let Established {
            role,
            session_id,
            peer,
            send,
            recv,
            root,
            ephemeral,
            peer_ephemeral,
        } = hs;
        let initiator = role == Role::Initiator;
        Self {
            session_id,
            peer,
            root,
            dhs_pub: ephemeral.public(),
            dhs: ephemeral,
            dhr: peer_ephemeral,
            send,
            pn: 0,
            // The initiator reads the responder's first messages (under the
            // responder's ephemeral) on the handshake's responder->initiator
            // chain; the responder receives nothing before the initiator's
            // first sending step.
            recv: initiator.then_some(recv),
            // The initiator's first send makes a fresh ratchet key.
            pending_step: initiator,
            skipped: SkippedKeys::default(),
            past: VecDeque::new(),
        }
    }

    /// The peer.
    #[must_use]
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The session id of the handshake this ratchet started from.
    #[must_use]
    pub fn session_id(&self) -> &[u8; 32] {
        &self.session_id
    }

    /// How many skipped keys are held.
    #[must_use]
    pub fn skipped_keys(&self) -> usize {
        self.skipped.len()
    }

    /// Our current ratchet public key (changes after each round trip).
    #[must_use]
    pub fn ratchet_key(&self) -> X25519Public {
        self.dhs_pub
    }

    /// Encrypts `plaintext` bound to `context`. Makes a new ratchet key first
    /// if the peer's has changed since we last sent.
    ///
    /// # Errors
    /// [`SessionError::Exhausted`], [`SessionError::TooLong`],
    /// [`SessionError::WeakKey`] (the peer's ratchet key is of low order).
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SessionError> {
        let mut stepped = None;
        let (mut send, pn) = if self.pending_step {
            let dhs = X25519Secret::generate(rng);
            let dhs_pub = dhs.public();
            let (root, chain) = root_step(&self.root, &dhs, &self.dhr)?;
            let pn = self.send.counter();
            stepped = Some((dhs, dhs_pub, root));
            (chain, pn)
        } else {
            (self.send.clone(), self.pn)
        };
        let key = send.step()?;
        let dh_pub = match &stepped {
            Some((_, dhs_pub, _)) => *dhs_pub,
            None => self.dhs_pub,
        };
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(dh_pub.as_bytes());
        header.extend_from_slice(&pn.to_be_bytes());
        header.extend_from_slice(&key.counter().to_be_bytes());
        let sealed = key.seal(&aad(&self.session_id, &header, context), plaintext)?;
        if let Some((dhs, dhs_pub, root)) = stepped {
            self.dhs = dhs;
            self.dhs_pub = dhs_pub;
            self.root = root;
            self.pending_step = false;
        }
        self.send = send;
        self.pn = pn;
        let mut out = header;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a message from the peer bound to `context`. Each message
    /// decrypts once; on any error the session is unchanged.
    ///
    /// # Errors
    /// [`SessionError::Decrypt`], [`SessionError::Duplicate`],
    /// [`SessionError::TooFarAhead`], [`SessionError::Malformed`],
    /// [`SessionError::WeakKey`].
    pub fn decrypt(
        &mut self,
        context: &[u8],
        message: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let mut r = Reader::new(message, "ratchet message");
        let header = r.bytes(HEADER_LEN)?;
        let sealed = r.bytes(r.remaining())?;
        let mut h = Reader::new(header, "ratchet header");
        let dh: [u8; 32] = h.array()?;
        let pn = h.u64()?;
        let n = h.u64()?;
        let aad = aad(&self.session_id, header, context);

        if let Some(key) = self.skipped.get(&dh, n) {
            let plaintext = key.open(&aad, sealed)?;
            self.skipped.remove(&dh, n);
            return Ok(plaintext);
        }
        if self.past.contains(&dh) {
            return Err(SessionError::Duplicate { counter: n });
        }
        if dh == *self.dhr.as_bytes() {
            let chain = self.recv.as_ref().ok_or(SessionError::Decrypt)?;
            let advance = chain.advance_to(n)?;
            let plaintext = advance.key.open(&aad, sealed)?;
            self.recv = Some(advance.chain);
            self.skipped.insert(&dh, advance.skipped);
            return Ok(plaintext);
        }
        // A new ratchet key: finish the old receiving chain up to `pn`, then
        // a receiving root step.
        let old_skipped = match &self.recv {
            Some(chain) => skip_until(chain, pn)?,
            None => Vec::new(),
        };
        let new_dhr = X25519Public::from_bytes(dh);
        let (root, chain) = root_step(&self.root, &self.dhs, &new_dhr)?;
        let advance = chain.advance_to(n)?;
        let plaintext = advance.key.open(&aad, sealed)?;
        let old_tag = *self.dhr.as_bytes();
        self.skipped.insert(&old_tag, old_skipped);
        if self.past.len() == PAST_KEYS {
            self.past.pop_front();
        }
        self.past.push_back(old_tag);
        self.skipped.insert(&dh, advance.skipped);
        self.root = root;
        self.dhr = new_dhr;
        self.recv = Some(advance.chain);
        self.pending_step = true;
        Ok(plaintext)
    }
}
