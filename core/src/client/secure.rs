//! The secure profile on the client's link to its server.
//!
//! Once its session is identified (USER_HELLO sent, or AUTH_OK received), a
//! client with [`ClientConfig::secure_link`](super::ClientConfig) opens the
//! handshake itself (`SECURE_HANDSHAKE` M1, as initiator; it dialled). Its
//! identity is its user id and a per-client Ed25519 key bound to its RSA key,
//! which the server checks against the key the user logged in with. A socp
//! server answers M2 and holds its frames until M3; from then on every frame
//! both ways is a `SECURE` channel record, and the server signs nothing it
//! sends to this client (no RSA per delivered DM). A SOCP server that does
//! not know the type answers with an error, and the link stays plain.
//!
//! What it protects: the link's content and metadata against anyone on the
//! path who only listens, and every frame's integrity once the channel is
//! up. What it does not: the client does not know its server's RSA key, so it
//! cannot tell its server from an active man in the middle, and a `ws://`
//! attacker who drops M1 keeps the link plain (SECURITY.md). DMs stay
//! end-to-end encrypted and signed either way.

use bytes::Bytes;

use super::Client;
use crate::crypto::ed25519::Ed25519Identity;
use crate::session::handshake::Expect;
use crate::session::link::{open_frame, seal_frame};
use crate::session::{Channel, Initiator, LocalIdentity};
use crate::time::Now;
use crate::wire::messages::{SecureHandshake, SecureRecord};
use crate::wire::{Envelope, Message, b64};

/// Where the client's link stands in the secure profile.
#[derive(Debug, Default)]
pub(super) enum LinkSecurity {
    /// Plain SOCP (or not tried yet on this connection).
    #[default]
    Off,
    /// M1 sent; plain frames still flow until M2.
    Initiated(Box<Initiator>),
    /// Established: every frame is a channel record.
    On(Box<Channel>),
}

impl Client {
    /// Opens the handshake on a freshly identified session.
    pub(super) fn start_secure(&mut self, now: Now) {
        self.link_security = LinkSecurity::Off;
        if !self.cfg.secure_link {
            return;
        }
        if self.secure_me.is_none() {
            let seed = crate::crypto::hash::sha256_concat(&[
                b"socp client secure identity",
                &self.secure_seed,
            ]);
            self.secure_me = LocalIdentity::bound(
                self.user_id().to_owned(),
                Ed25519Identity::from_seed(seed),
                &self.identity.rsa,
                &mut self.rng,
            )
            .ok();
        }
        let Some(me) = self.secure_me.as_ref() else {
            return;
        };
        let (state, m1) = Initiator::start(me, Expect::anyone(), &mut self.rng);
        self.send_handshake(now, &m1);
        self.link_security = LinkSecurity::Initiated(Box::new(state));
    }

    fn send_handshake(&mut self, now: Now, m: &[u8]) {
        let msg = SecureHandshake { m: b64::encode(m) };
        let env = Envelope::new(
            self.user_id().to_owned(),
            "server",
            now.unix_ms,
            Message::SecureHandshake(msg),
        );
        self.transmits.push_back(Bytes::from(env.encode()));
    }

    /// M2 from the server.
    pub(super) fn on_secure_handshake(&mut self, now: Now, hs: &SecureHandshake) {
        let state = core::mem::take(&mut self.link_security);
        let LinkSecurity::Initiated(init) = state else {
            self.link_security = state;
            return self.dropped("an unexpected secure handshake message".into());
        };
        let (Ok(m2), Some(me)) = (b64::decode(&hs.m), self.secure_me.as_ref()) else {
            return self.dropped("a malformed secure handshake message".into());
        };
        match init.finish(me, &m2) {
            Ok((established, m3)) => {
                self.send_handshake(now, &m3);
                self.link_security = LinkSecurity::On(Box::new(established.into_channel()));
            }
            Err(e) => self.dropped(format!("secure handshake failed: {e}")),
        }
    }

    /// A `SECURE` record: the frame inside, if it opens.
    pub(super) fn open_secure(&mut self, record: &SecureRecord) -> Option<Vec<u8>> {
        let LinkSecurity::On(channel) = &mut self.link_security else {
            self.dropped("a sealed frame on a link without a channel".into());
            return None;
        };
        let opened = open_frame(channel, record);
        match opened {
            Ok(inner) => Some(inner.to_vec()),
            Err(e) => {
                self.dropped(format!("sealed frame refused: {e}"));
                None
            }
        }
    }

    /// An UNKNOWN_TYPE error while our M1 waits for an answer: the server
    /// does not speak the profile. Forgets the attempt; `true` if there was
    /// one (the error is then expected and not shown).
    pub(super) fn secure_refused(&mut self) -> bool {
        if matches!(self.link_security, LinkSecurity::Initiated(_)) {
            self.link_security = LinkSecurity::Off;
            true
        } else {
            false
        }
    }

    /// Whether the link's channel is up (a plain frame is then refused).
    pub(super) fn link_sealed(&self) -> bool {
        matches!(self.link_security, LinkSecurity::On(_))
    }

    /// Queues `frame` for the server: sealed when the channel is up.
    pub(super) fn queue(&mut self, frame: Bytes) {
        let LinkSecurity::On(channel) = &mut self.link_security else {
            self.transmits.push_back(frame);
            return;
        };
        let sealed = seal_frame(
            channel,
            &self.identity.user_id,
            "server",
            self.now.unix_ms,
            &frame,
        );
        match sealed {
            Ok(sealed) => self.transmits.push_back(sealed),
            Err(e) => self.dropped(format!("cannot seal a frame: {e}")),
        }
    }

    /// Whether the link to the server runs the secure profile.
    #[must_use]
    pub fn is_link_secure(&self) -> bool {
        self.link_sealed()
    }
}
