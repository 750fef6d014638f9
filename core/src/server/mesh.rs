//! The server mesh (SOCP §8, §11): bootstrap through introducers, links between
//! servers, key pinning, heartbeats, dead-link detection and redials.
//!
//! Bootstrap, as the joiner: dial the first reachable introducer of the list,
//! send `SERVER_HELLO_JOIN` (to = `"host:port"`), take the `assigned_id` of its
//! `SERVER_WELCOME`, pin every listed server's key, dial each and open with
//! `SERVER_HELLO_LINK`, and announce ourselves with `SERVER_ANNOUNCE` (to = `"*"`)
//! on every link. An introducer that is down, or silent past the hello timeout,
//! makes us try the next; when a whole round fails we wait (exponential backoff)
//! and serve standalone meanwhile.
//!
//! As the introducer (every server answers HELLO_JOIN): keep the requested id if
//! it is a UUIDv4 not already pinned to another key, else assign a fresh one; a
//! known id with a different key is refused (conformance case 21). WELCOME lists
//! `servers` and `clients` and names us (`server_id`, `server_pub`), so the join
//! link becomes an ordinary server link.
//!
//! Duplicate links between two servers (both redialled at once) are resolved the
//! same way on both sides: keep the link dialled by the server with the smaller id.

use bytes::Bytes;
use core::time::Duration;
use rand_core::Rng;

use super::links::{Link, Origin, Role};
use super::{
    CLOSE_NORMAL, CLOSE_POLICY, Event, JoinState, LinkId, Location, PeerServer, Server, StoreOp,
    random_uuid,
};
use crate::crypto::rsa::RsaPublic;
use crate::time::Now;
use crate::wire::messages::{
    ClientInfo, Heartbeat, ServerAnnounce, ServerHelloJoin, ServerHelloLink, ServerInfo,
    ServerWelcome,
};
use crate::wire::{Envelope, ErrorCode, b64, is_uuid_v4};

/// Most users listed in a SERVER_WELCOME (each costs ~900 bytes; the default
/// frame limit is 1 MiB). The rest arrive as adverts once the links are up.
pub const MAX_WELCOME_CLIENTS: usize = 256;

impl Server {
    // ----- joining, as the new server ------------------------------------------

    pub(super) fn start_join_round(&mut self, now: Now, entry: usize) {
        let Some(e) = self.cfg.bootstrap.get(entry).cloned() else {
            return;
        };
        let link = self.alloc_link();
        self.links.insert(
            link,
            Link::new(
                Origin::Join { entry },
                false,
                now.mono,
                self.cfg.errors_per_second,
            ),
        );
        let tried = match &self.join {
            JoinState::Joining { tried, .. } => tried + 1,
            _ => 1,
        };
        self.join = JoinState::Joining {
            entry,
            link,
            deadline: now.mono + self.cfg.hello_timeout,
            tried,
        };
        self.actions.push_back(super::Action::Dial {
            link,
            host: e.host,
            port: e.port,
        });
    }

    pub(super) fn on_join_link_up(&mut self, now: Now, link: LinkId, entry: usize) {
        let Some(e) = self.cfg.bootstrap.get(entry).cloned() else {
            return;
        };
        let hello = ServerHelloJoin {
            host: self.cfg.host.clone(),
            port: self.cfg.port,
            pubkey: self.key_wire.clone(),
            caps: self.caps(),
        };
        let to = format!("{}:{}", e.host, e.port);
        let frame = self.hello_frame(&to, now, hello.into());
        self.send(link, frame);
    }

    /// The join link closed, or timed out, before a WELCOME: try the next introducer.
    pub(super) fn on_join_failed(&mut self, now: Now, link: LinkId, entry: usize) {
        let JoinState::Joining {
            link: current,
            tried,
            ..
        } = self.join.clone()
        else {
            return;
        };
        if current != link {
            return;
        }
        let count = self.cfg.bootstrap.len();
        if tried < count {
            self.start_join_round(now, (entry + 1) % count.max(1));
        } else {
            let backoff = self.join_backoff;
            self.events.push_back(Event::BootstrapFailed);
            let delay = self.jittered(backoff);
            self.join = JoinState::Waiting {
                until: now.mono + delay,
            };
            self.join_backoff = (backoff * 2).min(self.cfg.reconnect_max);
        }
    }

