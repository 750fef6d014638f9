//! The SOCP v1.3 server and introducer, as a sans-IO state machine.
//!
//! A [`Server`] is fed connections, frames, closures and timer ticks, and is
//! drained of frames to send, actions (dial, close, persist) and events. It never
//! touches a socket, a clock or the OS random source.
//!
//! # The run loop
//!
//! ```no_run
//! use socp_core::crypto::fixtures;
//! use socp_core::server::{Connection, Server, ServerConfig, StoredState};
//! use socp_core::time::{Instant, Now};
//!
//! let now = Now::new(Instant::ZERO, 1_700_000_000_000);
//! let identity = fixtures::rsa_identity(1);
//! let mut server = Server::new(ServerConfig::default(), identity, [7; 32], StoredState::default(), now);
//! // An adapter accepted a WebSocket:
//! let link = server.handle_connected(now, Connection::Inbound { remote: "127.0.0.1:4000".into() });
//! // ... and read a text frame from it:
//! server.handle_frame(now, link, br#"{"type":"USER_HELLO"}"#);
//! // After every input, drain everything:
//! while let Some(tx) = server.poll_transmit() { /* write tx.frame to tx.link */ }
//! while let Some(action) = server.poll_action() { /* dial, close, persist */ }
//! while let Some(event) = server.poll_event() { /* log, metrics */ }
//! // Then sleep until `poll_timeout()` (or the next input) and call `handle_timeout`.
//! let _wake_at = server.poll_timeout();
//! ```
//!
//! Contract: mutate (any `handle_*`), then drain all three queues, then re-arm the
//! timer from [`Server::poll_timeout`]. Calling `handle_timeout` early is harmless.
//! The same seed and the same inputs give the same outputs, byte for byte.
//!
//! # What lives where
//! - `mesh`: bootstrap through introducers (HELLO_JOIN → WELCOME), linking
//!   (HELLO_LINK / ANNOUNCE), key pinning, heartbeats, dead links, redials;
//! - `presence`: USER_HELLO, USER_ADVERTISE / USER_REMOVE gossip, rosters;
//! - `routing`: MSG_DIRECT / SERVER_DELIVER / USER_DELIVER (§10), files, errors;
//! - `channel`: the public channel and the `/list` and pubkey directory requests.

pub mod accounts;
pub mod config;
pub mod io;
pub mod seen;
pub mod store;

mod channel;
mod links;
mod mesh;
mod presence;
mod routing;
mod secure;
mod sigcache;
mod throttle;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use core::time::Duration;
use rand_core::Rng;
use serde_json::{Map, Value};

pub use accounts::AccountRecord;
pub use config::{BootstrapEntry, ServerConfig};
pub use io::{
    Action, Connection, Event, LinkId, LoadRequest, Location, StoreOp, StoredReply, StoredState,
    Transmit,
};
pub use mesh::MAX_WELCOME_CLIENTS;
pub use secure::{MAX_HELD_FRAMES, SECURE_CAP};
pub use store::{MemoryStore, Store};

use crate::crypto::rsa::{RsaIdentity, RsaPublic};
use crate::crypto::{CoreRng, rng_from_seed, sha256};
use crate::time::{Instant, Now};
use crate::wire::messages::ErrorMsg;
use crate::wire::{Envelope, ErrorCode, Message, b64};
use links::{Link, Origin, Role};

/// A server frame as it arrived: its bytes (forwarded as they are by
/// gossip) and whether it came out of a secure link's channel.
#[derive(Debug, Clone, Copy)]
struct Received<'a> {
    raw: &'a [u8],
    sealed: bool,
}
use seen::{SeenCache, SeenKey};
use sigcache::SigCache;

/// WebSocket close code for a normal close.
pub const CLOSE_NORMAL: u16 = 1000;
/// WebSocket close code for a policy violation (bad identity, refused key).
pub const CLOSE_POLICY: u16 = 1008;

/// A server we know: its pinned key, its address and our link to it.
#[derive(Debug)]
struct PeerServer {
    key: RsaPublic,
    key_wire: String,
    host: String,
    port: u16,
    /// The link we route through, once identified.
    link: Option<LinkId>,
    /// A dial of ours in progress.
    dialing: Option<LinkId>,
    /// When to dial again after losing the link (exponential backoff).
    redial_at: Option<Instant>,
    backoff: Duration,
}

/// Where bootstrapping stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JoinState {
    /// No bootstrap list: we are the first server of a network.
    NotNeeded,
    /// Dialing or waiting for WELCOME from `entry`; give up on it at `deadline`.
    Joining {
        entry: usize,
        link: LinkId,
        deadline: Instant,
        tried: usize,
    },
    /// Every introducer failed this round; try again at `until`.
    Waiting { until: Instant },
    /// An introducer welcomed us.
    Joined,
}

