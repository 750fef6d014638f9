//! Routing (SOCP §10, "authoritative"): direct messages, files and relayed user
//! content. The server never decrypts anything it routes.
//!
//! `route_to_user(target)`: a local target gets USER_DELIVER; a target homed on a
//! linked server gets SERVER_DELIVER to that server, re-signed with our key and
//! with the original `ts` kept in the envelope and as `orig_ts`; anything else
//! gets `ERROR USER_NOT_FOUND` back to the originator (through its home server
//! when the originator is remote).
//!
//! Public-channel messages, files and key shares are relayed as the user sent
//! them: to the named user (local, or through its home server), or for a channel
//! target (`"public"`, `"*"`) to every local user and, when the sender is ours, to
//! every server that hosts users, once each.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Event, LinkId, Location, Server, dm_seen_key, is_channel_target};
use crate::time::Now;
use crate::wire::messages::{Ack, ErrorMsg, MsgDirect, ServerDeliver, UserDeliver};
use crate::wire::{Envelope, ErrorCode, MsgType};

/// Payload keys of a direct message that socp clients add to reassemble a
/// message sent in several RSA pieces; relayed unchanged on every hop (other
/// SOCP peers ignore unknown keys).
const CARRIED_KEYS: [&str; 3] = ["msg_id", "part", "parts"];

/// The next hop of a frame for a user (see `Server::next_hop`).
enum NextHop {
    /// The user is ours: its link.
    Local(LinkId),
    /// The user's home server (by id) and our link to it.
    Home(String, LinkId),
}

/// A direct message on its way, whichever frame carried it.
struct Dm {
    sender: String,
    recipient: String,
    ts: u64,
    ciphertext: String,
    sender_pub: String,
    content_sig: String,
    /// The [`CARRIED_KEYS`] present in the payload that brought it.
    carried: Map<String, Value>,
}

/// The `msg_ref` the server acknowledges a user's frame with:
/// `"{to}/{msg_id}/{part}"`, for frames that carry socp's `msg_id` (a
/// 32-hex-digit string) and optionally `part` (a small integer, default 0).
/// Frames without them (other SOCP clients) are not acknowledged, so those
/// clients never see an ACK they did not ask for.
#[must_use]
pub(super) fn ack_ref(to: &str, payload: &Map<String, Value>) -> Option<String> {
    let msg_id = payload.get("msg_id")?.as_str()?;
    if msg_id.len() != 32 || !msg_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let part = match payload.get("part") {
        None => 0,
        Some(v) => v.as_u64()?,
    };
    Some(Ack::msg_ref_for(to, &msg_id.to_ascii_lowercase(), part))
}