    /// Refuses what an introducer sent on our join link, closes the link and fails
    /// over to the next introducer at once.
    fn refuse_introducer(
        &mut self,
        now: Now,
        link: LinkId,
        entry: usize,
        code: ErrorCode,
        detail: String,
    ) {
        self.reject(link, code, detail);
        self.close(link, CLOSE_POLICY, "introducer refused");
        self.links.remove(&link);
        self.on_join_failed(now, link, entry);
    }

    pub(super) fn join_tick(&mut self, now: Now) {
        match self.join.clone() {
            JoinState::Joining {
                entry,
                link,
                deadline,
                ..
            } if now.mono >= deadline => {
                self.close(link, CLOSE_NORMAL, "no SERVER_WELCOME in time");
                self.links.remove(&link);
                self.on_join_failed(now, link, entry);
            }
            JoinState::Waiting { until } if now.mono >= until => {
                // A new round: its tries are counted afresh.
                self.join = JoinState::NotNeeded;
                self.start_join_round(now, 0);
            }
            _ => {}
        }
    }

    pub(super) fn on_welcome(
        &mut self,
        now: Now,
        link: LinkId,
        entry: usize,
        env: &Envelope,
        welcome: ServerWelcome,
    ) {
        let pinned = self
            .cfg
            .bootstrap
            .get(entry)
            .and_then(|e| e.pubkey.clone())
            .filter(|k| !k.is_empty());
        // The introducer's key: pinned in our bootstrap list, else already pinned to
        // its id, else what WELCOME itself carries (trusted on first use).
        let key_text = pinned
            .or_else(|| self.servers.get(&env.from).map(|s| s.key_wire.clone()))
            .or_else(|| welcome.server_pub.clone());
        let key = match key_text.as_deref().map(RsaPublic::from_wire) {
            Some(Ok((key, _))) => Some(key),
            Some(Err(e)) => {
                let detail = format!("introducer key: {e}");
                self.refuse_introducer(now, link, entry, ErrorCode::BadKey, detail);
                return;
            }
            None => None,
        };
        if let Some(key) = &key {
            let ok = env
                .sig
                .as_deref()
                .and_then(|s| b64::decode(s).ok())
                .is_some_and(|sig| key.verify_pss(&env.signing_bytes(), &sig).is_ok());
            if !ok {
                let detail = "SERVER_WELCOME signature does not verify".into();
                self.refuse_introducer(now, link, entry, ErrorCode::InvalidSig, detail);
                return;
            }
        }
        if welcome.assigned_id.is_empty() {
            self.reject(
                link,
                ErrorCode::BadFrame,
                "SERVER_WELCOME without assigned_id".into(),
            );
            return;
        }
        if welcome.assigned_id != self.id {
            self.id = welcome.assigned_id.clone();
        }
        self.store(StoreOp::ServerId {
            server_id: self.id.clone(),
        });
        self.join = JoinState::Joined;
        let introducer = welcome
            .server_id
            .clone()
            .unwrap_or_else(|| env.from.clone());
        self.events.push_back(Event::Joined {
            server_id: self.id.clone(),
            introducer: introducer.clone(),
        });
        // The join link becomes a server link if we know whom it reaches.
        let entry_addr = self
            .cfg
            .bootstrap
            .get(entry)
            .map(|e| (e.host.clone(), e.port));
        // Clients first: identifying a link drops the provisional locations it supersedes.
        for c in welcome.clients {
            self.learn_client(c, &introducer);
        }
        match (key, entry_addr) {
            (Some(key), Some((host, port))) if introducer != self.id => {
                match self.pin_server(&introducer, key, &host, port) {
                    Ok(()) => self.server_identified(now, link, &introducer),
                    Err(detail) => self.rejected_event(link, detail),
                }
            }
            _ => self.close(link, CLOSE_NORMAL, "joined"),
        }
        for s in welcome.servers {
            self.learn_server(now, s);
        }
    }

    /// A server named in WELCOME: pin it and dial it (unless already linked).
    fn learn_server(&mut self, now: Now, info: ServerInfo) {
        if info.server_id == self.id {
            return;
        }
        let Ok((key, _)) = RsaPublic::from_wire(&info.pubkey) else {
            self.events.push_back(Event::Rejected {
                link: LinkId(0),
                code: ErrorCode::BadKey,
                detail: format!("WELCOME lists server {} with a bad key", info.server_id),
            });
            return;
        };
        if let Err(detail) = self.pin_server(&info.server_id, key, &info.host, info.port) {
            self.rejected_event(LinkId(0), detail);
            return;
        }
        self.dial_server(now, &info.server_id);
    }

