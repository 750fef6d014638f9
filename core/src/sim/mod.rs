//! A deterministic network simulator for servers and users (feature `sim`).
//!
//! N real [`Server`]s and M scripted users exchange real frames over simulated
//! WebSocket connections on a virtual clock. Latency is drawn from a seeded
//! CSPRNG; frames on one connection arrive in order unless reordering is turned
//! on; frames can be dropped at random or by a hook that can also alter, replay or
//! inject frames in flight; a partition holds frames back, as TCP would, until it
//! heals or the connection is declared dead. Links can be killed and servers
//! crashed and restarted from the state they persisted. The same seed and the same
//! calls give the same run, event for event.
//!
//! The scripted user ([`SimUser`]) speaks just enough SOCP to test the server:
//! USER_HELLO with a fixture key, MSG_DIRECT with an opaque "ciphertext" (the
//! server never decrypts), public messages, files and `/list`. It records every
//! frame it receives.
//!
//! Real [`Client`](crate::client::Client)s take part too ([`Sim::add_client`]):
//! they occupy a user slot, dial servers, reconnect and run their timers on the
//! virtual clock.

// Test support, driven by tests only: indices are the simulator's own, and an
// out-of-range one is a bug in the calling test, which should fail loudly.
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod client;
mod user;

use std::collections::{BTreeMap, BTreeSet};

use core::time::Duration;
use rand_core::Rng;

pub use client::SimClient;
pub use user::SimUser;

use crate::crypto::{CoreRng, fixtures, rng_from_seed};
use crate::server::{
    Action, BootstrapEntry, Connection, Event, LinkId, LoadRequest, Server, ServerConfig, StoreOp,
    StoredReply, StoredState,
};
use crate::time::{Instant, Now};
use crate::wire::Envelope;

/// Unix time (ms) at the simulator's `Instant::ZERO`.
pub const UNIX_EPOCH_MS: u64 = 1_760_000_000_000;
/// First port handed to simulated servers (server `i` listens on `BASE_PORT + i`).
pub const BASE_PORT: u16 = 20_000;
/// The host name every simulated server advertises.
pub const SIM_HOST: &str = "sim.invalid";

/// Network knobs.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Smallest one-way latency.
    pub latency_min: Duration,
    /// Largest one-way latency.
    pub latency_max: Duration,
    /// Chance, in parts per million, that a frame is lost.
    pub loss_ppm: u32,
    /// Whether frames on one connection may overtake each other.
    pub reorder: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(20),
            loss_ppm: 0,
            reorder: false,
        }
    }
}

/// One end of a simulated connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    /// Server `idx`, which knows the connection as `link`.
    Server {
        /// Index of the server.
        idx: usize,
        /// The server's id for this connection.
        link: LinkId,
    },
    /// Scripted user `idx`.
    User {
        /// Index of the user.
        idx: usize,
    },
}

/// A frame in flight, as the hook sees it.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Sender.
    pub from: Endpoint,
    /// Receiver.
    pub to: Endpoint,
    /// The frame; the hook may change it.
    pub frame: Vec<u8>,
}

/// What the hook decides about a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it (possibly altered).
    Deliver,
    /// Lose it.
    Drop,
    /// Deliver it, and the same frame again after the given delay (a replay).
    Replay(Duration),
    /// Deliver it, and also `frame` (e.g. a tampered copy) after `after`.
    Inject {
        /// The extra frame.
        frame: Vec<u8>,
        /// Its delay after the original.
        after: Duration,
    },
}

/// The frame hook: sees every frame before it is scheduled.
pub type Hook = Box<dyn FnMut(&mut InFlight) -> Verdict>;

#[derive(Debug)]
struct Conn {
    a: Endpoint,
    b: Endpoint,
    /// Latest scheduled arrival per direction (a→b, b→a), for in-order delivery.
    last_arrival: [Instant; 2],
}

#[derive(Debug)]
enum Pending {
    Frame {
        conn: u64,
        to: Endpoint,
        frame: Vec<u8>,
    },
    Connected {
        idx: usize,
        link: LinkId,
    },
    Closed {
        to: Endpoint,
    },
    Kill {
        conn: u64,
    },
    ClientConnected {
        idx: usize,
        conn: u64,
    },
    ClientClosed {
        idx: usize,
        conn: u64,
    },
}

