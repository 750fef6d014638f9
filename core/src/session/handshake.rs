//! The authenticated key exchange: three messages, SIGMA-style, with both
//! identities in the clear and in everything signed.
//!
//! ```text
//! 1. I -> R   M1 = 01 01 ‖ e_I (32) ‖ n_I (32) ‖ identity_I
//! 2. R -> I   M2 = 01 02 ‖ e_R (32) ‖ n_R (32) ‖ identity_R ‖ sig_R (64) ‖ confirm_R (32)
//! 3. I -> R   M3 = 01 03 ‖ sig_I (64) ‖ confirm_I (32)
//!
//! identity = u16 len ‖ id ‖ ed25519 (32) ‖ u16 len ‖ RSA binding  (see identity.rs)
//! ```
//!
//! `e` are fresh X25519 keys, `n` fresh 32-byte nonces. With `M2*` the bytes of
//! M2 before `sig_R`, and `dh = X25519(e_I, e_R)` (refused if all zero):
//!
//! ```text
//! th2  = SHA-256(LABEL_TRANSCRIPT ‖ u32 len ‖ M1 ‖ u32 len ‖ M2*)
//! okm  = HKDF-SHA256(salt = th2, ikm = dh, info = LABEL_KEYS, 160 bytes)
//!      = kc_R ‖ kc_I ‖ ck_I->R ‖ ck_R->I ‖ root            (32 bytes each)
//! sig_R     = Ed25519_R(LABEL_SIG_RESPONDER ‖ th2)
//! confirm_R = HMAC(kc_R, LABEL_CONFIRM_RESPONDER ‖ th2)
//! th3  = SHA-256(LABEL_TRANSCRIPT ‖ th2 ‖ sig_R ‖ confirm_R)
//! sig_I     = Ed25519_I(LABEL_SIG_INITIATOR ‖ th3)
//! confirm_I = HMAC(kc_I, LABEL_CONFIRM_INITIATOR ‖ th3)
//! session id = SHA-256(LABEL_TRANSCRIPT ‖ th3 ‖ sig_I ‖ confirm_I)
//! ```
//!
//! What this defeats (the Gravy flaws, seed-systems.md C.7):
//! - **identity mis-binding through a relay**: each signature covers both
//!   identities and both ephemerals, so a relay that swaps in its own identity
//!   changes the transcript the honest party signed or checks;
//! - **reflection**: the roles are in the labels, so a responder's signature
//!   is never an initiator's; a peer presenting our own key or ephemeral is
//!   refused outright ([`SessionError::Reflection`]);
//! - **replay of an old signed message**: every signature covers the other
//!   side's fresh ephemeral and nonce;
//! - **a wrong contact key**: the initiator names whom it expects
//!   ([`Expect`]); the responder sees the claimed identity before answering
//!   ([`ResponderPending::peer`]) and the signature in M3 proves it;
//! - **unconfirmed keys**: each side proves it derived the same keys before
//!   the other accepts anything under them.
//!
//! The typestate ([`Initiator`] → [`Established`]; [`Responder`] →
//! [`ResponderPending`] → [`ResponderAwaitingFinish`] → [`Established`]) makes
//! sealing a record before the handshake completes a compile error.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::chain::ChainKey;
use super::channel::Channel;
use super::identity::{LocalIdentity, PeerIdentity};
use super::ratchet::DoubleRatchet;
use super::{
    LABEL_CONFIRM_INITIATOR, LABEL_CONFIRM_RESPONDER, LABEL_KEYS, LABEL_SIG_INITIATOR,
    LABEL_SIG_RESPONDER, LABEL_TRANSCRIPT, Reader, SessionError,
};
use crate::crypto::hash::sha256_concat;
use crate::crypto::mac::{hkdf_sha256, hmac_sha256, verify_hmac_sha256};
use crate::crypto::x25519::{X25519Public, X25519Secret};

/// The handshake version byte.
pub const VERSION: u8 = 1;
const TYPE_M1: u8 = 1;
const TYPE_M2: u8 = 2;
const TYPE_M3: u8 = 3;
const SIG_LEN: usize = 64;
const MAC_LEN: usize = 32;

/// Which side of the handshake a party played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It sent M1 (dialled).
    Initiator,
    /// It answered (was dialled).
    Responder,
}

/// Whom an initiator expects to reach. A mismatch fails the handshake with
/// [`SessionError::UnexpectedPeer`] before any key is derived.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// The peer's id, if known.
    pub id: Option<String>,
    /// The peer's pinned Ed25519 key (a contact), if known.
    pub key: Option<crate::crypto::ed25519::Ed25519Public>,
}