    fn learn_client(&mut self, info: ClientInfo, default_home: &str) {
        if self.local_users.contains_key(&info.user_id) || !is_uuid_v4(&info.user_id) {
            return;
        }
        // Second-hand news never overrides what a home server told us itself.
        let first_hand = self.locations.contains_key(&info.user_id)
            && !self.provisional.contains_key(&info.user_id);
        if first_hand {
            return;
        }
        let home = info.server_id.unwrap_or_else(|| default_home.to_owned());
        if home == self.id {
            return;
        }
        // A home server we are linked to speaks for its users itself (its
        // adverts and removes reach us first-hand): a WELCOME's second-hand
        // view of them may be stale (a remove still on its way to the
        // introducer) and would leave a ghost nobody corrects.
        if self.servers.get(&home).is_some_and(|s| s.link.is_some()) {
            return;
        }
        if let Ok((key, _)) = RsaPublic::from_wire(&info.pubkey) {
            let wire = key.to_wire();
            match self.user_keys.get(&info.user_id) {
                Some(pinned) if *pinned != wire => return,
                _ => {
                    self.user_keys.insert(info.user_id.clone(), wire);
                }
            }
        }
        self.set_location(&info.user_id, Location::Server(home.clone()));
        self.provisional.insert(info.user_id, home);
    }

    // ----- joining, as the introducer ------------------------------------------

    pub(super) fn on_hello_join(
        &mut self,
        now: Now,
        link: LinkId,
        env: &Envelope,
        hello: ServerHelloJoin,
    ) {
        let key = match self.check_hello_key(link, env, &hello.pubkey) {
            Some(key) => key,
            None => return,
        };
        let requested = env.from.clone();
        let assigned = if is_uuid_v4(&requested) && requested != self.id {
            match self.servers.get(&requested) {
                Some(known) if known.key != key => {
                    self.reject(
                        link,
                        ErrorCode::BadKey,
                        format!("server id {requested} is pinned to a different key"),
                    );
                    self.close(link, CLOSE_POLICY, "server id pinned to another key");
                    return;
                }
                _ => requested,
            }
        } else {
            // Not a UUIDv4 ("auto"), or our own id: assign a fresh one.
            let mut fresh = random_uuid(&mut self.rng);
            while self.servers.contains_key(&fresh) || fresh == self.id {
                fresh = random_uuid(&mut self.rng);
            }
            fresh
        };
        let servers: Vec<ServerInfo> = self
            .servers
            .iter()
            .filter(|(id, s)| **id != assigned && s.link.is_some())
            .map(|(id, s)| ServerInfo {
                server_id: id.clone(),
                host: s.host.clone(),
                port: s.port,
                pubkey: s.key_wire.clone(),
            })
            .collect();
        // The joiner learns every user from its home server's adverts once linked;
        // WELCOME's list is only a head start, capped so the frame stays small.
        let clients: Vec<ClientInfo> = self
            .locations
            .iter()
            .take(MAX_WELCOME_CLIENTS)
            .filter_map(|(user, loc)| {
                let home = match loc {
                    Location::Local => self.id.clone(),
                    Location::Server(s) => s.clone(),
                };
                let (host, port) = if home == self.id {
                    (self.cfg.host.clone(), self.cfg.port)
                } else {
                    let s = self.servers.get(&home)?;
                    (s.host.clone(), s.port)
                };
                Some(ClientInfo {
                    user_id: user.clone(),
                    host: Some(host),
                    port: Some(port),
                    pubkey: self.user_keys.get(user)?.clone(),
                    server_id: Some(home),
                })
            })
            .collect();
        if let Err(detail) = self.pin_server(&assigned, key, &hello.host, hello.port) {
            self.rejected_event(link, detail);
            return;
        }
        let welcome = ServerWelcome {
            assigned_id: assigned.clone(),
            servers,
            clients,
            server_id: Some(self.id.clone()),
            server_pub: Some(self.key_wire.clone()),
            snapshot: None,
        };
        let frame = self.signed_frame(&assigned, now.unix_ms, welcome.into());
        self.send(link, frame);
        self.server_identified(now, link, &assigned);
    }

    // ----- linking ---------------------------------------------------------------