/// A simulated server: the real state machine plus what it persisted.
pub struct SimServer {
    /// The server itself.
    pub server: Server,
    cfg: ServerConfig,
    key: usize,
    stored: StoredState,
    alive: bool,
    restarts: u64,
}

/// The simulator. See the [module documentation](self).
pub struct Sim {
    now: Now,
    rng: CoreRng,
    seed: [u8; 32],
    /// Network knobs, changeable at any time.
    pub net: NetConfig,
    servers: Vec<SimServer>,
    users: Vec<SimUser>,
    clients: BTreeMap<usize, SimClient>,
    conns: BTreeMap<u64, Conn>,
    by_endpoint: BTreeMap<Endpoint, u64>,
    next_conn: u64,
    queue: BTreeMap<(Instant, u64), Pending>,
    seq: u64,
    partitions: BTreeSet<(usize, usize)>,
    /// Frames held back by a partition, per connection, in order: delivered when
    /// the partition heals, lost if the connection dies first (as TCP would).
    held: BTreeMap<u64, Vec<(Endpoint, usize, Vec<u8>)>>,
    hook: Option<Hook>,
    events: Vec<(Instant, usize, Event)>,
    frames_sent: u64,
    /// Every server and client added runs plain SOCP links
    /// (`secure_links` / `secure_link` forced off): see [`Sim::legacy`].
    pub(crate) legacy_links: bool,
}

