//! Secure server links: the secure profile between two socp servers.
//!
//! # Negotiation
//!
//! A socp server with [`ServerConfig::secure_links`](super::ServerConfig)
//! puts [`SECURE_CAP`] in the `caps` of its `SERVER_HELLO_JOIN`,
//! `SERVER_HELLO_LINK` and `SERVER_ANNOUNCE`, with its Ed25519 key and the
//! key's RSA binding ([`SecureOffer`]). Those payloads are RSA-signed by the
//! sender's pinned key, so nobody on the path can strip or swap the offer
//! without breaking the signature. Then:
//!
//! 1. The server that **accepted** the link (or the introducer answering a
//!    join) has read the dialler's signed offer. Right after its own
//!    `SERVER_ANNOUNCE` it starts the handshake as initiator: `SECURE_HANDSHAKE`
//!    M1, expecting the dialler's id and the Ed25519 key of its offer.
//! 2. The **dialler** reads the acceptor's signed `SERVER_ANNOUNCE` offering
//!    the profile: the acceptor's very next frame must be M1. Anything else
//!    is a downgrade (someone removed M1 from the stream) and closes the link.
//!    It answers M2 after checking the initiator's id and the RSA binding of
//!    its Ed25519 key against the pinned RSA key of that id, and holds its own
//!    frames until M3.
//! 3. The acceptor checks M2 (signature, key confirmation, binding), sends M3
//!    and seals everything after it; the dialler does the same once M3
//!    checks out. From then on every frame on the link must be `SECURE`: a
//!    plain frame, or a record that does not open (forged, altered,
//!    replayed), is refused and dropped, and changes nothing else (the
//!    channel commits only records that open).
//!
//! A handshake that does not complete within `hello_timeout` closes the link.
//! A server that does not offer the profile, or a SOCP peer that has never
//! heard of it, keeps plain SOCP v1.3 on that link, unchanged.
//!
//! # What it saves
//!
//! On a secure link a server's own per-message frames (`SERVER_DELIVER`,
//! relayed user content) are not RSA-signed: the channel authenticates every
//! record. Frames whose signature is cached anyway (heartbeats, presence,
//! hellos) keep it, so gossip forwarded to a third server still carries its
//! origin's signature.

use bytes::Bytes;

use super::links::Role;
use super::{CLOSE_POLICY, ErrorCode, Event, LinkId, Server};
use crate::crypto::ed25519::{Ed25519Identity, Ed25519Public};
use crate::crypto::rsa::RsaPublic;
use crate::session::handshake::Expect;
use crate::session::link::{open_frame, seal_frame};
use crate::session::{
    Channel, Initiator, LocalIdentity, Responder, ResponderAwaitingFinish, SessionError,
};
use crate::time::{Instant, Now};
use crate::wire::messages::{SecureHandshake, SecureOffer, SecureRecord};
use crate::wire::{Envelope, Message, b64};

/// The capability a socp server offers for secure links.
pub const SECURE_CAP: &str = "socp-secure-v1";

/// Most frames a dialler holds for a link between sending M2 and reading M3
/// (one round trip); past it the link is closed rather than memory grown.
pub const MAX_HELD_FRAMES: usize = 4096;

/// Where a link stands in the secure profile.
#[derive(Debug, Default)]
pub(super) enum SecureLink {
    /// Plain SOCP v1.3.
    #[default]
    Off,
    /// Acceptor: the dialler's signed hello offered this Ed25519 key; the
    /// handshake starts once the link is identified.
    Offered(Ed25519Public),
    /// Dialler: the acceptor's signed announce offered the profile; its next
    /// frame must be M1.
    AwaitingHello { deadline: Instant },
    /// Acceptor: M1 sent.
    Initiated {
        state: Box<Initiator>,
        deadline: Instant,
    },
    /// Dialler: M2 sent; our frames wait here for M3.
    Responded {
        state: Box<ResponderAwaitingFinish>,
        held: Vec<Bytes>,
        deadline: Instant,
    },
    /// Established: every frame is a channel record.
    On(Box<Channel>),
}