    /// HELLO_LINK or ANNOUNCE as the first frame of an inbound link.
    pub(super) fn on_server_hello(
        &mut self,
        now: Now,
        link: LinkId,
        env: &Envelope,
        host: String,
        port: u16,
        pubkey: &str,
    ) {
        let Some(key) = self.check_hello_key(link, env, pubkey) else {
            return;
        };
        // On a link we opened to an introducer whose key our bootstrap list pins,
        // only that key may speak (whatever the first frame is).
        let join_entry = match self.links.get(&link).map(|l| &l.origin) {
            Some(Origin::Join { entry }) => Some(*entry),
            _ => None,
        };
        let pinned = join_entry
            .and_then(|entry| self.cfg.bootstrap.get(entry))
            .and_then(|e| e.pubkey.as_deref())
            .filter(|k| !k.is_empty())
            .and_then(|k| RsaPublic::from_wire(k).ok())
            .map(|(k, _)| k);
        if let Some(entry) = join_entry
            && pinned.is_some_and(|pinned| pinned != key)
        {
            let detail = "introducer key differs from the one pinned in the bootstrap list".into();
            self.refuse_introducer(now, link, entry, ErrorCode::BadKey, detail);
            return;
        }
        if env.from == self.id || env.from.is_empty() {
            self.reject(
                link,
                ErrorCode::Forbidden,
                "a server cannot link as our own id".into(),
            );
            self.close(link, CLOSE_POLICY, "bad server id");
            return;
        }
        match self.pin_server(&env.from, key, &host, port) {
            Ok(()) => self.server_identified(now, link, &env.from.clone()),
            Err(detail) => {
                self.reject(link, ErrorCode::BadKey, detail);
                self.close(link, CLOSE_POLICY, "server id pinned to another key");
            }
        }
    }

    /// SERVER_ANNOUNCE on an identified server link: a server new to us, or an
    /// address update. A new server is pinned and dialled (full mesh).
    pub(super) fn on_announce(
        &mut self,
        now: Now,
        link: LinkId,
        env: &Envelope,
        host: String,
        port: u16,
        pubkey: &str,
    ) {
        if env.from == self.id {
            return;
        }
        let key = match RsaPublic::from_wire(pubkey) {
            Ok((key, _)) => key,
            Err(e) => {
                self.reject(link, ErrorCode::BadKey, format!("announced key: {e}"));
                return;
            }
        };
        let known = self.servers.contains_key(&env.from);
        match self.pin_server(&env.from, key, &host, port) {
            Ok(()) if !known => self.dial_server(now, &env.from.clone()),
            Ok(()) => {}
            Err(detail) => self.reject(link, ErrorCode::BadKey, detail),
        }
    }

    /// Validates the key a hello carries, and its signature when present (HELLO
    /// frames may be unsigned, §1.5). Refuses and closes the link on failure.
    fn check_hello_key(&mut self, link: LinkId, env: &Envelope, pubkey: &str) -> Option<RsaPublic> {
        let key = match RsaPublic::from_wire(pubkey) {
            Ok((key, _)) => key,
            Err(e) => {
                self.reject(link, e.code(), format!("server key refused: {e}"));
                self.close(link, CLOSE_POLICY, "bad key");
                return None;
            }
        };
        if let Some(sig) = env.sig.as_deref().filter(|s| !s.is_empty() && *s != "...") {
            let ok = b64::decode(sig)
                .ok()
                .is_some_and(|sig| key.verify_pss(&env.signing_bytes(), &sig).is_ok());
            if !ok {
                self.reject(
                    link,
                    ErrorCode::InvalidSig,
                    "hello signature does not verify".into(),
                );
                self.close(link, CLOSE_POLICY, "bad signature");
                return None;
            }
        }
        Some(key)
    }

    /// Pins `key` to `server_id` (refusing a different key for a known id) and
    /// records its address. A refusal is only returned: the caller reports it, once.
    fn pin_server(
        &mut self,
        server_id: &str,
        key: RsaPublic,
        host: &str,
        port: u16,
    ) -> Result<(), String> {
        let initial = self.cfg.reconnect_initial;
        match self.servers.get_mut(server_id) {
            Some(known) if known.key != key => {
                return Err(format!(
                    "server id {server_id} is pinned to a different key"
                ));
            }
            Some(known) => {
                if known.host == host && known.port == port {
                    return Ok(());
                }
                known.host = host.to_owned();
                known.port = port;
            }
            None => {
                self.servers.insert(
                    server_id.to_owned(),
                    PeerServer {
                        key_wire: key.to_wire(),
                        key,
                        host: host.to_owned(),
                        port,
                        link: None,
                        dialing: None,
                        redial_at: None,
                        backoff: initial,
                    },
                );
            }
        }
        if let Some(s) = self.servers.get(server_id) {
            let op = StoreOp::PinServer {
                server_id: server_id.to_owned(),
                pubkey: s.key_wire.clone(),
                host: s.host.clone(),
                port: s.port,
            };
            self.store(op);
        }
        Ok(())
    }