impl core::fmt::Debug for Sim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("servers", &self.servers.len())
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// An empty network whose randomness all derives from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Self {
            now: Now::new(Instant::ZERO, UNIX_EPOCH_MS),
            rng: rng_from_seed(s),
            seed: s,
            net: NetConfig::default(),
            servers: Vec::new(),
            users: Vec::new(),
            clients: BTreeMap::new(),
            conns: BTreeMap::new(),
            by_endpoint: BTreeMap::new(),
            next_conn: 1,
            queue: BTreeMap::new(),
            seq: 0,
            partitions: BTreeSet::new(),
            held: BTreeMap::new(),
            hook: None,
            events: Vec::new(),
            frames_sent: 0,
            legacy_links: false,
        }
    }

    /// [`Sim::new`] whose servers and clients never use the secure profile:
    /// every link stays plain SOCP v1.3, so tests can inspect and inject the
    /// frames servers and clients exchange (conformance cases).
    #[must_use]
    pub fn legacy(seed: u64) -> Self {
        let mut sim = Self::new(seed);
        sim.legacy_links = true;
        sim
    }

    /// The current virtual time.
    #[must_use]
    pub fn now(&self) -> Now {
        self.now
    }

    /// A server configuration for the simulator with the given bootstrap servers
    /// and the SOCP default timings.
    #[must_use]
    pub fn config_joining(&self, introducers: &[usize]) -> ServerConfig {
        ServerConfig {
            bootstrap: introducers
                .iter()
                .map(|&i| BootstrapEntry {
                    host: SIM_HOST.to_owned(),
                    port: port_of(i),
                    pubkey: self.servers.get(i).map(|s| s.server.pubkey().to_owned()),
                })
                .collect(),
            ..ServerConfig::default()
        }
    }

    /// Adds a server with `cfg` (host and port are set by the simulator) using
    /// fixture key `key` (1..=12); returns its index.
    pub fn add_server(&mut self, mut cfg: ServerConfig, key: usize) -> usize {
        let idx = self.servers.len();
        if self.legacy_links {
            cfg.secure_links = false;
        }
        cfg.host = SIM_HOST.to_owned();
        cfg.port = port_of(idx);
        let server = Server::new(
            cfg.clone(),
            fixtures::rsa_identity(key),
            self.server_seed(idx, 0),
            StoredState::default(),
            self.now,
        );
        self.servers.push(SimServer {
            server,
            cfg,
            key,
            stored: StoredState::default(),
            alive: true,
            restarts: 0,
        });
        self.drain(idx);
        idx
    }

    fn server_seed(&self, idx: usize, restarts: u64) -> [u8; 32] {
        let mut seed = self.seed;
        seed[8..16].copy_from_slice(&(idx as u64).to_le_bytes());
        seed[16..24].copy_from_slice(&restarts.to_le_bytes());
        seed[24] = 0x5e;
        seed
    }

    /// Server `idx`.
    #[must_use]
    pub fn server(&self, idx: usize) -> &Server {
        &self.servers[idx].server
    }

    /// What server `idx` has persisted so far.
    #[must_use]
    pub fn stored(&self, idx: usize) -> &StoredState {
        &self.servers[idx].stored
    }

    /// Whether server `idx` is running.
    #[must_use]
    pub fn is_alive(&self, idx: usize) -> bool {
        self.servers[idx].alive
    }

    /// Number of servers.
    #[must_use]
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Adds a scripted user with fixture key `key`; returns its index.
    pub fn add_user(&mut self, key: usize) -> usize {
        let idx = self.users.len();
        let mut id_bytes = [0u8; 16];
        self.rng.fill_bytes(&mut id_bytes);
        let id = uuid::Builder::from_random_bytes(id_bytes)
            .into_uuid()
            .hyphenated()
            .to_string();
        self.users.push(SimUser::new(id, key));
        idx
    }

    /// Scripted user `idx`.
    #[must_use]
    pub fn user(&self, idx: usize) -> &SimUser {
        &self.users[idx]
    }

    /// Scripted user `idx`, mutably (to clear its inbox, say).
    pub fn user_mut(&mut self, idx: usize) -> &mut SimUser {
        &mut self.users[idx]
    }

    /// Every event servers emitted: (time, server index, event).
    #[must_use]
    pub fn events(&self) -> &[(Instant, usize, Event)] {
        &self.events
    }

    /// Frames handed to the network so far (including ones later lost).
    #[must_use]
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }

    /// Installs the frame hook (replacing any earlier one).
    pub fn set_hook(&mut self, hook: Hook) {
        self.hook = Some(hook);
    }

    /// Removes the frame hook.
    pub fn clear_hook(&mut self) {
        self.hook = None;
    }

    // ----- users -----------------------------------------------------------------

    /// Connects user `u` to server `s` and sends its USER_HELLO.
    pub fn connect_user(&mut self, u: usize, s: usize) {
        self.connect_user_raw(u, s);
        if self.users[u].is_connected() {
            let hello = self.users[u].hello(self.now.unix_ms);
            self.user_send(u, hello);
        }
    }

    /// Connects user `u` to server `s` without sending anything (for scripted
    /// login exchanges: send the frames with [`Sim::user_send`]).
    pub fn connect_user_raw(&mut self, u: usize, s: usize) {
        self.disconnect_user(u);
        if !self.servers[s].alive {
            return;
        }
        let now = self.now;
        let link = self.servers[s].server.handle_connected(
            now,
            Connection::Inbound {
                remote: format!("user-{u}"),
            },
        );
        let conn = self.open_conn(Endpoint::User { idx: u }, Endpoint::Server { idx: s, link });
        self.users[u].server = Some(s);
        self.users[u].conn = Some(conn);
        self.drain(s);
    }

    /// Closes user `u`'s connection (as if the client quit).
    pub fn disconnect_user(&mut self, u: usize) {
        if let Some(conn) = self.users[u].conn.take() {
            self.kill_conn(conn);
        }
        self.users[u].server = None;
    }

    /// Sends an arbitrary frame from user `u` (if connected).
    pub fn user_send(&mut self, u: usize, frame: Vec<u8>) {
        if let Some(conn) = self.users[u].conn {
            self.transmit(conn, Endpoint::User { idx: u }, frame);
        }
    }

    /// User `from` sends a direct message to user `to`; returns the opaque
    /// "ciphertext" that identifies it in the recipient's inbox.
    pub fn send_dm(&mut self, from: usize, to: usize) -> String {
        let recipient = self.users[to].id.clone();
        self.send_dm_to_id(from, &recipient)
    }

    /// User `from` sends a direct message to the user id `to` (maybe unknown).
    pub fn send_dm_to_id(&mut self, from: usize, to: &str) -> String {
        let mut tag = [0u8; 24];
        self.rng.fill_bytes(&mut tag);
        let ciphertext = crate::wire::b64::encode(&tag);
        let frame = self.users[from].direct(to, &ciphertext, self.now.unix_ms);
        self.user_send(from, frame);
        ciphertext
    }

    /// User `from` posts to the public channel; returns the message's tag.
    pub fn send_public(&mut self, from: usize) -> String {
        let mut tag = [0u8; 24];
        self.rng.fill_bytes(&mut tag);
        let ciphertext = crate::wire::b64::encode(&tag);
        let frame = self.users[from].public(&ciphertext, self.now.unix_ms);
        self.user_send(from, frame);
        ciphertext
    }

    // ----- faults ------------------------------------------------------------------

    /// Cuts the connection between servers `a` and `b`, if any (both sides see it close).
    pub fn kill_link(&mut self, a: usize, b: usize) {
        let doomed: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(
                    (c.a, c.b),
                    (Endpoint::Server { idx: x, .. }, Endpoint::Server { idx: y, .. })
                        if (x == a && y == b) || (x == b && y == a)
                )
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in doomed {
            self.kill_conn(conn);
        }
    }

    /// Partitions servers `a` and `b` until [`Sim::heal`]: frames between them are
    /// held (like TCP data that cannot get through) and dials between them fail.
    pub fn partition(&mut self, a: usize, b: usize) {
        self.partitions.insert((a.min(b), a.max(b)));
    }

    /// Partitions server `s` from every other server.
    pub fn isolate(&mut self, s: usize) {
        for other in 0..self.servers.len() {
            if other != s {
                self.partition(s, other);
            }
        }
    }

    /// Whether servers `a` and `b` are partitioned.
    #[must_use]
    pub fn is_partitioned(&self, a: usize, b: usize) -> bool {
        self.partitions.contains(&(a.min(b), a.max(b)))
    }

    /// Ends a partition; held frames resume, in order.
    pub fn heal(&mut self, a: usize, b: usize) {
        self.partitions.remove(&(a.min(b), a.max(b)));
        self.release_held();
    }

    /// Ends every partition.
    pub fn heal_all(&mut self) {
        self.partitions.clear();
        self.release_held();
    }

    fn release_held(&mut self) {
        let conns: Vec<u64> = self.held.keys().copied().collect();
        for conn in conns {
            let blocked = self.conns.get(&conn).is_some_and(|c| self.blocks(c.a, c.b));
            if blocked {
                continue;
            }
            for (to, dir, frame) in self.held.remove(&conn).unwrap_or_default() {
                let mut at = self.now.mono + self.latency();
                if let Some(c) = self.conns.get_mut(&conn) {
                    at = at.max(c.last_arrival[dir]);
                    c.last_arrival[dir] = at;
                }
                self.schedule(at, Pending::Frame { conn, to, frame });
            }
        }
    }

    fn blocks(&self, a: Endpoint, b: Endpoint) -> bool {
        match (a, b) {
            (Endpoint::Server { idx: x, .. }, Endpoint::Server { idx: y, .. }) => {
                self.is_partitioned(x, y)
            }
            _ => false,
        }
    }

    /// Crashes server `s`: every connection to it drops, its state is lost except
    /// what it persisted.
    pub fn crash_server(&mut self, s: usize) {
        if !self.servers[s].alive {
            return;
        }
        self.servers[s].alive = false;
        let doomed: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(c.a, Endpoint::Server { idx, .. } if idx == s)
                    || matches!(c.b, Endpoint::Server { idx, .. } if idx == s)
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in doomed {
            self.kill_conn(conn);
        }
        for user in &mut self.users {
            if user.server == Some(s) {
                user.server = None;
                user.conn = None;
            }
        }
    }

    /// Restarts a crashed server from what it persisted.
    pub fn restart_server(&mut self, s: usize) {
        if self.servers[s].alive {
            return;
        }
        let restarts = self.servers[s].restarts + 1;
        let seed = self.server_seed(s, restarts);
        let entry = &mut self.servers[s];
        entry.restarts = restarts;
        entry.alive = true;
        entry.server = Server::new(
            entry.cfg.clone(),
            fixtures::rsa_identity(entry.key),
            seed,
            entry.stored.clone(),
            self.now,
        );
        self.drain(s);
    }

    // ----- running ------------------------------------------------------------------

    /// Runs until virtual time `until`.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_frame = self.queue.first_key_value().map(|((t, _), _)| *t);
            let next_timer = self
                .servers
                .iter()
                .enumerate()
                .filter(|(_, s)| s.alive)
                .filter_map(|(i, s)| s.server.poll_timeout().map(|t| (t.max(self.now.mono), i)))
                .min();
            let next_client = self.next_client_timer();
            let next = [
                next_frame,
                next_timer.map(|(t, _)| t),
                next_client.map(|(t, _)| t),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else {
                break;
            };
            if next > until {
                break;
            }
            self.advance_to(next);
            if next_frame == Some(next) {
                if let Some((_, pending)) = self.queue.pop_first() {
                    self.deliver(pending);
                }
            } else if let Some((t, idx)) = next_client
                && t == next
                && next_timer.is_none_or(|(s, _)| s > t)
            {
                self.client_timeout(idx);
            } else if let Some((_, idx)) = next_timer {
                let now = self.now;
                self.servers[idx].server.handle_timeout(now);
                self.drain(idx);
            }
        }
        self.advance_to(until);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now.mono + d;
        self.run_until(until);
    }

    fn advance_to(&mut self, t: Instant) {
        if t > self.now.mono {
            let d = t.saturating_duration_since(self.now.mono);
            self.now = self.now.advanced(d);
            // Keep the Unix clock exactly in step with the monotonic one.
            self.now.unix_ms = UNIX_EPOCH_MS + t.as_micros() / 1000;
        }
    }

    fn deliver(&mut self, pending: Pending) {
        let now = self.now;
        match pending {
            Pending::Frame { conn, to, frame } => {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                match to {
                    Endpoint::Server { idx, link } => {
                        if self.servers[idx].alive {
                            self.servers[idx].server.handle_frame(now, link, &frame);
                            self.drain(idx);
                        }
                    }
                    Endpoint::User { idx } => {
                        if let Ok(env) = Envelope::decode(&frame, &crate::wire::Limits::default()) {
                            self.users[idx].inbox.push(env);
                        }
                        if let Some(c) = self.clients.get_mut(&idx) {
                            c.client.handle_frame(now, &frame);
                            self.drain_client(idx);
                        }
                    }
                }
            }
            Pending::Connected { idx, link } => {
                if self.servers[idx].alive {
                    self.servers[idx]
                        .server
                        .handle_connected(now, Connection::Dialed(link));
                    self.drain(idx);
                }
            }
            Pending::Kill { conn } => self.kill_conn(conn),
            Pending::ClientConnected { idx, conn } => self.client_connected(idx, conn),
            Pending::ClientClosed { idx, conn } => self.client_closed(idx, conn),
            Pending::Closed { to } => match to {
                Endpoint::Server { idx, link } => {
                    if self.servers[idx].alive {
                        self.servers[idx].server.handle_closed(now, link);
                        self.drain(idx);
                    }
                }
                Endpoint::User { idx } => {
                    self.users[idx].conn = None;
                    self.users[idx].server = None;
                }
            },
        }
    }

    /// Drains server `idx`'s outputs into the network.
    fn drain(&mut self, idx: usize) {
        loop {
            let mut progressed = false;
            while let Some(tx) = self.servers[idx].server.poll_transmit() {
                progressed = true;
                let from = Endpoint::Server { idx, link: tx.link };
                if let Some(&conn) = self.by_endpoint.get(&from) {
                    self.transmit(conn, from, tx.frame.to_vec());
                }
            }
            while let Some(action) = self.servers[idx].server.poll_action() {
                progressed = true;
                self.act(idx, action);
            }
            while let Some(event) = self.servers[idx].server.poll_event() {
                self.events.push((self.now.mono, idx, event));
            }
            if !progressed {
                break;
            }
        }
    }

    fn act(&mut self, idx: usize, action: Action) {
        match action {
            Action::Dial { link, port, .. } => {
                let target = usize::from(port.wrapping_sub(BASE_PORT));
                let reachable = self.servers.get(target).is_some_and(|s| s.alive)
                    && !self
                        .partitions
                        .contains(&(idx.min(target), idx.max(target)))
                    && target != idx;
                let at = self.now.mono + self.latency() * 2;
                if reachable {
                    let now = self.now;
                    let remote = self.servers[target].server.handle_connected(
                        now,
                        Connection::Inbound {
                            remote: format!("server-{idx}"),
                        },
                    );
                    self.open_conn(
                        Endpoint::Server { idx, link },
                        Endpoint::Server {
                            idx: target,
                            link: remote,
                        },
                    );
                    self.schedule(at, Pending::Connected { idx, link });
                    self.drain(target);
                } else {
                    self.schedule(
                        at,
                        Pending::Closed {
                            to: Endpoint::Server { idx, link },
                        },
                    );
                }
            }
            Action::Close { link, .. } => {
                let me = Endpoint::Server { idx, link };
                if let Some(&conn) = self.by_endpoint.get(&me) {
                    // Like an adapter, flush what is queued on the link, then close it.
                    let at = self
                        .conns
                        .get(&conn)
                        .map_or(self.now.mono, |c| c.last_arrival[0].max(c.last_arrival[1]))
                        .max(self.now.mono)
                        + Duration::from_micros(1);
                    self.schedule(at, Pending::Kill { conn });
                } else {
                    // A dial still in flight, or already gone: just report it closed.
                    let now = self.now;
                    self.servers[idx].server.handle_closed(now, link);
                }
            }
            Action::Store(op) => apply_store(&mut self.servers[idx].stored, op),
            // The store answers at once (a local database).
            Action::Load(LoadRequest::Account { link, user_id }) => {
                let record = self.servers[idx]
                    .stored
                    .accounts
                    .iter()
                    .find(|a| a.user_id == user_id)
                    .cloned();
                let now = self.now;
                self.servers[idx]
                    .server
                    .handle_stored(now, StoredReply::Account { link, record });
            }
        }
    }

    fn open_conn(&mut self, a: Endpoint, b: Endpoint) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                a,
                b,
                last_arrival: [self.now.mono; 2],
            },
        );
        self.by_endpoint.insert(a, id);
        self.by_endpoint.insert(b, id);
        id
    }

    /// Closes a connection; both ends hear of it (the far end after a latency).
    fn kill_conn(&mut self, conn: u64) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.by_endpoint.remove(&c.a);
        self.by_endpoint.remove(&c.b);
        self.held.remove(&conn);
        let at = self.now.mono + self.latency();
        for end in [c.a, c.b] {
            match end {
                Endpoint::User { idx } if self.clients.contains_key(&idx) => {
                    self.schedule(at, Pending::ClientClosed { idx, conn });
                }
                _ => self.schedule(at, Pending::Closed { to: end }),
            }
        }
    }

    fn transmit(&mut self, conn: u64, from: Endpoint, frame: Vec<u8>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (to, dir) = if c.a == from { (c.b, 0) } else { (c.a, 1) };
        self.frames_sent += 1;
        if self.net.loss_ppm > 0 && (self.rng.next_u32() % 1_000_000) < self.net.loss_ppm {
            return;
        }
        let mut flight = InFlight { from, to, frame };
        let verdict = match self.hook.as_mut() {
            Some(hook) => hook(&mut flight),
            None => Verdict::Deliver,
        };
        if verdict == Verdict::Drop {
            return;
        }
        if self.blocks(from, to) {
            let held = self.held.entry(conn).or_default();
            held.push((to, dir, flight.frame));
            if let Verdict::Inject { frame, .. } = verdict {
                held.push((to, dir, frame));
            }
            return;
        }
        let mut at = self.now.mono + self.latency();
        if !self.net.reorder
            && let Some(c) = self.conns.get_mut(&conn)
        {
            at = at.max(c.last_arrival[dir]);
            c.last_arrival[dir] = at;
        }
        match verdict {
            Verdict::Replay(delay) => self.schedule(
                at + delay,
                Pending::Frame {
                    conn,
                    to,
                    frame: flight.frame.clone(),
                },
            ),
            Verdict::Inject { frame, after } => {
                self.schedule(at + after, Pending::Frame { conn, to, frame });
            }
            Verdict::Deliver | Verdict::Drop => {}
        }
        self.schedule(
            at,
            Pending::Frame {
                conn,
                to,
                frame: flight.frame,
            },
        );
    }

    fn schedule(&mut self, at: Instant, pending: Pending) {
        self.seq += 1;
        self.queue.insert((at, self.seq), pending);
    }

    fn latency(&mut self) -> Duration {
        let min = self.net.latency_min.as_micros() as u64;
        let max = self.net.latency_max.as_micros() as u64;
        let span = max.saturating_sub(min);
        let extra = if span == 0 {
            0
        } else {
            self.rng.next_u64() % (span + 1)
        };
        Duration::from_micros(min + extra)
    }
}

/// The port simulated server `idx` listens on.
#[must_use]
pub fn port_of(idx: usize) -> u16 {
    BASE_PORT + u16::try_from(idx).unwrap_or(u16::MAX - BASE_PORT)
}

/// Applies a server's store request to the state it will restart from.
pub fn apply_store(stored: &mut StoredState, op: StoreOp) {
    crate::server::store::apply_to_state(stored, op);
}
