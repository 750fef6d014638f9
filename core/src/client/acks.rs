//! Acknowledgements and resending.
//!
//! A socp server answers each MSG_DIRECT / MSG_PUBLIC_CHANNEL piece that
//! carries our `msg_id` with `ACK {msg_ref: "{to}/{msg_id}/{part}"}` once it
//! has passed the piece on (see [`Ack::msg_ref_for`]). The client keeps every
//! message it sent, with its plaintext, until all its pieces are acknowledged
//! ([`ClientEvent::Acked`]). When the link dies first, the pieces still
//! unacknowledged may be lost: after the next login the whole message goes
//! out again, re-encrypted, signed and stamped with a fresh `ts` (the
//! server's freshness window), under the **same** `msg_id`, and the
//! receiver's replay filter, keyed by (sender, msg_id, part), drops the
//! pieces it already has, so a message is shown once.
//!
//! - Resending starts only once this server has acknowledged something: a
//!   server that never acknowledges (another SOCP implementation) would
//!   otherwise get every message again after every reconnect, and its
//!   clients, which do not deduplicate by `msg_id`, would show them twice.
//!   What waits for an ACK when a link dies before the first ACK ever came is
//!   given up at the next login (never resent later).
//! - An `ACK` means our server passed the piece on, not that it arrived: a
//!   server further on may still answer `ERROR USER_NOT_FOUND`. socp servers
//!   put the piece's `msg_ref` in that error, and the message then fails with
//!   [`SendFailure::UserNotFound`] (once), acknowledged or not. An error
//!   without `msg_ref` (other servers) fails every unacknowledged message to
//!   the user it names.
//! - At most [`ClientConfig::max_outbox`](super::ClientConfig::max_outbox)
//!   messages wait for acknowledgement; beyond that the oldest is given up
//!   (no resend), so memory stays bounded.
//! - Files are not resent: a transfer cut by a reconnect fails on the
//!   receiver's side ([`FileFailure::Timeout`](super::FileFailure::Timeout))
//!   and is sent again by the user.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Client, ClientEvent, MessageId, Outgoing, SendFailure};
use crate::wire::messages::Ack;

/// How many fully acknowledged messages are remembered, for a
/// `USER_NOT_FOUND` from a server further on that arrives after the ACK.
const RECENTLY_ACKED: usize = 256;

/// `(key of the message, part)` from a socp `msg_ref`
/// (`"{to}/{msg_id}/{part}"`); the key is the ref of part 0.
fn parse_ref(msg_ref: &str) -> Option<(String, u64)> {
    let mut fields = msg_ref.rsplitn(3, '/');
    let (part, msg_id, to) = (fields.next()?, fields.next()?, fields.next()?);
    let part = part.parse::<u64>().ok()?;
    Some((Ack::msg_ref_for(to, msg_id, 0), part))
}

/// A message sent but not yet fully acknowledged.
#[derive(Debug)]
pub(super) struct Unacked {
    /// Send order, so resends keep it.
    seq: u64,
    msg_id: MessageId,
    to: String,
    text: Arc<str>,
    public: bool,
    /// Pieces not acknowledged yet.
    waiting: BTreeSet<u64>,
}

impl Client {
    /// Remembers a message whose `parts` pieces just went out.
    pub(super) fn track_sent(
        &mut self,
        msg_id: MessageId,
        to: &str,
        text: Arc<str>,
        public: bool,
        parts: usize,
    ) {
        let key = Ack::msg_ref_for(to, &msg_id.to_hex(), 0);
        self.ack_seq += 1;
        let entry = Unacked {
            seq: self.ack_seq,
            msg_id,
            to: to.to_owned(),
            text,
            public,
            waiting: (0..u64::try_from(parts).unwrap_or(u64::MAX)).collect(),
        };
        self.unacked.insert(key, entry);
        while self.unacked.len() > self.cfg.max_outbox.max(1) {
            let oldest = self
                .unacked
                .iter()
                .min_by_key(|(_, u)| u.seq)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.unacked.remove(&k);
                }
                None => break,
            }
        }
    }

    /// An `ACK` from the server.
    pub(super) fn on_ack(&mut self, ack: &Ack) {
        let Some((key, part)) = parse_ref(&ack.msg_ref) else {
            return self.dropped(format!("ACK with a foreign msg_ref {:?}", ack.msg_ref));
        };
        self.server_acks = true;
        let Some(entry) = self.unacked.get_mut(&key) else {
            return; // already complete, or given up
        };
        entry.waiting.remove(&part);
        if entry.waiting.is_empty()
            && let Some(done) = self.unacked.remove(&key)
        {
            self.recently_acked
                .push_back((key, done.msg_id, done.to.clone()));
            if self.recently_acked.len() > RECENTLY_ACKED {
                self.recently_acked.pop_front();
            }
            self.events.push_back(ClientEvent::Acked {
                msg_id: done.msg_id,
                to: done.to,
            });
        }
    }

    /// `ERROR USER_NOT_FOUND` naming one of our pieces (`msg_ref`): that
    /// message failed, even if our server had passed it on (a server further
    /// on found the recipient gone). Reported once per message.
    pub(super) fn failed_ref(&mut self, msg_ref: &str) {
        let Some((key, _)) = parse_ref(msg_ref) else {
            return;
        };
        let failed = match self.unacked.remove(&key) {
            Some(u) => Some((u.msg_id, u.to)),
            None => self
                .recently_acked
                .iter()
                .position(|(k, ..)| *k == key)
                .and_then(|i| self.recently_acked.remove(i))
                .map(|(_, msg_id, to)| (msg_id, to)),
        };
        if let Some((msg_id, to)) = failed {
            self.events.push_back(ClientEvent::SendFailed {
                msg_id,
                to,
                reason: SendFailure::UserNotFound,
            });
        }
    }

    /// The server says `user` is not reachable: what waits for an ACK to
    /// them will not get one.
    pub(super) fn unacked_not_found(&mut self, user: &str) {
        let gone: Vec<String> = self
            .unacked
            .iter()
            .filter(|(_, u)| u.to == user)
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(u) = self.unacked.remove(&key) {
                self.events.push_back(ClientEvent::SendFailed {
                    msg_id: u.msg_id,
                    to: u.to,
                    reason: SendFailure::UserNotFound,
                });
            }
        }
    }

    /// After a new login: put what was never acknowledged back at the head
    /// of the outbox, in the order it was first sent.
    pub(super) fn requeue_unacked(&mut self) {
        if self.unacked.is_empty() {
            return;
        }
        if !self.server_acks {
            // This server never acknowledged anything: it may not speak
            // socp's ACK at all. Give the waiting messages up now, rather
            // than resend them at some later login, long after the fact (and
            // perhaps to a recipient whose app was restarted meanwhile,
            // whose replay filter no longer knows them).
            self.unacked.clear();
            return;
        }
        let mut entries: Vec<Unacked> = std::mem::take(&mut self.unacked).into_values().collect();
        entries.sort_by_key(|u| core::cmp::Reverse(u.seq));
        for u in entries {
            self.outbox.push_front(if u.public {
                Outgoing::Public {
                    msg_id: u.msg_id,
                    to: u.to,
                    text: u.text,
                }
            } else {
                Outgoing::Direct {
                    msg_id: u.msg_id,
                    to: u.to,
                    text: u.text.to_string(),
                }
            });
        }
    }

    /// Messages sent and not yet acknowledged by the server.
    #[must_use]
    pub fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }
}