impl SecureLink {
    /// Whether frames we send on this link end up sealed (now or after M3).
    pub(super) fn seals(&self) -> bool {
        matches!(self, Self::On(_) | Self::Responded { .. })
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Self::AwaitingHello { deadline }
            | Self::Initiated { deadline, .. }
            | Self::Responded { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }
}

/// One handshake step: the link's next state, the message to answer with,
/// and frames held until now.
struct Step {
    next: SecureLink,
    reply: Option<Vec<u8>>,
    held: Vec<Bytes>,
}

/// This server's secure-profile identity: an Ed25519 key made at start-up,
/// bound to the server's RSA key and current id (re-bound when the id
/// changes, one RSA signature each time).
#[derive(Debug)]
pub(super) struct SecureIdentity {
    key_seed: zeroize::Zeroizing<[u8; 32]>,
    bound: Option<LocalIdentity>,
}

impl SecureIdentity {
    /// Derived from the server's random seed (without drawing from its RNG,
    /// so enabling the profile changes no other random choice).
    pub(super) fn new(seed: &[u8; 32]) -> Self {
        Self {
            key_seed: zeroize::Zeroizing::new(crate::crypto::hash::sha256_concat(&[
                b"socp server secure identity",
                seed,
            ])),
            bound: None,
        }
    }
}

impl Server {
    /// Our offer for a hello's payload, or `None` when secure links are off.
    pub(super) fn secure_offer(&mut self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let me = self.session_identity()?;
        let offer = SecureOffer {
            ed25519: b64::encode(me.public().as_bytes()),
            binding: b64::encode(me.binding()),
        };
        Some(offer.to_payload())
    }

    /// A signed hello (HELLO_JOIN, HELLO_LINK, ANNOUNCE) carrying our offer
    /// when secure links are on.
    pub(super) fn hello_frame(&mut self, to: &str, now: Now, msg: Message) -> Bytes {
        match self.secure_offer() {
            Some(offer) => self.signed_frame_with(to, now.unix_ms, msg, offer),
            None => self.signed_frame(to, now.unix_ms, msg),
        }
    }

    /// Our caps for hellos.
    pub(super) fn caps(&self) -> Vec<String> {
        if self.cfg.secure_links {
            vec![SECURE_CAP.to_owned()]
        } else {
            Vec::new()
        }
    }

    /// Our session identity, bound to our current id.
    fn session_identity(&mut self) -> Option<&LocalIdentity> {
        if !self.cfg.secure_links {
            return None;
        }
        let stale = self
            .secure_id
            .bound
            .as_ref()
            .is_none_or(|me| me.id() != self.id);
        if stale {
            let key = Ed25519Identity::from_seed(*self.secure_id.key_seed);
            self.secure_id.bound =
                LocalIdentity::bound(self.id.clone(), key, &self.identity, &mut self.rng).ok();
        }
        self.secure_id.bound.as_ref()
    }

    /// Acceptor: a signed hello (HELLO_JOIN, HELLO_LINK, ANNOUNCE as first
    /// frame) offered the profile.
    pub(super) fn note_secure_offer(&mut self, link: LinkId, env: &Envelope, caps: &[String]) {
        if !self.cfg.secure_links || !caps.iter().any(|c| c == SECURE_CAP) {
            return;
        }
        let Some(offer) = SecureOffer::from_payload(&env.payload) else {
            return;
        };
        let key = b64::decode(&offer.ed25519)
            .ok()
            .and_then(|k| Ed25519Public::from_bytes(&k).ok());
        if let (Some(key), Some(l)) = (key, self.links.get_mut(&link))
            && matches!(l.secure, SecureLink::Off)
        {
            l.secure = SecureLink::Offered(key);
        }
    }

    /// Acceptor: the link is identified and our announce is out: start the
    /// handshake if the dialler offered the profile.
    pub(super) fn start_secure(&mut self, now: Now, link: LinkId, server_id: &str) {
        let key = match self.links.get(&link).map(|l| &l.secure) {
            Some(SecureLink::Offered(key)) => *key,
            _ => return,
        };
        let deadline = now.mono + self.cfg.hello_timeout;
        if self.session_identity().is_none() {
            return;
        }
        let Some(me) = self.secure_id.bound.as_ref() else {
            return;
        };
        let expect = Expect {
            id: Some(server_id.to_owned()),
            key: Some(key),
        };
        let (state, m1) = Initiator::start(me, expect, &mut self.rng);
        self.send_handshake(now, link, server_id, &m1);
        if let Some(l) = self.links.get_mut(&link) {
            l.secure = SecureLink::Initiated {
                state: Box::new(state),
                deadline,
            };
        }
    }

    /// Dialler: the acceptor's signed announce of itself (its first frame
    /// to us) offered the profile.
    pub(super) fn note_secure_announce(
        &mut self,
        now: Now,
        link: LinkId,
        env: &Envelope,
        caps: &[String],
    ) {
        if !self.cfg.secure_links || !caps.iter().any(|c| c == SECURE_CAP) {
            return;
        }
        let from_link_server = self
            .links
            .get(&link)
            .is_some_and(|l| l.role == Role::Server(env.from.clone()));
        if !from_link_server {
            return;
        }
        let deadline = now.mono + self.cfg.hello_timeout;
        if let Some(l) = self.links.get_mut(&link)
            && l.dialed_by_us()
            && matches!(l.secure, SecureLink::Off)
        {
            l.secure = SecureLink::AwaitingHello { deadline };
        }
    }