impl Expect {
    /// Anyone: the caller checks the peer itself afterwards (for example its
    /// RSA binding).
    #[must_use]
    pub fn anyone() -> Self {
        Self::default()
    }

    /// The contact with this pinned key.
    #[must_use]
    pub fn key(key: crate::crypto::ed25519::Ed25519Public) -> Self {
        Self {
            id: None,
            key: Some(key),
        }
    }

    /// The party with this id.
    #[must_use]
    pub fn id(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            key: None,
        }
    }

    fn check(&self, peer: &PeerIdentity) -> Result<(), SessionError> {
        if let Some(id) = &self.id
            && *id != peer.id
        {
            return Err(SessionError::UnexpectedPeer(format!(
                "expected {id}, the peer is {}",
                peer.id
            )));
        }
        if let Some(key) = &self.key
            && *key != peer.key
        {
            return Err(SessionError::UnexpectedPeer(format!(
                "{} presented a key that is not the pinned contact key",
                peer.id
            )));
        }
        Ok(())
    }
}

/// The keys the schedule derives from `th2` and `dh`.
struct Keys {
    confirm_responder: Zeroizing<[u8; 32]>,
    confirm_initiator: Zeroizing<[u8; 32]>,
    initiator_to_responder: Zeroizing<[u8; 32]>,
    responder_to_initiator: Zeroizing<[u8; 32]>,
    root: Zeroizing<[u8; 32]>,
}

fn schedule(th2: &[u8; 32], dh: &[u8; 32]) -> Result<Keys, SessionError> {
    let mut okm = Zeroizing::new([0u8; 160]);
    hkdf_sha256(Some(th2), dh, LABEL_KEYS, &mut *okm)
        .map_err(|_| SessionError::Malformed("key schedule"))?;
    let part = |i: usize| -> Result<Zeroizing<[u8; 32]>, SessionError> {
        okm.get(i * 32..(i + 1) * 32)
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .map(Zeroizing::new)
            .ok_or(SessionError::Malformed("key schedule"))
    };
    Ok(Keys {
        confirm_responder: part(0)?,
        confirm_initiator: part(1)?,
        initiator_to_responder: part(2)?,
        responder_to_initiator: part(3)?,
        root: part(4)?,
    })
}

fn len32(bytes: &[u8]) -> [u8; 4] {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes()
}

fn th2(m1: &[u8], m2_body: &[u8]) -> [u8; 32] {
    sha256_concat(&[LABEL_TRANSCRIPT, &len32(m1), m1, &len32(m2_body), m2_body])
}

fn next_hash(prev: &[u8; 32], sig: &[u8], mac: &[u8]) -> [u8; 32] {
    sha256_concat(&[LABEL_TRANSCRIPT, prev, sig, mac])
}

fn labelled(label: &[u8], th: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(label.len() + 32);
    msg.extend_from_slice(label);
    msg.extend_from_slice(th);
    msg
}

fn header(r: &mut Reader<'_>, want: u8) -> Result<(), SessionError> {
    let version = r.u8()?;
    if version != VERSION {
        return Err(SessionError::Version(version));
    }
    if r.u8()? != want {
        return Err(SessionError::Malformed("handshake message type"));
    }
    Ok(())
}

fn agree(mine: &X25519Secret, theirs: &X25519Public) -> Result<Zeroizing<[u8; 32]>, SessionError> {
    mine.diffie_hellman(theirs)
        .map(|s| Zeroizing::new(*s.as_bytes()))
        .map_err(|_| SessionError::WeakKey)
}

/// The dialling side, after sending M1.
#[derive(Debug)]
pub struct Initiator {
    me: PeerIdentity,
    expect: Expect,
    ephemeral: X25519Secret,
    m1: Vec<u8>,
}

impl Initiator {
    /// Starts a handshake as `me`, expecting `expect`; returns the state and
    /// M1 to send.
    pub fn start<R: CryptoRng + ?Sized>(
        me: &LocalIdentity,
        expect: Expect,
        rng: &mut R,
    ) -> (Self, Vec<u8>) {
        let ephemeral = X25519Secret::generate(rng);
        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        let mut m1 = vec![VERSION, TYPE_M1];
        m1.extend_from_slice(ephemeral.public().as_bytes());
        m1.extend_from_slice(&nonce);
        let me = me.as_peer();
        me.encode(&mut m1);
        let state = Self {
            me,
            expect,
            ephemeral,
            m1: m1.clone(),
        };
        (state, m1)
    }

