//! Presence (SOCP §8.2, §9.1): USER_HELLO, USER_ADVERTISE / USER_REMOVE gossip and
//! the rosters relayed to local users.
//!
//! - A USER_HELLO is accepted when its `from` is a UUIDv4, its key is RSA-4096 with
//!   e = 65537, the id is not already connected here (`NAME_IN_USE`, the first
//!   session survives) and the key matches the one pinned to that id, if any.
//! - USER_ADVERTISE carries the user's key (so clients can learn it, §3) and is
//!   accepted from a server only for its own users (`payload.server_id == from`).
//!   Gossip is forwarded unchanged to the other servers; the seen-cache keeps it
//!   loop-free. A user's key is pinned network-wide on first sight: an advert with
//!   a different key for a known user is refused.
//! - USER_REMOVE is honoured only when it comes from the user's current home
//!   server, and forwarded in any case (conformance case 10).
//! - Every roster change is relayed to local users as the advert or remove frame.

use bytes::Bytes;
use serde_json::Map;

use super::links::Role;
use super::{CLOSE_POLICY, Event, LinkId, Location, Server, StoreOp};
use crate::crypto::rsa::RsaPublic;
use crate::time::Now;
use crate::wire::messages::{UserAdvertise, UserHello, UserRemove};
use crate::wire::{Envelope, ErrorCode, is_uuid_v4};

impl Server {
    pub(super) fn on_user_hello(
        &mut self,
        now: Now,
        link: LinkId,
        env: &Envelope,
        hello: UserHello,
    ) {
        let user = env.from.clone();
        if !is_uuid_v4(&user) {
            self.reject(link, ErrorCode::BadKey, "user id must be a UUIDv4".into());
            self.close(link, CLOSE_POLICY, "bad user id");
            return;
        }
        let key = match RsaPublic::from_wire(&hello.pubkey) {
            Ok((key, _)) => key.to_wire(),
            Err(e) => {
                self.reject(link, e.code(), format!("user key refused: {e}"));
                self.close(link, CLOSE_POLICY, "bad key");
                return;
            }
        };
        if self.accounts.is_registered(&user) {
            self.reject(
                link,
                ErrorCode::Forbidden,
                format!("user id {user} is registered: log in with AUTH_HELLO"),
            );
            self.close(link, CLOSE_POLICY, "registered id");
            return;
        }
        if !self.user_admissible(link, &user, &key) {
            return;
        }
        self.admit_user(now, link, user, key);
    }

    /// Makes `link` the link of local user `user` with `key` (wire encoding),
    /// once a USER_HELLO or a login was accepted: roster, adverts, channel.
    pub(super) fn admit_user(&mut self, now: Now, link: LinkId, user: String, key: String) {
        if let Some(l) = self.links.get_mut(&link) {
            l.role = Role::User(user.clone());
        }
        self.hello_deadlines.retain(|(_, id)| *id != link);
        if self.user_keys.insert(user.clone(), key.clone()).is_none() {
            self.store(StoreOp::User {
                user_id: user.clone(),
                pubkey: key,
            });
        }
        self.local_users.insert(user.clone(), link);
        self.set_location(&user, Location::Local);
        self.public_join(now, &user);

        // Roster for the newcomer: every other online user's advert.
        let roster: Vec<Bytes> = self
            .adverts
            .iter()
            .filter(|(id, _)| **id != user)
            .map(|(_, frame)| frame.clone())
            .collect();
        for frame in roster {
            self.send(link, frame);
        }
        let others: Vec<String> = self
            .local_users
            .keys()
            .filter(|id| **id != user)
            .cloned()
            .collect();
        for other in others {
            let frame = self.local_advert_frame(now, &other);
            self.send(link, frame);
        }

        // Tell everyone else.
        let frame = self.local_advert_frame(now, &user);
        self.broadcast_servers(&frame, None);
        self.broadcast_local(&frame, Some(&user));
        self.send_channel_state(now, link, &user);
    }

    /// A local user's link closed.
    pub(super) fn on_user_gone(&mut self, now: Now, link: LinkId, user: &str) {
        if self.local_users.get(user) != Some(&link) {
            return;
        }
        self.local_users.remove(user);
        self.locations.remove(user);
        self.events.push_back(Event::UserOffline {
            user_id: user.to_owned(),
        });
        let remove = UserRemove {
            user_id: user.to_owned(),
            server_id: self.id.clone(),
        };
        let frame = self.signed_frame("*", now.unix_ms, remove.into());
        self.broadcast_servers(&frame, None);
        self.broadcast_local(&frame, None);
    }

    /// The USER_ADVERTISE of a local user, signed (the signature is cached: the
    /// payload never changes while the user stays here).
    pub(super) fn local_advert_frame(&mut self, now: Now, user: &str) -> Bytes {
        let advert = UserAdvertise {
            user_id: user.to_owned(),
            server_id: self.id.clone(),
            meta: Some(Map::new()),
            pubkey: self.user_keys.get(user).cloned(),
        };
        self.signed_frame("*", now.unix_ms, advert.into())
    }