    /// Sends a handshake message (unsigned: the handshake authenticates it).
    fn send_handshake(&mut self, now: Now, link: LinkId, to: &str, m: &[u8]) {
        let msg = SecureHandshake { m: b64::encode(m) };
        let env = Envelope::new(
            self.id.clone(),
            to,
            now.unix_ms,
            Message::SecureHandshake(msg),
        );
        let frame = Bytes::from(env.encode());
        self.transmit(link, frame);
    }

    /// A `SECURE_HANDSHAKE` frame arrived on `link`.
    pub(super) fn on_secure_handshake(&mut self, now: Now, link: LinkId, hs: &SecureHandshake) {
        // Whom the link belongs to, and the RSA key its Ed25519 key must be
        // bound to: a server's pinned key, or the key a user logged in with.
        let peer = self.links.get(&link).and_then(|l| match &l.role {
            Role::Server(s) => Some((s.clone(), self.servers.get(s).map(|p| p.key.clone()), false)),
            Role::User(u) => Some((
                u.clone(),
                self.user_keys
                    .get(u)
                    .and_then(|k| RsaPublic::from_wire(k).ok())
                    .map(|(k, _)| k),
                true,
            )),
            _ => None,
        });
        let Some((server_id, pinned, is_user)) = peer else {
            self.secure_fail(link, "a secure handshake before the link identified itself");
            return;
        };
        if !self.cfg.secure_links {
            // As a SOCP server that never heard of the type would: refused,
            // and the peer carries on in plain SOCP.
            self.reject(
                link,
                ErrorCode::UnknownType,
                "SECURE_HANDSHAKE: the secure profile is off on this server".into(),
            );
            return;
        }
        let Ok(m) = b64::decode(&hs.m) else {
            self.secure_fail(link, "handshake message is not base64url");
            return;
        };
        let Some(pinned) = pinned else {
            self.secure_fail(link, "no pinned key for the peer");
            return;
        };
        if self.session_identity().is_none() {
            self.secure_fail(link, "the secure profile is off here");
            return;
        }
        let deadline = now.mono + self.cfg.hello_timeout;
        if is_user
            && let Some(l) = self.links.get_mut(&link)
            && matches!(l.secure, SecureLink::Off)
        {
            // A socp client opens the handshake itself (it dialled us).
            l.secure = SecureLink::AwaitingHello { deadline };
        }
        let state = match self.links.get_mut(&link) {
            Some(l) => core::mem::take(&mut l.secure),
            None => return,
        };
        let Some(me) = self.secure_id.bound.as_ref() else {
            return;
        };
        let result: Result<Step, SessionError> = match state {
            SecureLink::AwaitingHello { deadline } => Responder::read_hello(me, &m)
                .and_then(|pending| {
                    if pending.peer().id != server_id {
                        return Err(SessionError::UnexpectedPeer(format!(
                            "the handshake names {}, the link is {server_id}",
                            pending.peer().id
                        )));
                    }
                    pending.peer().verify_binding(&pinned)?;
                    pending.accept(me, &mut self.rng)
                })
                .map(|(state, m2)| Step {
                    next: SecureLink::Responded {
                        state: Box::new(state),
                        held: Vec::new(),
                        deadline,
                    },
                    reply: Some(m2),
                    held: Vec::new(),
                }),
            SecureLink::Initiated { state, .. } => state.finish(me, &m).and_then(|(est, m3)| {
                est.peer().verify_binding(&pinned)?;
                Ok(Step {
                    next: SecureLink::On(Box::new(est.into_channel())),
                    reply: Some(m3),
                    held: Vec::new(),
                })
            }),
            SecureLink::Responded { state, held, .. } => state.finish(&m).map(|est| Step {
                next: SecureLink::On(Box::new(est.into_channel())),
                reply: None,
                held,
            }),
            _ => Err(SessionError::Malformed("an unexpected handshake message")),
        };
        match result {
            Ok(Step { next, reply, held }) => {
                if let Some(reply) = reply {
                    self.send_handshake(now, link, &server_id, &reply);
                }
                let up = matches!(next, SecureLink::On(_));
                if let Some(l) = self.links.get_mut(&link) {
                    l.secure = next;
                }
                if up {
                    self.events.push_back(Event::SecureLinkUp {
                        server_id: server_id.clone(),
                    });
                    for frame in held {
                        self.send(link, frame);
                    }
                }
            }
            Err(e) => self.secure_fail(link, &format!("secure handshake failed: {e}")),
        }
    }

