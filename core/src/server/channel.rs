//! The public channel (SOCP §9.3) and the directory requests users make of their
//! server (`/list` in every dialect of socp-1.3.md §2 row 10, PUBKEY_REQUEST).
//!
//! Every user joins the public channel on its first USER_HELLO and never leaves.
//! `version` strictly increases on every membership change and is persisted. New
//! local members are announced to the other servers with PUBLIC_CHANNEL_ADD,
//! batched over [`PUBLIC_ADD_BATCH`](super::PUBLIC_ADD_BATCH) so a burst of joins
//! costs one signature. A received ADD merges its members and moves our version
//! past both ours and its `if_version`, so a conflicting `if_version` never makes
//! the version go back; PUBLIC_CHANNEL_UPDATED only ever raises it. Local users
//! get PUBLIC_CHANNEL_UPDATED when they join and, batched over
//! [`PUBLIC_UPDATED_BATCH`](super::PUBLIC_UPDATED_BATCH), whenever the version moves.
//!
//! In the legacy profile the channel's messages are per-member RSA ciphertexts
//! (§2 row 11): the 256-bit group key of the §15 data model protects nothing, so
//! this server stores no wraps and sends members `wraps: []`; key shares made by
//! clients are relayed like any other user content.

use serde_json::{Map, Value};

use super::{LinkId, Server, StoreOp};
use crate::time::Now;
use crate::wire::messages::{
    Command, CommandResponse, ListResponse, PubkeyResponse, PublicChannelAdd, PublicChannelUpdated,
};
use crate::wire::{Envelope, ErrorCode, MsgType, is_uuid_v4};

impl Server {
    /// `user` said hello: add it to the public channel if it is new.
    pub(super) fn public_join(&mut self, now: Now, user: &str) {
        if !self.public.members.insert(user.to_owned()) {
            return;
        }
        self.bump_public_version(self.public.version.saturating_add(1));
        self.store(StoreOp::PublicMember {
            member_id: user.to_owned(),
            added_at: now.unix_ms,
        });
        self.public.pending_add.push(user.to_owned());
        if self.public.flush_at.is_none() {
            self.public.flush_at = Some(now.mono + super::PUBLIC_ADD_BATCH);
        }
    }

    /// Announces the batched new members to every server.
    pub(super) fn flush_public_adds(&mut self, now: Now) {
        self.public.flush_at = None;
        if self.public.pending_add.is_empty() {
            return;
        }
        let add = std::mem::take(&mut self.public.pending_add);
        let count = u64::try_from(add.len()).unwrap_or(u64::MAX);
        let msg = PublicChannelAdd {
            if_version: self.public.version.saturating_sub(count),
            add,
        };
        let frame = self.signed_frame("*", now.unix_ms, msg.into());
        self.broadcast_servers(&frame, None);
    }

    pub(super) fn on_public_add(&mut self, now: Now, add: &PublicChannelAdd) {
        let mut changed = false;
        for member in add.add.iter().filter(|m| is_uuid_v4(m)) {
            if self.public.members.insert(member.clone()) {
                changed = true;
                self.store(StoreOp::PublicMember {
                    member_id: member.clone(),
                    added_at: now.unix_ms,
                });
            }
        }
        if changed {
            self.bump_public_version(self.public.version.max(add.if_version).saturating_add(1));
        }
    }

    pub(super) fn on_public_updated(&mut self, _now: Now, version: u64) {
        if version > self.public.version {
            self.bump_public_version(version);
        }
    }

    fn bump_public_version(&mut self, version: u64) {
        if version <= self.public.version {
            return;
        }
        self.public.version = version;
        self.store(StoreOp::PublicVersion { version });
        // Local users hear of the new version, batched: one signature per batch
        // (the payload is the same for every user).
        if self.public.updated_at.is_none() && !self.local_users.is_empty() {
            self.public.updated_at = Some(self.now.mono + super::PUBLIC_UPDATED_BATCH);
        }
    }

    /// Sends the current version to every local user.
    pub(super) fn flush_public_updated(&mut self, now: Now) {
        self.public.updated_at = None;
        let users: Vec<(String, LinkId)> = self
            .local_users
            .iter()
            .map(|(u, l)| (u.clone(), *l))
            .collect();
        for (user, link) in users {
            self.send_channel_state(now, link, &user);
        }
    }

    /// The channel's current version, sent to a user when it joins.
    pub(super) fn send_channel_state(&mut self, now: Now, link: LinkId, user: &str) {
        let msg = PublicChannelUpdated {
            version: self.public.version,
            wraps: Vec::new(),
        };
        let frame = self.signed_frame(user, now.unix_ms, msg.into());
        self.send(link, frame);
    }

    // ----- directory ---------------------------------------------------------------

    /// `/list`: the sorted ids of every online user, answered in the dialect asked.
    pub(super) fn on_list_request(&mut self, now: Now, link: LinkId, user: &str, asked: &MsgType) {
        let users = self.online_users();
        let frame = match asked {
            MsgType::ListRequest(dialect) if *dialect != crate::wire::ListDialect::ListRequest => {
                // Dialects whose reply shape is unknown get both common spellings.
                let list: Vec<Value> = users.iter().cloned().map(Value::String).collect();
                let mut payload = Map::new();
                payload.insert("online_users".into(), Value::Array(list.clone()));
                payload.insert("users".into(), Value::Array(list));
                let mut env = Envelope {
                    msg_type: MsgType::Unknown(dialect.response_type().to_owned()),
                    from: self.id.clone(),
                    to: user.to_owned(),
                    ts: now.unix_ms,
                    payload,
                    sig: None,
                };
                let sig = self.sign_payload(&env.payload, false);
                env.sig = (!sig.is_empty()).then_some(sig);
                bytes::Bytes::from(env.encode())
            }
            _ => self.signed_frame(
                user,
                now.unix_ms,
                ListResponse {
                    online_users: users,
                }
                .into(),
            ),
        };
        self.send(link, frame);
    }

    /// `COMMAND {command}` (impl B): only `/list` is a server command.
    pub(super) fn on_command(&mut self, now: Now, link: LinkId, user: &str, cmd: &Command) {
        if cmd.is_list() {
            let users = self.online_users();
            let frame = self.signed_frame(user, now.unix_ms, CommandResponse::list(&users).into());
            self.send(link, frame);
        } else {
            self.reject(
                link,
                ErrorCode::UnknownType,
                "unknown command: the server answers /list only".into(),
            );
        }
    }

    /// PUBKEY_REQUEST (impl A): a user's key, as pinned here.
    pub(super) fn on_pubkey_request(&mut self, now: Now, link: LinkId, user: &str, target: &str) {
        match self.user_keys.get(target).cloned() {
            Some(pubkey) => {
                let msg = PubkeyResponse {
                    user_id: target.to_owned(),
                    pubkey,
                };
                let frame = self.signed_frame(user, now.unix_ms, msg.into());
                self.send(link, frame);
            }
            None => self.reject_about(
                link,
                ErrorCode::UserNotFound,
                format!("no key known for user {target}"),
                Some(target),
                None,
            ),
        }
    }
}