    /// Reads M2: checks the responder's identity against [`Expect`], its
    /// signature and its key confirmation; returns the session, M3 to send,
    /// and the peer. The caller still checks the peer's RSA binding when
    /// its id names a SOCP identity.
    ///
    /// # Errors
    /// Every [`SessionError`] of the handshake; the state is consumed either
    /// way (a failed handshake is not retried).
    pub fn finish(
        self,
        me: &LocalIdentity,
        m2: &[u8],
    ) -> Result<(Established, Vec<u8>), SessionError> {
        let mut r = Reader::new(m2, "handshake message 2");
        header(&mut r, TYPE_M2)?;
        let e_r = X25519Public::from_bytes(r.array()?);
        let _nonce: [u8; 32] = r.array()?;
        let peer = PeerIdentity::decode(&mut r)?;
        let body_len = m2.len().saturating_sub(r.remaining());
        let sig_r: [u8; SIG_LEN] = r.array()?;
        let confirm_r: [u8; MAC_LEN] = r.array()?;
        r.end()?;
        if peer.key == self.me.key || e_r == self.ephemeral.public() {
            return Err(SessionError::Reflection);
        }
        self.expect.check(&peer)?;
        let body = m2
            .get(..body_len)
            .ok_or(SessionError::Malformed("handshake message 2"))?;
        let th2 = th2(&self.m1, body);
        let dh = agree(&self.ephemeral, &e_r)?;
        let keys = schedule(&th2, &dh)?;
        peer.key
            .verify(&labelled(LABEL_SIG_RESPONDER, &th2), &sig_r)
            .map_err(|_| SessionError::BadSignature)?;
        verify_hmac_sha256(
            &*keys.confirm_responder,
            &labelled(LABEL_CONFIRM_RESPONDER, &th2),
            &confirm_r,
        )
        .map_err(|_| SessionError::BadConfirmation)?;
        let th3 = next_hash(&th2, &sig_r, &confirm_r);
        let sig_i = me.sign(&labelled(LABEL_SIG_INITIATOR, &th3));
        let confirm_i = hmac_sha256(
            &*keys.confirm_initiator,
            &labelled(LABEL_CONFIRM_INITIATOR, &th3),
        );
        let mut m3 = vec![VERSION, TYPE_M3];
        m3.extend_from_slice(&sig_i);
        m3.extend_from_slice(&confirm_i);
        let session_id = next_hash(&th3, &sig_i, &confirm_i);
        Ok((
            Established {
                role: Role::Initiator,
                session_id,
                peer,
                send: ChainKey::new(*keys.initiator_to_responder),
                recv: ChainKey::new(*keys.responder_to_initiator),
                root: keys.root,
                ephemeral: self.ephemeral,
                peer_ephemeral: e_r,
            },
            m3,
        ))
    }
}

/// The dialled side, before M1.
#[derive(Debug)]
pub struct Responder;

impl Responder {
    /// Reads M1 and shows who claims to be dialling; nothing is sent until
    /// [`ResponderPending::accept`].
    ///
    /// # Errors
    /// [`SessionError::Malformed`] / [`SessionError::Version`] for bad bytes;
    /// [`SessionError::Reflection`] if the claimed key is our own.
    pub fn read_hello(me: &LocalIdentity, m1: &[u8]) -> Result<ResponderPending, SessionError> {
        let mut r = Reader::new(m1, "handshake message 1");
        header(&mut r, TYPE_M1)?;
        let e_i = X25519Public::from_bytes(r.array()?);
        let _nonce: [u8; 32] = r.array()?;
        let peer = PeerIdentity::decode(&mut r)?;
        r.end()?;
        if peer.key == me.public() {
            return Err(SessionError::Reflection);
        }
        Ok(ResponderPending {
            peer,
            e_i,
            m1: m1.to_vec(),
        })
    }
}

/// M1 read; the claimed peer waits for the caller's decision (a contact
/// lookup, a roster check).
#[derive(Debug)]
pub struct ResponderPending {
    peer: PeerIdentity,
    e_i: X25519Public,
    m1: Vec<u8>,
}