    /// A `SECURE` record arrived on `link`: the frame inside, or `None`
    /// (refused, link closed).
    pub(super) fn open_secure(&mut self, link: LinkId, record: &SecureRecord) -> Option<Vec<u8>> {
        let opened = match self.links.get_mut(&link).map(|l| &mut l.secure) {
            Some(SecureLink::On(channel)) => open_frame(channel, record),
            _ => Err(SessionError::Malformed(
                "a sealed frame on a link without a channel",
            )),
        };
        match opened {
            Ok(inner) => Some(inner.to_vec()),
            Err(e) => {
                // The channel is unchanged by a refused record, so one forged,
                // altered or replayed record costs its sender nothing but
                // this event: the link and the good records on it carry on.
                self.secure_refuse(link, &format!("sealed frame refused: {e}"));
                None
            }
        }
    }

    /// Whether a plain (not sealed) frame is acceptable on `link` now.
    /// - A dialler waiting for M1 takes none: the peer's signed announce
    ///   promised the handshake next, so a plain frame means M1 was removed
    ///   (a downgrade); the link is closed.
    /// - A link whose channel is up takes none either: the frame is refused
    ///   (an injection) and dropped; the link carries on.
    pub(super) fn plain_frame_allowed(&mut self, link: LinkId) -> bool {
        match self.links.get(&link).map(|l| &l.secure) {
            Some(SecureLink::AwaitingHello { .. }) => {
                self.secure_fail(
                    link,
                    "the peer offered the secure profile but its next frame was not the handshake (downgrade?)",
                );
                false
            }
            Some(SecureLink::On(_)) => {
                self.secure_refuse(link, "a plain frame on a secure link");
                false
            }
            _ => true,
        }
    }

    /// `frame` as it must go out on `link`: sealed in a `SECURE` record on a
    /// secure link, held until M3 while the dialler waits, else as is.
    /// `None` when held or when sealing failed (the link is then closed).
    pub(super) fn outgoing(&mut self, link: LinkId, frame: Bytes) -> Option<Bytes> {
        let ts = self.now.unix_ms;
        let Some(l) = self.links.get_mut(&link) else {
            return Some(frame);
        };
        let peer = match &l.role {
            Role::Server(peer) | Role::User(peer) => peer.as_str(),
            _ => return Some(frame),
        };
        match &mut l.secure {
            SecureLink::On(channel) => match seal_frame(channel, &self.id, peer, ts, &frame) {
                Ok(sealed) => Some(sealed),
                Err(e) => {
                    self.secure_fail(link, &format!("cannot seal: {e}"));
                    None
                }
            },
            SecureLink::Responded { held, .. } if held.len() < MAX_HELD_FRAMES => {
                held.push(frame);
                None
            }
            SecureLink::Responded { .. } => {
                self.secure_fail(link, "too many frames waiting for the secure handshake");
                None
            }
            _ => Some(frame),
        }
    }

    /// Whether our frames to `link` will be sealed (so need no RSA signature).
    pub(super) fn link_seals(&self, link: LinkId) -> bool {
        self.links.get(&link).is_some_and(|l| l.secure.seals())
    }

    /// Closes links whose handshake did not complete in time.
    pub(super) fn secure_deadlines(&mut self, now: Now) {
        let late: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.secure.deadline().is_some_and(|d| now.mono >= d))
            .map(|(id, _)| *id)
            .collect();
        for link in late {
            self.secure_fail(link, "the secure handshake did not complete in time");
        }
    }

    /// The next instant a handshake deadline falls due.
    pub(super) fn next_secure_deadline(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|l| l.secure.deadline())
            .min()
    }

    /// Refuses one frame on a secure link: an event, nothing else changes.
    fn secure_refuse(&mut self, link: LinkId, detail: &str) {
        self.events.push_back(Event::Rejected {
            link,
            code: ErrorCode::InvalidSig,
            detail: detail.to_owned(),
        });
    }

    /// Fails the secure profile on `link`: an event, and the link closes.
    fn secure_fail(&mut self, link: LinkId, detail: &str) {
        self.events.push_back(Event::Rejected {
            link,
            code: ErrorCode::Forbidden,
            detail: detail.to_owned(),
        });
        if let Some(l) = self.links.get_mut(&link) {
            l.secure = SecureLink::Off;
        }
        self.close(link, CLOSE_POLICY, "secure link failure");
    }
}