fn carried(payload: &Map<String, Value>) -> Map<String, Value> {
    CARRIED_KEYS
        .iter()
        .filter_map(|k| payload.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

impl Server {
    pub(super) fn on_msg_direct(&mut self, now: Now, link: LinkId, env: Envelope, dm: MsgDirect) {
        if !self.is_fresh(now, env.ts) {
            self.reject(
                link,
                ErrorCode::Stale,
                "ts outside the freshness window".into(),
            );
            return;
        }
        // A client resending after a reconnect must not deliver twice.
        let key = dm_seen_key(env.ts, &env.from, &env.to, &dm.ciphertext);
        let ack = ack_ref(&env.to, &env.payload).map(|r| (env.from.clone(), r));
        if !self.seen.insert(now.mono, key) {
            self.events.push_back(Event::Duplicate { link });
            self.send_ack(now, link, ack);
            return;
        }
        let sender_pub = dm
            .sender_pub
            .filter(|k| !k.is_empty())
            .or_else(|| self.user_keys.get(&env.from).cloned())
            .unwrap_or_default();
        let msg = Dm {
            carried: carried(&env.payload),
            sender: env.from,
            recipient: env.to,
            ts: env.ts,
            ciphertext: dm.ciphertext,
            sender_pub,
            content_sig: dm.content_sig.unwrap_or_default(),
        };
        if self.route_dm(now, link, None, msg) {
            self.send_ack(now, link, ack);
        }
    }

    pub(super) fn on_server_deliver(
        &mut self,
        now: Now,
        link: LinkId,
        link_server: &str,
        env: &Envelope,
        d: ServerDeliver,
    ) {
        let msg = Dm {
            sender: d.sender,
            recipient: d.user_id,
            ts: d.orig_ts.unwrap_or(env.ts),
            ciphertext: d.ciphertext,
            sender_pub: d.sender_pub,
            content_sig: d.content_sig,
            carried: carried(&env.payload),
        };
        self.route_dm(now, link, Some(link_server), msg);
    }

    /// Where a frame for `user` goes next: its link if it is ours, else the
    /// link to its home server (never back to `from_server`, the server it
    /// came from); `None` when it is not reachable.
    fn next_hop(&self, user: &str, from_server: Option<&str>) -> Option<NextHop> {
        match self.locations.get(user)? {
            Location::Local => self.local_users.get(user).map(|&link| NextHop::Local(link)),
            Location::Server(home) if Some(home.as_str()) != from_server => {
                let link = self.servers.get(home)?.link?;
                Some(NextHop::Home(home.clone(), link))
            }
            Location::Server(_) => None,
        }
    }

    /// Routes a DM onwards; `false` (after telling the originator
    /// USER_NOT_FOUND) when its recipient is not reachable.
    fn route_dm(&mut self, now: Now, link: LinkId, from_server: Option<&str>, dm: Dm) -> bool {
        let Some(hop) = self.next_hop(&dm.recipient, from_server) else {
            let msg_ref = ack_ref(&dm.recipient, &dm.carried);
            self.not_found(now, link, from_server, &dm.sender, &dm.recipient, msg_ref);
            return false;
        };
        let (target, frame) = match hop {
            NextHop::Local(target) => {
                let deliver = UserDeliver {
                    ciphertext: dm.ciphertext,
                    sender: dm.sender,
                    sender_pub: dm.sender_pub,
                    content_sig: dm.content_sig,
                    orig_ts: Some(dm.ts),
                };
                let frame =
                    self.frame_for(target, &dm.recipient, dm.ts, deliver.into(), dm.carried);
                (target, frame)
            }
            NextHop::Home(home, target) => {
                let deliver = ServerDeliver {
                    user_id: dm.recipient,
                    ciphertext: dm.ciphertext,
                    sender: dm.sender,
                    sender_pub: dm.sender_pub,
                    content_sig: dm.content_sig,
                    orig_ts: Some(dm.ts),
                };
                let frame = self.frame_for(target, &home, dm.ts, deliver.into(), dm.carried);
                (target, frame)
            }
        };
        self.send(target, frame);
        true
    }

    /// `ACK {msg_ref}` to a local user for a frame the server accepted and
    /// passed on (see [`ack_ref`]). Unsigned: it travels only on the user's own
    /// link, and an RSA signature per message would double the server's cost
    /// per DM; forging one gains nothing an attacker on the link could not get
    /// by dropping frames.
    fn send_ack(&mut self, now: Now, link: LinkId, ack: Option<(String, String)>) {
        let Some((user, msg_ref)) = ack else {
            return;
        };
        let env = Envelope::new(self.id.clone(), user, now.unix_ms, Ack { msg_ref });
        self.send(link, Bytes::from(env.encode()));
    }

    /// `ERROR USER_NOT_FOUND` to the originator: on its own link if it is ours,
    /// else to its home server (which relays it), addressed to the sender.
    fn not_found(
        &mut self,
        now: Now,
        link: LinkId,
        from_server: Option<&str>,
        sender: &str,
        recipient: &str,
        msg_ref: Option<String>,
    ) {
        let detail = format!("user {recipient} is not reachable");
        match from_server {
            None => self.reject_about(
                link,
                ErrorCode::UserNotFound,
                detail,
                Some(recipient),
                msg_ref,
            ),
            Some(_) => {
                self.events.push_back(Event::Rejected {
                    link,
                    code: ErrorCode::UserNotFound,
                    detail: detail.clone(),
                });
                let err = ErrorMsg {
                    code: ErrorCode::UserNotFound,
                    detail: Some(detail),
                    user_id: Some(recipient.to_owned()),
                    msg_ref,
                };
                let frame = self.signed_frame(sender, now.unix_ms, err.into());
                self.send(link, frame);
            }
        }
    }

    /// An ERROR from a server addressed to one of our users (e.g. USER_NOT_FOUND
    /// for a DM it sent) is relayed to that user; never answered.
    pub(super) fn on_server_error(&mut self, env: &Envelope, _err: ErrorMsg) {
        if let Some(&target) = self.local_users.get(&env.to) {
            let frame = Bytes::from(env.encode());
            self.send(target, frame);
        }
    }

    /// MSG_PUBLIC_CHANNEL, FILE_START / FILE_CHUNK / FILE_END and
    /// PUBLIC_CHANNEL_KEY_SHARE: opaque user content, relayed as sent.
    /// `from_server` is the server it came from, `None` if its sender is ours.
    pub(super) fn on_user_content(
        &mut self,
        now: Now,
        link: LinkId,
        env: Envelope,
        from_server: Option<&str>,
    ) {
        if from_server.is_none() {
            if !self.is_fresh(now, env.ts) {
                self.reject(
                    link,
                    ErrorCode::Stale,
                    "ts outside the freshness window".into(),
                );
                return;
            }
            let key = super::seen::seen_key(env.ts, &env.from, &env.to, &env.payload_digest());
            if !self.seen.insert(now.mono, key) {
                self.events.push_back(Event::Duplicate { link });
                return;
            }
        }
        // Public messages from our users are acknowledged once passed on.
        let ack = (from_server.is_none() && env.msg_type == MsgType::MsgPublicChannel)
            .then(|| ack_ref(&env.to, &env.payload))
            .flatten()
            .map(|r| (env.from.clone(), r));
        // Local users get the frame as its sender wrote it.
        let mut as_sent = env.clone();
        if from_server.is_some() {
            as_sent.sig = None;
        }
        let local_frame = Bytes::from(as_sent.encode());
        if is_channel_target(&env.to) {
            self.broadcast_local(&local_frame, Some(&env.from));
            if from_server.is_none() {
                let homes: Vec<LinkId> = self
                    .servers
                    .iter()
                    .filter(|(id, _)| {
                        self.locations
                            .values()
                            .any(|loc| matches!(loc, Location::Server(s) if s == *id))
                    })
                    .filter_map(|(_, s)| s.link)
                    .collect();
                // One frame per kind of link: signed once for plain links,
                // unsigned for secure ones (their channel authenticates it).
                let (sealed, plain): (Vec<LinkId>, Vec<LinkId>) =
                    homes.into_iter().partition(|t| self.link_seals(*t));
                if let Some(first) = sealed.first() {
                    let frame = self.resigned_for(*first, env.clone());
                    for target in sealed {
                        self.send(target, frame.clone());
                    }
                }
                if !plain.is_empty() {
                    let frame = self.resigned(env);
                    for target in plain {
                        self.send(target, frame.clone());
                    }
                }
            }
            return;
        }
        match self.next_hop(&env.to, from_server) {
            Some(NextHop::Local(target)) => self.send(target, local_frame),
            Some(NextHop::Home(_, target)) => {
                let frame = self.resigned_for(target, env);
                self.send(target, frame);
            }
            None => {
                let msg_ref = ack_ref(&env.to, &env.payload);
                self.not_found(now, link, from_server, &env.from, &env.to, msg_ref);
                return;
            }
        }
        self.send_ack(now, link, ack);
    }
}