/// The public channel (`group_id` "public", §9.3).
#[derive(Debug, Default)]
struct PublicChannel {
    version: u64,
    members: BTreeSet<String>,
    /// New local members not yet announced with PUBLIC_CHANNEL_ADD (batched).
    pending_add: Vec<String>,
    flush_at: Option<Instant>,
    /// When to tell local users the new version (batched).
    updated_at: Option<Instant>,
}

/// How long new members are batched before one PUBLIC_CHANNEL_ADD announces them.
const PUBLIC_ADD_BATCH: Duration = Duration::from_millis(200);
/// How long version changes are batched before local users get PUBLIC_CHANNEL_UPDATED.
const PUBLIC_UPDATED_BATCH: Duration = Duration::from_secs(1);

/// A SOCP v1.3 server (and introducer). See the [module documentation](self).
pub struct Server {
    cfg: ServerConfig,
    identity: RsaIdentity,
    key_wire: String,
    id: String,
    rng: CoreRng,
    now: Now,
    next_link: u64,
    links: BTreeMap<LinkId, Link>,
    servers: BTreeMap<String, PeerServer>,
    local_users: BTreeMap<String, LinkId>,
    locations: BTreeMap<String, Location>,
    /// Locations learned second hand from a WELCOME, until their home server
    /// speaks for itself (user → home server).
    provisional: BTreeMap<String, String>,
    /// Users' keys (wire encoding), pinned on first sight.
    user_keys: BTreeMap<String, String>,
    /// The last USER_ADVERTISE frame of every online remote user, relayed to new local users.
    adverts: BTreeMap<String, Bytes>,
    public: PublicChannel,
    /// Registered accounts and outstanding login challenges.
    accounts: accounts::Accounts,
    /// Wrong keystore proofs per account (`throttle` module).
    guesses_by_account: throttle::Throttle,
    /// Failed authentications per remote address.
    guesses_by_address: throttle::Throttle,
    seen: SeenCache,
    join: JoinState,
    /// Delay before the next bootstrap round after a whole round failed.
    join_backoff: Duration,
    heartbeat_at: Instant,
    hello_deadlines: BTreeSet<(Instant, LinkId)>,
    sigs: SigCache,
    /// Our secure-profile identity (Ed25519 key, RSA binding).
    secure_id: secure::SecureIdentity,
    /// Signatures already verified: SHA-256 of (key fingerprint, payload digest, sig).
    verified: sigcache::VerifiedCache,
    transmits: VecDeque<Transmit>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.id)
            .field("links", &self.links.len())
            .field("servers", &self.servers.len())
            .field("local_users", &self.local_users.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with `identity` (its RSA-4096 key), a 32-byte random `seed`, and the
    /// state an earlier run persisted. If the config has a bootstrap list, the
    /// server starts joining through it at once (see [`Server::poll_action`]).
    #[must_use]
    pub fn new(
        cfg: ServerConfig,
        identity: RsaIdentity,
        seed: [u8; 32],
        stored: StoredState,
        now: Now,
    ) -> Self {
        let mut rng = rng_from_seed(seed);
        let secure_id = secure::SecureIdentity::new(&seed);
        let id = stored
            .server_id
            .clone()
            .or_else(|| {
                cfg.requested_id
                    .clone()
                    .filter(|id| crate::wire::is_uuid_v4(id))
            })
            .unwrap_or_else(|| random_uuid(&mut rng));
        let key_wire = identity.public().to_wire();
        let cfg_backoff = cfg.reconnect_initial;
        let guesses_by_account =
            throttle::Throttle::new(cfg.login_failures_per_account, cfg.login_failure_decay);
        let guesses_by_address =
            throttle::Throttle::new(cfg.login_failures_per_address, cfg.login_failure_decay);
        let mut server = Self {
            seen: SeenCache::new(cfg.seen_ttl, cfg.seen_capacity),
            heartbeat_at: now.mono + cfg.heartbeat_interval,
            cfg,
            identity,
            key_wire,
            id,
            rng,
            now,
            next_link: 1,
            links: BTreeMap::new(),
            servers: BTreeMap::new(),
            local_users: BTreeMap::new(),
            locations: BTreeMap::new(),
            provisional: BTreeMap::new(),
            user_keys: BTreeMap::new(),
            adverts: BTreeMap::new(),
            public: PublicChannel::default(),
            accounts: accounts::Accounts::default(),
            guesses_by_account,
            guesses_by_address,
            join: JoinState::NotNeeded,
            join_backoff: cfg_backoff,
            hello_deadlines: BTreeSet::new(),
            sigs: SigCache::new(1024),
            secure_id,
            verified: sigcache::VerifiedCache::new(4096),
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        let had_id = stored.server_id.is_some();
        server.restore(stored);
        if !had_id {
            // Persist our id at once: a server that never joins anyone (the first of
            // a network) must come back under the same id, or its peers would keep
            // its old id pinned to the same address and key.
            server.store(StoreOp::ServerId {
                server_id: server.id.clone(),
            });
        }
        if !server.cfg.bootstrap.is_empty() {
            server.start_join_round(now, 0);
        }
        server
    }

    fn restore(&mut self, stored: StoredState) {
        for (user_id, pubkey) in stored.users {
            if let Ok((key, _)) = RsaPublic::from_wire(&pubkey) {
                self.user_keys.insert(user_id, key.to_wire());
            }
        }
        for account in stored.accounts {
            self.accounts
                .index(&account.user_id, account.username.as_deref());
            // An account's key is pinned to its id, even if it never logged in.
            if let Ok((key, _)) = RsaPublic::from_wire(&account.pubkey) {
                self.user_keys
                    .entry(account.user_id)
                    .or_insert_with(|| key.to_wire());
            }
        }
        self.public.version = stored.public_version;
        self.public
            .members
            .extend(stored.public_members.into_iter().map(|(id, _)| id));
        for (server_id, pubkey, host, port) in stored.servers {
            if server_id == self.id {
                continue;
            }
            if let Ok((key, _)) = RsaPublic::from_wire(&pubkey) {
                self.servers.insert(
                    server_id,
                    PeerServer {
                        key_wire: key.to_wire(),
                        key,
                        host,
                        port,
                        link: None,
                        dialing: None,
                        redial_at: Some(self.now.mono),
                        backoff: self.cfg.reconnect_initial,
                    },
                );
            }
        }
    }

    // ----- getters -------------------------------------------------------------

    /// This server's id (assigned by the introducer once joined).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// This server's public key in wire encoding.
    #[must_use]
    pub fn pubkey(&self) -> &str {
        &self.key_wire
    }

    /// Whether an introducer has welcomed us (or none was needed).
    #[must_use]
    pub fn is_joined(&self) -> bool {
        matches!(self.join, JoinState::Joined | JoinState::NotNeeded)
    }

    /// Every user this server knows to be online, sorted (what `/list` answers).
    #[must_use]
    pub fn online_users(&self) -> Vec<String> {
        self.locations.keys().cloned().collect()
    }

    /// Where `user_id` is, if known.
    #[must_use]
    pub fn location(&self, user_id: &str) -> Option<&Location> {
        self.locations.get(user_id)
    }

    /// Users connected to this server, sorted.
    #[must_use]
    pub fn local_users(&self) -> Vec<String> {
        self.local_users.keys().cloned().collect()
    }

    /// Servers whose link to us runs the secure profile (its channel is
    /// up), sorted.
    #[must_use]
    pub fn secure_servers(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter(|(_, s)| {
                s.link
                    .and_then(|l| self.links.get(&l))
                    .is_some_and(|l| matches!(l.secure, secure::SecureLink::On(_)))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Servers with an identified link to us, sorted.
    #[must_use]
    pub fn linked_servers(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter(|(_, s)| s.link.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every server whose key is pinned here, sorted.
    #[must_use]
    pub fn known_servers(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    /// The public channel's version and member count.
    #[must_use]
    pub fn public_channel(&self) -> (u64, usize) {
        (self.public.version, self.public.members.len())
    }

    /// Number of open links of any kind.
    #[must_use]
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    // ----- inputs --------------------------------------------------------------

    /// A connection is up: an inbound one (returns its new id), or a dial of ours.
    pub fn handle_connected(&mut self, now: Now, conn: Connection) -> LinkId {
        self.now = now;
        match conn {
            Connection::Inbound { remote } => {
                let link = self.alloc_link();
                let mut l = Link::new(Origin::Inbound, true, now.mono, self.cfg.errors_per_second);
                l.remote = throttle::address_of(&remote).to_owned();
                self.links.insert(link, l);
                self.hello_deadlines
                    .insert((now.mono + self.cfg.hello_timeout, link));
                link
            }
            Connection::Dialed(link) => {
                let origin = match self.links.get_mut(&link) {
                    Some(l) if !l.up => {
                        l.up = true;
                        l.last_rx = now.mono;
                        l.origin.clone()
                    }
                    _ => return link,
                };
                match origin {
                    Origin::Join { entry } => self.on_join_link_up(now, link, entry),
                    Origin::Peer { server_id } => self.on_peer_link_up(now, link, &server_id),
                    Origin::Inbound => {}
                }
                link
            }
        }
    }

    /// A text frame arrived on `link`.
    pub fn handle_frame(&mut self, now: Now, link: LinkId, frame: &[u8]) {
        self.now = now;
        let role = match self.links.get_mut(&link) {
            Some(l) => {
                l.last_rx = now.mono;
                l.role.clone()
            }
            None => return,
        };
        if role == Role::Closing {
            return;
        }
        let env = match Envelope::decode(frame, &self.cfg.limits) {
            Ok(env) => env,
            Err(e) => {
                self.reject(link, ErrorCode::BadFrame, format!("undecodable frame: {e}"));
                return;
            }
        };
        let msg = match env.message() {
            Ok(msg) => msg,
            Err(e) => {
                self.reject(link, ErrorCode::BadFrame, format!("bad payload: {e}"));
                return;
            }
        };
        if let Role::Server(_) | Role::User(_) = &role {
            match &msg {
                Message::SecureHandshake(hs) => {
                    self.on_secure_handshake(now, link, hs);
                    return;
                }
                Message::Secure(record) => {
                    if let Some(inner) = self.open_secure(link, record) {
                        self.on_sealed_frame(now, link, &role, &inner);
                    }
                    return;
                }
                _ if !self.plain_frame_allowed(link) => return,
                _ => {}
            }
        }
        match role {
            Role::Pending => self.on_first_frame(now, link, env, msg),
            Role::User(user) => self.on_user_frame(now, link, &user, env, msg),
            Role::Server(server) => {
                let received = Received {
                    raw: frame,
                    sealed: false,
                };
                self.on_server_frame(now, link, &server, env, msg, received);
            }
            Role::Closing => {}
        }
    }

    /// A frame opened from a secure link's channel: processed like any frame
    /// of that server or user, except that for a server the channel stands in
    /// for the transport signature of frames it sends in its own name.
    fn on_sealed_frame(&mut self, now: Now, link: LinkId, role: &Role, inner: &[u8]) {
        let decoded = Envelope::decode(inner, &self.cfg.limits)
            .map_err(|e| format!("undecodable sealed frame: {e}"))
            .and_then(|env| {
                env.message()
                    .map(|msg| (env, msg))
                    .map_err(|e| format!("bad sealed payload: {e}"))
            });
        match decoded {
            Ok((_, Message::Secure(_) | Message::SecureHandshake(_))) => {
                self.reject(link, ErrorCode::BadFrame, "a nested secure frame".into());
            }
            Ok((env, msg)) => match role {
                Role::Server(server) => {
                    let received = Received {
                        raw: inner,
                        sealed: true,
                    };
                    self.on_server_frame(now, link, server, env, msg, received);
                }
                Role::User(user) => self.on_user_frame(now, link, user, env, msg),
                _ => {}
            },
            Err(detail) => self.reject(link, ErrorCode::BadFrame, detail),
        }
    }

    /// A binary WebSocket frame arrived: SOCP is text-only. Refused, link kept.
    pub fn handle_binary(&mut self, now: Now, link: LinkId) {
        self.now = now;
        self.reject(
            link,
            ErrorCode::BadFrame,
            "binary frames are not accepted: send one JSON object per text frame".into(),
        );
    }

    /// The adapter's socket for `link` received something at `at` (a frame
    /// not yet handed over, a WebSocket ping or pong). Liveness only: a busy
    /// server whose input queue holds a peer's heartbeat behind seconds of
    /// work must not declare that peer dead. Call it before
    /// [`Server::handle_timeout`]; `at` later than `now` is clamped.
    pub fn handle_heard(&mut self, now: Now, link: LinkId, at: Instant) {
        self.now = now;
        if let Some(l) = self.links.get_mut(&link) {
            l.last_rx = l.last_rx.max(at.min(now.mono));
        }
    }

    /// `link` closed (or a dial of ours failed).
    pub fn handle_closed(&mut self, now: Now, link: LinkId) {
        self.now = now;
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        self.hello_deadlines.retain(|(_, id)| *id != link);
        self.accounts.link_closed(link);
        match (&l.role, &l.origin) {
            (Role::User(user), _) => self.on_user_gone(now, link, &user.clone()),
            (Role::Server(server), _) => {
                let server = server.clone();
                self.on_server_link_closed(now, link, &server, "link closed");
            }
            (_, Origin::Join { entry }) => self.on_join_failed(now, link, *entry),
            (_, Origin::Peer { server_id }) => {
                let server_id = server_id.clone();
                self.on_peer_dial_failed(now, link, &server_id);
            }
            _ => {}
        }
    }

    /// Timers: heartbeats, dead links, hello deadlines, redials, join retries.
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        self.seen.expire(now.mono);
        self.expire_hellos(now);
        self.secure_deadlines(now);
        self.join_tick(now);
        if now.mono >= self.heartbeat_at {
            self.heartbeat_tick(now);
            let interval = self.cfg.heartbeat_interval;
            let jitter_range = u64::try_from((interval / 30).as_micros()).unwrap_or(0);
            let jitter = if jitter_range == 0 {
                0
            } else {
                self.rng.next_u64() % jitter_range
            };
            self.heartbeat_at = now.mono + interval + Duration::from_micros(jitter);
        }
        self.redial_tick(now);
        if self.public.flush_at.is_some_and(|t| now.mono >= t) {
            self.flush_public_adds(now);
        }
        if self.public.updated_at.is_some_and(|t| now.mono >= t) {
            self.flush_public_updated(now);
        }
    }

    /// Shuts down: SERVER_GOODBYE to every server, then every link is closed.
    pub fn shutdown(&mut self, now: Now) {
        self.now = now;
        let goodbye = crate::wire::messages::ServerGoodbye {
            reason: Some("shutting down".into()),
        };
        let links: Vec<(LinkId, Role)> = self
            .links
            .iter()
            .map(|(id, l)| (*id, l.role.clone()))
            .collect();
        for (link, role) in links {
            if let Role::Server(server) = &role {
                let frame = self.signed_frame(server, now.unix_ms, goodbye.clone().into());
                self.send(link, frame);
            }
            self.close(link, CLOSE_NORMAL, "server shutting down");
        }
    }

    // ----- outputs -------------------------------------------------------------

    /// The next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next action for the adapter.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Server::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.transmits.is_empty() || !self.actions.is_empty() {
            return Some(self.now.mono);
        }
        let mut next = self.heartbeat_at;
        if let Some((t, _)) = self.hello_deadlines.first() {
            next = next.min(*t);
        }
        if let Some(t) = self.next_secure_deadline() {
            next = next.min(t);
        }
        match &self.join {
            JoinState::Joining { deadline, .. } => next = next.min(*deadline),
            JoinState::Waiting { until, .. } => next = next.min(*until),
            JoinState::Joined | JoinState::NotNeeded => {}
        }
        for s in self.servers.values() {
            if let Some(t) = s.redial_at {
                next = next.min(t);
            }
        }
        for t in [self.public.flush_at, self.public.updated_at]
            .into_iter()
            .flatten()
        {
            next = next.min(t);
        }
        Some(next)
    }

    // ----- dispatch ------------------------------------------------------------

    fn on_first_frame(&mut self, now: Now, link: LinkId, env: Envelope, msg: Message) {
        let origin = self.links.get(&link).map(|l| l.origin.clone());
        match msg {
            Message::UserHello(hello) => self.on_user_hello(now, link, &env, hello),
            Message::AuthHello(hello) => self.on_auth_hello(link, &hello),
            Message::UserRegister(reg) => self.on_user_register(now, link, reg),
            Message::AuthResponse(resp) => self.on_auth_response(now, link, &resp),
            Message::KeystoreFetch(fetch) => self.on_keystore_fetch(now, link, &fetch),
            Message::ServerHelloJoin(join) => {
                self.note_secure_offer(link, &env, &join.caps);
                self.on_hello_join(now, link, &env, join);
            }
            Message::ServerHelloLink(hello) => {
                self.note_secure_offer(link, &env, &hello.caps);
                self.on_server_hello(now, link, &env, hello.host, hello.port, &hello.pubkey);
            }
            Message::ServerAnnounce(hello) => {
                self.note_secure_offer(link, &env, &hello.caps);
                self.on_server_hello(now, link, &env, hello.host, hello.port, &hello.pubkey);
            }
            Message::ServerWelcome(welcome) => match origin {
                Some(Origin::Join { entry }) => self.on_welcome(now, link, entry, &env, welcome),
                _ => self.reject(
                    link,
                    ErrorCode::Forbidden,
                    "SERVER_WELCOME on a link we did not open to join".into(),
                ),
            },
            Message::CtrlClose(_) => self.close(link, CLOSE_NORMAL, "peer closed"),
            Message::Heartbeat(_) | Message::Error(_) | Message::Ack(_) => {}
            Message::Unknown { msg_type } => self.reject(
                link,
                ErrorCode::UnknownType,
                format!("unknown message type {msg_type}"),
            ),
            _ => self.reject(
                link,
                ErrorCode::Forbidden,
                format!(
                    "{} before identification: the first frame must be USER_HELLO, AUTH_HELLO, USER_REGISTER, SERVER_HELLO_JOIN, SERVER_HELLO_LINK or SERVER_ANNOUNCE",
                    env.msg_type
                ),
            ),
        }
    }

    fn on_user_frame(&mut self, now: Now, link: LinkId, user: &str, env: Envelope, msg: Message) {
        let carries_content = matches!(
            msg,
            Message::MsgDirect(_)
                | Message::MsgPublicChannel(_)
                | Message::FileStart(_)
                | Message::FileChunk(_)
                | Message::FileEnd(_)
                | Message::PublicChannelKeyShare(_)
        );
        if carries_content && env.from != user {
            self.reject(
                link,
                ErrorCode::Forbidden,
                "`from` does not match the user this link identified as".into(),
            );
            return;
        }
        match msg {
            Message::MsgDirect(dm) => self.on_msg_direct(now, link, env, dm),
            Message::MsgPublicChannel(_)
            | Message::FileStart(_)
            | Message::FileChunk(_)
            | Message::FileEnd(_)
            | Message::PublicChannelKeyShare(_) => self.on_user_content(now, link, env, None),
            Message::ListRequest(_) => self.on_list_request(now, link, user, &env.msg_type),
            Message::Command(cmd) => self.on_command(now, link, user, &cmd),
            Message::PubkeyRequest(req) => self.on_pubkey_request(now, link, user, &req.user_id),
            Message::CtrlClose(_) => self.close(link, CLOSE_NORMAL, "user closed"),
            Message::Heartbeat(_) | Message::Ack(_) | Message::Error(_) | Message::UserHello(_) => {
            }
            Message::Unknown { msg_type } => self.reject(
                link,
                ErrorCode::UnknownType,
                format!("unknown message type {msg_type}"),
            ),
            _ => self.reject(
                link,
                ErrorCode::Forbidden,
                format!("{} is a server-to-server type", env.msg_type),
            ),
        }
    }

    fn on_server_frame(
        &mut self,
        now: Now,
        link: LinkId,
        server: &str,
        env: Envelope,
        msg: Message,
        received: Received<'_>,
    ) {
        let Received { raw, sealed } = received;
        // Duplicates are dropped before the (costly) signature check; a key enters
        // the cache only after its frame verified, so forgeries cannot poison it.
        // The canonical payload and its digest serve the seen key and the signature.
        let signed = env.signing_bytes();
        let digest = sha256(&signed);
        let seen = self.seen_key_of(&env, &msg, &digest);
        if let Some(key) = &seen
            && self.seen.contains(now.mono, key)
        {
            self.events.push_back(Event::Duplicate { link });
            return;
        }
        // On a secure link, the link's server may send in its own name (or
        // relay its users' content) without a signature: the channel
        // authenticated the frame. Frames of other servers keep theirs.
        let vouched = sealed
            && env.sig.is_none()
            && (env.from == server || !self.servers.contains_key(&env.from));
        if !vouched && let Err(detail) = self.verify_server_sig(server, &env, &signed, &digest) {
            self.reject(link, ErrorCode::InvalidSig, detail);
            return;
        }
        // For SERVER_DELIVER the signed `orig_ts` counts: the envelope `ts` is not signed.
        let ts = match &msg {
            Message::ServerDeliver(d) => d.orig_ts.unwrap_or(env.ts),
            _ => env.ts,
        };
        if needs_fresh_ts(&msg) && !self.is_fresh(now, ts) {
            self.reject(
                link,
                ErrorCode::Stale,
                "ts outside the freshness window".into(),
            );
            return;
        }
        if let Some(key) = seen {
            self.seen.insert(now.mono, key);
        }
        match msg {
            Message::ServerAnnounce(a) => {
                self.note_secure_announce(now, link, &env, &a.caps);
                self.on_announce(now, link, &env, a.host, a.port, &a.pubkey);
            }
            Message::UserAdvertise(ad) => self.on_user_advertise(now, link, server, &env, ad, raw),
            Message::UserRemove(rm) => self.on_user_remove(now, link, &env, rm, raw),
            Message::ServerDeliver(d) => self.on_server_deliver(now, link, server, &env, d),
            Message::MsgPublicChannel(_)
            | Message::FileStart(_)
            | Message::FileChunk(_)
            | Message::FileEnd(_)
            | Message::PublicChannelKeyShare(_) => {
                if self.locations.get(&env.from) != Some(&Location::Server(server.to_owned())) {
                    self.reject(
                        link,
                        ErrorCode::Forbidden,
                        "user content relayed by a server that is not the sender's home".into(),
                    );
                    return;
                }
                self.on_user_content(now, link, env, Some(server));
            }
            Message::PublicChannelAdd(add) => self.on_public_add(now, &add),
            Message::PublicChannelUpdated(up) => self.on_public_updated(now, up.version),
            Message::Error(err) => self.on_server_error(&env, err),
            Message::ServerGoodbye(_) => {
                self.close(link, CLOSE_NORMAL, "peer said goodbye");
                self.on_server_link_closed(now, link, server, "peer said goodbye");
            }
            Message::CtrlClose(_) => {
                self.close(link, CLOSE_NORMAL, "peer closed");
                self.on_server_link_closed(now, link, server, "peer closed");
            }
            Message::Unknown { msg_type } => self.events.push_back(Event::Rejected {
                link,
                code: ErrorCode::UnknownType,
                detail: format!("unknown type {msg_type} from server (dropped, not answered)"),
            }),
            // Liveness only, or nothing to do on an identified server link.
            _ => {}
        }
    }

    /// The seen-cache key of a frame, for the types that are deduplicated.
    /// `digest` is SHA-256 of the frame's canonical payload.
    fn seen_key_of(&self, env: &Envelope, msg: &Message, digest: &[u8; 32]) -> Option<SeenKey> {
        match msg {
            // Hop-independent: the same DM seen again through another server is a loop.
            Message::ServerDeliver(d) => Some(dm_seen_key(
                d.orig_ts.unwrap_or(env.ts),
                &d.sender,
                &d.user_id,
                &d.ciphertext,
            )),
            Message::MsgDirect(d) => Some(dm_seen_key(env.ts, &env.from, &env.to, &d.ciphertext)),
            Message::UserAdvertise(_)
            | Message::UserRemove(_)
            | Message::MsgPublicChannel(_)
            | Message::PublicChannelAdd(_)
            | Message::PublicChannelUpdated(_)
            | Message::PublicChannelKeyShare(_)
            | Message::FileStart(_)
            | Message::FileChunk(_)
            | Message::FileEnd(_)
            | Message::ServerAnnounce(_) => {
                Some(seen::seen_key(env.ts, &env.from, &env.to, digest))
            }
            _ => None,
        }
    }

    /// Checks a server frame's transport `sig` against the pinned key of its
    /// `from` server, or of the link's server for user frames it relays (§2 row 18).
    /// `signed` is the canonical payload and `digest` its SHA-256.
    fn verify_server_sig(
        &mut self,
        link_server: &str,
        env: &Envelope,
        signed: &[u8],
        digest: &[u8; 32],
    ) -> Result<(), String> {
        let signer = if self.servers.contains_key(&env.from) {
            env.from.as_str()
        } else {
            link_server
        };
        let Some(peer) = self.servers.get(signer) else {
            return Err(format!("no pinned key for server {signer}"));
        };
        let Some(sig) = env.sig.as_deref() else {
            return Err("missing transport signature".into());
        };
        let sig =
            b64::decode(sig).map_err(|_| "transport signature is not base64url".to_owned())?;
        // The same key, payload and signature verify the same way every time: the
        // heartbeat `{}` and re-sent adverts skip the RSA operation after the first.
        let triple = crate::crypto::hash::sha256_concat(&[&peer.key.fingerprint(), digest, &sig]);
        if self.verified.contains(&triple) {
            return Ok(());
        }
        peer.key
            .verify_pss(signed, &sig)
            .map_err(|_| "transport signature does not verify".to_owned())?;
        self.verified.insert(triple);
        Ok(())
    }

    fn is_fresh(&self, now: Now, ts: u64) -> bool {
        let window = u64::try_from(self.cfg.freshness_window.as_millis()).unwrap_or(u64::MAX);
        now.unix_ms.abs_diff(ts) <= window
    }

    // ----- output helpers ------------------------------------------------------

    fn alloc_link(&mut self) -> LinkId {
        let link = LinkId(self.next_link);
        self.next_link += 1;
        link
    }

    /// Queues `frame` for `link`, sealed if the link is secure.
    fn send(&mut self, link: LinkId, frame: Bytes) {
        if let Some(frame) = self.outgoing(link, frame) {
            self.transmit(link, frame);
        }
    }

    /// Queues `frame` for `link` exactly as it is.
    fn transmit(&mut self, link: LinkId, frame: Bytes) {
        if self.links.contains_key(&link) {
            self.transmits.push_back(Transmit { link, frame });
        }
    }

    fn close(&mut self, link: LinkId, code: u16, reason: &str) {
        if let Some(l) = self.links.get_mut(&link) {
            if l.role == Role::Closing {
                return;
            }
            if let Role::User(user) = &l.role {
                let user = user.clone();
                l.role = Role::Closing;
                self.on_user_gone(self.now, link, &user);
            } else {
                l.role = Role::Closing;
            }
            self.hello_deadlines.retain(|(_, id)| *id != link);
            self.actions.push_back(Action::Close {
                link,
                code,
                reason: reason.to_owned(),
            });
        }
    }

    fn store(&mut self, op: StoreOp) {
        self.actions.push_back(Action::Store(op));
    }

    /// Signs `payload` (canonical JSON, PSS-SHA256, max salt) with our key.
    /// Signatures over payloads that recur (heartbeats, adverts, errors) are cached.
    fn sign_payload(&mut self, payload: &Map<String, Value>, cache: bool) -> String {
        let bytes = crate::wire::json::canonical_map(payload);
        let digest = sha256(&bytes);
        if cache && let Some(sig) = self.sigs.get(&digest) {
            return sig.to_owned();
        }
        let sig = match self.identity.sign_pss(&mut self.rng, &bytes) {
            Ok(sig) => b64::encode(&sig),
            // A fault-check failure: send unsigned rather than a wrong signature.
            Err(_) => String::new(),
        };
        if cache && !sig.is_empty() {
            self.sigs.insert(digest, sig.clone());
        }
        sig
    }

    /// A frame from this server, signed.
    fn signed_frame(&mut self, to: &str, ts: u64, msg: Message) -> Bytes {
        let cache = matches!(
            msg,
            Message::Heartbeat(_)
                | Message::UserAdvertise(_)
                | Message::UserRemove(_)
                | Message::Error(_)
                | Message::ServerAnnounce(_)
                | Message::ServerHelloLink(_)
                | Message::ServerHelloJoin(_)
                | Message::ServerGoodbye(_)
                | Message::PublicChannelUpdated(_)
        );
        let mut env = Envelope::new(self.id.clone(), to, ts, msg);
        let sig = self.sign_payload(&env.payload, cache);
        if !sig.is_empty() {
            env.sig = Some(sig);
        }
        Bytes::from(env.encode())
    }

    /// A signed frame whose payload also carries `extra` keys (never overriding
    /// the message's own fields).
    fn signed_frame_with(
        &mut self,
        to: &str,
        ts: u64,
        msg: Message,
        extra: Map<String, Value>,
    ) -> Bytes {
        let mut env = Envelope::new(self.id.clone(), to, ts, msg);
        for (k, v) in extra {
            env.payload.entry(k).or_insert(v);
        }
        let sig = self.sign_payload(&env.payload, false);
        env.sig = (!sig.is_empty()).then_some(sig);
        Bytes::from(env.encode())
    }

    /// A frame in our name for `target` carrying `extra` payload keys:
    /// unsigned when `target` is a secure link (its channel authenticates
    /// every record), signed otherwise.
    fn frame_for(
        &mut self,
        target: LinkId,
        to: &str,
        ts: u64,
        msg: Message,
        extra: Map<String, Value>,
    ) -> Bytes {
        if !self.link_seals(target) {
            return self.signed_frame_with(to, ts, msg, extra);
        }
        let mut env = Envelope::new(self.id.clone(), to, ts, msg);
        for (k, v) in extra {
            env.payload.entry(k).or_insert(v);
        }
        Bytes::from(env.encode())
    }

    /// [`Server::resigned`] for `target`: without a signature on a secure link.
    fn resigned_for(&mut self, target: LinkId, mut env: Envelope) -> Bytes {
        if self.link_seals(target) {
            env.sig = None;
            return Bytes::from(env.encode());
        }
        self.resigned(env)
    }

    /// Re-signs a relayed envelope with our key, keeping its `from`, `to` and `ts`.
    fn resigned(&mut self, mut env: Envelope) -> Bytes {
        let sig = self.sign_payload(&env.payload, false);
        env.sig = (!sig.is_empty()).then_some(sig);
        Bytes::from(env.encode())
    }

    /// Refuses a frame: an event always; an `ERROR` back to users and unidentified
    /// peers (rate-limited), never to servers (no error storms, §3).
    fn reject(&mut self, link: LinkId, code: ErrorCode, detail: String) {
        self.reject_about(link, code, detail, None, None);
    }

    /// [`Server::reject`] for an error about a user (`ERROR.user_id`).
    fn reject_about(
        &mut self,
        link: LinkId,
        code: ErrorCode,
        detail: String,
        user: Option<&str>,
        msg_ref: Option<String>,
    ) {
        self.events.push_back(Event::Rejected {
            link,
            code: code.clone(),
            detail: detail.clone(),
        });
        let now = self.now;
        let to = match self.links.get_mut(&link) {
            Some(l) if !matches!(l.role, Role::Server(_) | Role::Closing) => {
                if !l.errors.take(now.mono) {
                    return;
                }
                match &l.role {
                    Role::User(user) => user.clone(),
                    _ => String::new(),
                }
            }
            _ => return,
        };
        let frame = self.error_frame(&to, code, detail, user, msg_ref);
        self.send(link, frame);
    }

    fn error_frame(
        &mut self,
        to: &str,
        code: ErrorCode,
        detail: String,
        user: Option<&str>,
        msg_ref: Option<String>,
    ) -> Bytes {
        let now = self.now;
        self.signed_frame(
            to,
            now.unix_ms,
            ErrorMsg {
                code,
                detail: Some(detail),
                user_id: user.map(str::to_owned),
                msg_ref,
            }
            .into(),
        )
    }

    fn expire_hellos(&mut self, now: Now) {
        while let Some(&(t, link)) = self.hello_deadlines.first() {
            if t > now.mono {
                break;
            }
            self.hello_deadlines.pop_first();
            let pending = self
                .links
                .get(&link)
                .is_some_and(|l| l.role == Role::Pending && l.up);
            if pending {
                self.reject(
                    link,
                    ErrorCode::Timeout,
                    "no hello within the handshake timeout".into(),
                );
                self.close(link, CLOSE_POLICY, "hello timeout");
            }
        }
    }
}

/// Types whose `ts` must lie within the freshness window.
fn needs_fresh_ts(msg: &Message) -> bool {
    matches!(
        msg,
        Message::MsgDirect(_)
            | Message::ServerDeliver(_)
            | Message::MsgPublicChannel(_)
            | Message::FileStart(_)
            | Message::FileChunk(_)
            | Message::FileEnd(_)
            | Message::UserAdvertise(_)
            | Message::UserRemove(_)
            | Message::PublicChannelKeyShare(_)
    )
}

/// The seen key of a direct message, the same whichever hop carries it.
fn dm_seen_key(ts: u64, sender: &str, recipient: &str, ciphertext: &str) -> SeenKey {
    seen::seen_key(ts, sender, recipient, &sha256(ciphertext.as_bytes()))
}

/// A fresh UUIDv4 from the server's CSPRNG.
fn random_uuid(rng: &mut CoreRng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Whether a type name is ours to route as a channel (fan-out) target.
fn is_channel_target(to: &str) -> bool {
    to == "public" || to == "*"
}