    /// A `BAD_KEY` refusal to count and log, for callers that send no ERROR.
    fn rejected_event(&mut self, link: LinkId, detail: String) {
        self.events.push_back(Event::Rejected {
            link,
            code: ErrorCode::BadKey,
            detail,
        });
    }

    pub(super) fn dial_server(&mut self, now: Now, server_id: &str) {
        let Some(s) = self.servers.get(server_id) else {
            return;
        };
        if s.link.is_some() || s.dialing.is_some() || s.port == 0 {
            return;
        }
        let (host, port) = (s.host.clone(), s.port);
        let link = self.alloc_link();
        self.links.insert(
            link,
            Link::new(
                Origin::Peer {
                    server_id: server_id.to_owned(),
                },
                false,
                now.mono,
                self.cfg.errors_per_second,
            ),
        );
        if let Some(s) = self.servers.get_mut(server_id) {
            s.dialing = Some(link);
            s.redial_at = None;
        }
        self.actions
            .push_back(super::Action::Dial { link, host, port });
    }

    pub(super) fn on_peer_link_up(&mut self, now: Now, link: LinkId, server_id: &str) {
        let hello = ServerHelloLink {
            host: self.cfg.host.clone(),
            port: self.cfg.port,
            pubkey: self.key_wire.clone(),
            caps: self.caps(),
        };
        let frame = self.hello_frame(server_id, now, hello.into());
        self.send(link, frame);
        if let Some(s) = self.servers.get_mut(server_id)
            && s.dialing == Some(link)
        {
            s.dialing = None;
        }
        self.server_identified(now, link, server_id);
    }

    pub(super) fn on_peer_dial_failed(&mut self, now: Now, link: LinkId, server_id: &str) {
        let Some(s) = self.servers.get_mut(server_id) else {
            return;
        };
        if s.dialing == Some(link) {
            s.dialing = None;
        }
        if s.link.is_none() {
            self.schedule_redial(now, server_id);
            self.drop_provisional(server_id);
            // Users we heard of second hand on a server we cannot reach are not
            // reachable: forget them until that server's link is up.
            self.forget_users_at(now, server_id);
        }
    }

    /// We heard of a user on `server_id` (gossip forwarded by another server):
    /// make sure we have, or are getting, a link to it, so that the location is
    /// either routable or dropped when the dial fails.
    pub(super) fn ensure_link(&mut self, now: Now, server_id: &str) {
        let needs_dial = self
            .servers
            .get(server_id)
            .is_some_and(|s| s.link.is_none() && s.dialing.is_none());
        if needs_dial {
            self.dial_server(now, server_id);
        }
    }

    /// Forgets the users WELCOME placed on `server_id`: that server either
    /// advertises its real users as the link comes up, or cannot be reached.
    /// (An introducer's list is second hand and may be stale: it can still hold a
    /// USER_REMOVE that a partition kept from it.)
    fn drop_provisional(&mut self, server_id: &str) {
        let stale: Vec<String> = self
            .provisional
            .iter()
            .filter(|(_, home)| home.as_str() == server_id)
            .map(|(user, _)| user.clone())
            .collect();
        let home = Location::Server(server_id.to_owned());
        for user in stale {
            self.provisional.remove(&user);
            if self.locations.get(&user) == Some(&home) {
                self.locations.remove(&user);
                self.events.push_back(Event::UserOffline { user_id: user });
            }
        }
    }