    pub(super) fn on_user_advertise(
        &mut self,
        now: Now,
        link: LinkId,
        link_server: &str,
        env: &Envelope,
        ad: UserAdvertise,
        raw: &[u8],
    ) {
        if ad.server_id != env.from {
            self.reject(
                link,
                ErrorCode::Forbidden,
                "USER_ADVERTISE for a user homed on another server than its sender".into(),
            );
            return;
        }
        if !is_uuid_v4(&ad.user_id) || ad.server_id == self.id {
            self.reject(
                link,
                ErrorCode::BadFrame,
                "USER_ADVERTISE with a bad user id".into(),
            );
            return;
        }
        if let Some(text) = ad.pubkey() {
            let key = match RsaPublic::from_wire(text) {
                Ok((key, _)) => key.to_wire(),
                Err(e) => {
                    self.reject(link, e.code(), format!("advertised key refused: {e}"));
                    return;
                }
            };
            match self.user_keys.get(&ad.user_id) {
                Some(pinned) if *pinned != key => {
                    self.reject(
                        link,
                        ErrorCode::BadKey,
                        format!("user {} is bound to a different key", ad.user_id),
                    );
                    return;
                }
                Some(_) => {}
                None => {
                    self.user_keys.insert(ad.user_id.clone(), key);
                }
            }
        }
        let frame = Bytes::copy_from_slice(raw);
        // Forward first: gossip goes on even when we keep our own view (a local user).
        self.broadcast_servers(&frame, Some((link_server, &env.from)));
        if self.local_users.contains_key(&ad.user_id) {
            // Connected here: our local session wins for routing from this server.
            return;
        }
        self.set_location(&ad.user_id, Location::Server(ad.server_id.clone()));
        self.ensure_link(now, &ad.server_id);
        self.adverts.insert(ad.user_id.clone(), frame.clone());
        self.broadcast_local(&frame, None);
    }

    pub(super) fn on_user_remove(
        &mut self,
        _now: Now,
        _link: LinkId,
        env: &Envelope,
        rm: UserRemove,
        raw: &[u8],
    ) {
        let frame = Bytes::copy_from_slice(raw);
        let link_server = self
            .links
            .get(&_link)
            .and_then(|l| match &l.role {
                Role::Server(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        self.broadcast_servers(&frame, Some((&link_server, &env.from)));
        let home = Location::Server(rm.server_id.clone());
        if rm.server_id == env.from && self.locations.get(&rm.user_id) == Some(&home) {
            self.provisional.remove(&rm.user_id);
            self.locations.remove(&rm.user_id);
            self.adverts.remove(&rm.user_id);
            self.events.push_back(Event::UserOffline {
                user_id: rm.user_id.clone(),
            });
            self.broadcast_local(&frame, None);
        }
    }

    pub(super) fn set_location(&mut self, user: &str, location: Location) {
        // First-hand news supersedes what a WELCOME said.
        self.provisional.remove(user);
        if self.locations.get(user) == Some(&location) {
            return;
        }
        self.locations.insert(user.to_owned(), location.clone());
        self.events.push_back(Event::UserOnline {
            user_id: user.to_owned(),
            location,
        });
    }

    /// Forgets a remote user whose home server is gone, telling local users with a
    /// USER_REMOVE of our own (the home server cannot send one any more).
    pub(super) fn remove_location(&mut self, now: Now, user: &str, server_id: &str) {
        self.provisional.remove(user);
        self.locations.remove(user);
        self.adverts.remove(user);
        self.events.push_back(Event::UserOffline {
            user_id: user.to_owned(),
        });
        let remove = UserRemove {
            user_id: user.to_owned(),
            server_id: server_id.to_owned(),
        };
        let frame = self.signed_frame("*", now.unix_ms, remove.into());
        self.broadcast_local(&frame, None);
    }

    /// Sends `frame` on every identified server link, except the one it came from
    /// and its origin (`skip` = (link's server, origin server)).
    pub(super) fn broadcast_servers(&mut self, frame: &Bytes, skip: Option<(&str, &str)>) {
        let targets: Vec<LinkId> = self
            .servers
            .iter()
            .filter(|(id, _)| skip.is_none_or(|(a, b)| id.as_str() != a && id.as_str() != b))
            .filter_map(|(_, s)| s.link)
            .collect();
        for link in targets {
            self.send(link, frame.clone());
        }
    }

    /// Sends `frame` to every local user except `skip`.
    pub(super) fn broadcast_local(&mut self, frame: &Bytes, skip: Option<&str>) {
        let targets: Vec<LinkId> = self
            .local_users
            .iter()
            .filter(|(id, _)| skip != Some(id.as_str()))
            .map(|(_, link)| *link)
            .collect();
        for link in targets {
            self.send(link, frame.clone());
        }
    }
}