impl ResponderPending {
    /// Who claims to be dialling (not yet proven: M3's signature proves it).
    #[must_use]
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// Answers with M2.
    ///
    /// # Errors
    /// [`SessionError::WeakKey`] for a low-order ephemeral in M1.
    pub fn accept<R: CryptoRng + ?Sized>(
        self,
        me: &LocalIdentity,
        rng: &mut R,
    ) -> Result<(ResponderAwaitingFinish, Vec<u8>), SessionError> {
        let ephemeral = X25519Secret::generate(rng);
        if ephemeral.public() == self.e_i {
            return Err(SessionError::Reflection);
        }
        let dh = agree(&ephemeral, &self.e_i)?;
        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        let mut m2 = vec![VERSION, TYPE_M2];
        m2.extend_from_slice(ephemeral.public().as_bytes());
        m2.extend_from_slice(&nonce);
        me.as_peer().encode(&mut m2);
        let th2 = th2(&self.m1, &m2);
        let keys = schedule(&th2, &dh)?;
        let sig_r = me.sign(&labelled(LABEL_SIG_RESPONDER, &th2));
        let confirm_r = hmac_sha256(
            &*keys.confirm_responder,
            &labelled(LABEL_CONFIRM_RESPONDER, &th2),
        );
        m2.extend_from_slice(&sig_r);
        m2.extend_from_slice(&confirm_r);
        let th3 = next_hash(&th2, &sig_r, &confirm_r);
        Ok((
            ResponderAwaitingFinish {
                peer: self.peer,
                th3,
                keys,
                ephemeral,
                peer_ephemeral: self.e_i,
            },
            m2,
        ))
    }
}

/// M2 sent; waiting for M3.
pub struct ResponderAwaitingFinish {
    peer: PeerIdentity,
    th3: [u8; 32],
    keys: Keys,
    ephemeral: X25519Secret,
    peer_ephemeral: X25519Public,
}

impl core::fmt::Debug for ResponderAwaitingFinish {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponderAwaitingFinish")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl ResponderAwaitingFinish {
    /// Who claims to be dialling.
    #[must_use]
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// Reads M3: the initiator's signature and key confirmation.
    ///
    /// # Errors
    /// [`SessionError::BadSignature`], [`SessionError::BadConfirmation`],
    /// [`SessionError::Malformed`], [`SessionError::Version`].
    pub fn finish(self, m3: &[u8]) -> Result<Established, SessionError> {
        let mut r = Reader::new(m3, "handshake message 3");
        header(&mut r, TYPE_M3)?;
        let sig_i: [u8; SIG_LEN] = r.array()?;
        let confirm_i: [u8; MAC_LEN] = r.array()?;
        r.end()?;
        self.peer
            .key
            .verify(&labelled(LABEL_SIG_INITIATOR, &self.th3), &sig_i)
            .map_err(|_| SessionError::BadSignature)?;
        verify_hmac_sha256(
            &*self.keys.confirm_initiator,
            &labelled(LABEL_CONFIRM_INITIATOR, &self.th3),
            &confirm_i,
        )
        .map_err(|_| SessionError::BadConfirmation)?;
        Ok(Established {
            role: Role::Responder,
            session_id: next_hash(&self.th3, &sig_i, &confirm_i),
            peer: self.peer,
            send: ChainKey::new(*self.keys.responder_to_initiator),
            recv: ChainKey::new(*self.keys.initiator_to_responder),
            root: self.keys.root,
            ephemeral: self.ephemeral,
            peer_ephemeral: self.peer_ephemeral,
        })
    }
}

/// A completed handshake: an authenticated peer and fresh keys, to be turned
/// into a [`Channel`] (links, direct peer sessions) or a [`DoubleRatchet`]
/// (user-to-user DMs).
pub struct Established {
    pub(super) role: Role,
    pub(super) session_id: [u8; 32],
    pub(super) peer: PeerIdentity,
    pub(super) send: ChainKey,
    pub(super) recv: ChainKey,
    pub(super) root: Zeroizing<[u8; 32]>,
    pub(super) ephemeral: X25519Secret,
    pub(super) peer_ephemeral: X25519Public,
}

impl core::fmt::Debug for Established {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Established")
            .field("role", &self.role)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Established {
    /// Our role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The authenticated peer (its key signed this handshake).
    #[must_use]
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// A hash of the whole transcript, equal on both sides.
    #[must_use]
    pub fn session_id(&self) -> &[u8; 32] {
        &self.session_id
    }

    /// The symmetric channel: one chain per direction.
    #[must_use]
    pub fn into_channel(self) -> Channel {
        Channel::new(self.session_id, self.peer, self.send, self.recv)
    }

    /// The Double Ratchet, started from the handshake's root key with the
    /// responder's ephemeral as its first ratchet key.
    #[must_use]
    pub fn into_double_ratchet(self) -> DoubleRatchet {
        DoubleRatchet::from_handshake(self)
    }
}