    /// `link` now belongs to `server_id`: settle duplicates, announce ourselves and
    /// tell it who is online here.
    fn server_identified(&mut self, now: Now, link: LinkId, server_id: &str) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.role = Role::Server(server_id.to_owned());
        let dialed_by_us = l.dialed_by_us();
        self.hello_deadlines.retain(|(_, id)| *id != link);
        let previous = self.servers.get(server_id).and_then(|s| s.link);
        if let Some(old) = previous.filter(|old| *old != link) {
            let old_dialed_by_us = self.links.get(&old).is_some_and(Link::dialed_by_us);
            // Keep the link dialled by the smaller id; if both were dialled by the
            // same side, keep the newer one.
            let we_are_smaller = self.id.as_str() < server_id;
            let keep_new = if dialed_by_us == old_dialed_by_us {
                true
            } else {
                dialed_by_us == we_are_smaller
            };
            if keep_new {
                self.close(old, CLOSE_NORMAL, "duplicate link replaced");
            } else {
                self.close(link, CLOSE_NORMAL, "duplicate link");
                return;
            }
        }
        if let Some(s) = self.servers.get_mut(server_id) {
            s.link = Some(link);
            s.redial_at = None;
            s.backoff = self.cfg.reconnect_initial;
        }
        self.events.push_back(Event::ServerLinked {
            server_id: server_id.to_owned(),
        });
        self.drop_provisional(server_id);
        let announce = ServerAnnounce {
            host: self.cfg.host.clone(),
            port: self.cfg.port,
            pubkey: self.key_wire.clone(),
            caps: self.caps(),
        };
        let frame = self.hello_frame("*", now, announce.into());
        self.send(link, frame);
        // The acceptor of a link whose dialler offered the secure profile
        // starts the handshake right after its announce (server::secure).
        self.start_secure(now, link, server_id);
        let locals: Vec<String> = self.local_users.keys().cloned().collect();
        for user in locals {
            let frame = self.local_advert_frame(now, &user);
            self.send(link, frame);
        }
    }

    /// A server link is gone: forget the server's users, tell our users, redial.
    pub(super) fn on_server_link_closed(
        &mut self,
        now: Now,
        link: LinkId,
        server_id: &str,
        reason: &str,
    ) {
        let Some(s) = self.servers.get_mut(server_id) else {
            return;
        };
        if s.link != Some(link) {
            return;
        }
        s.link = None;
        self.events.push_back(Event::ServerLost {
            server_id: server_id.to_owned(),
            reason: reason.to_owned(),
        });
        self.forget_users_at(now, server_id);
        self.schedule_redial(now, server_id);
    }

    /// Forgets every user located on `server_id`, telling local users (we cannot
    /// reach that server, so nothing could be routed to them).
    fn forget_users_at(&mut self, now: Now, server_id: &str) {
        let home = Location::Server(server_id.to_owned());
        let gone: Vec<String> = self
            .locations
            .iter()
            .filter(|(_, loc)| **loc == home)
            .map(|(user, _)| user.clone())
            .collect();
        for user in gone {
            self.remove_location(now, &user, server_id);
        }
    }

    fn schedule_redial(&mut self, now: Now, server_id: &str) {
        let max = self.cfg.reconnect_max;
        let Some(backoff) = self.servers.get(server_id).map(|s| s.backoff) else {
            return;
        };
        let delay = self.jittered(backoff);
        if let Some(s) = self.servers.get_mut(server_id) {
            s.redial_at = Some(now.mono + delay);
            s.backoff = (backoff * 2).min(max);
        }
    }

    /// `base` plus up to half of it again, drawn from the seeded CSPRNG.
    fn jittered(&mut self, base: Duration) -> Duration {
        let half = u64::try_from((base / 2).as_micros()).unwrap_or(0);
        let extra = if half == 0 {
            0
        } else {
            self.rng.next_u64() % half
        };
        base + Duration::from_micros(extra)
    }

    pub(super) fn redial_tick(&mut self, now: Now) {
        let due: Vec<String> = self
            .servers
            .iter()
            .filter(|(_, s)| s.redial_at.is_some_and(|t| t <= now.mono))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(s) = self.servers.get_mut(&id) {
                s.redial_at = None;
            }
            self.dial_server(now, &id);
        }
    }

    // ----- heartbeats -------------------------------------------------------------

    /// Sends HEARTBEAT on every server link and closes links silent for longer
    /// than the dead timeout (§11): detection within timeout + one interval.
    pub(super) fn heartbeat_tick(&mut self, now: Now) {
        let server_links: Vec<(LinkId, String, bool)> = self
            .links
            .iter()
            .filter_map(|(id, l)| match &l.role {
                Role::Server(s) => Some((
                    *id,
                    s.clone(),
                    now.mono.saturating_duration_since(l.last_rx) > self.cfg.dead_timeout,
                )),
                _ => None,
            })
            .collect();
        for (link, server, dead) in server_links {
            if dead {
                self.close(link, CLOSE_NORMAL, "heartbeat timeout");
                self.on_server_link_closed(now, link, &server, "heartbeat timeout");
            } else {
                let frame: Bytes = self.signed_frame(&server, now.unix_ms, Heartbeat {}.into());
                self.send(link, frame);
            }
        }
    }
}
