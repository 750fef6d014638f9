//! Real [`Client`]s in the simulator.
//!
//! A client occupies a user slot (so [`Endpoint::User`] and the frame hook see
//! its frames like a scripted user's, and its inbox records what it receives),
//! but its frames come from and go to the real state machine: its
//! [`ClientAction::Connect`] dials a simulated server (URL
//! `ws://sim.invalid:<port>/`), its `Close` closes the connection, its
//! `WriteFile` is recorded, and its timers run on the virtual clock.

use bytes::Bytes;

use super::{BASE_PORT, Endpoint, Pending, SIM_HOST, Sim, port_of};
use crate::client::{
    AuthMode, Client, ClientAction, ClientConfig, ClientEvent, FetchStep, FileId, KeystoreFetcher,
    UserIdentity,
};
use crate::crypto::fixtures;
use crate::server::Connection;
use crate::time::{Instant, Now};

/// A simulated client: the real state machine and what it produced.
#[derive(Debug)]
pub struct SimClient {
    /// The client itself.
    pub client: Client,
    /// Every event it emitted, with the time.
    pub events: Vec<(Instant, ClientEvent)>,
    /// Every file it asked to write: (transfer, sanitized name, content).
    pub files: Vec<(FileId, String, Bytes)>,
    /// The current connection (or dial in progress).
    pub(super) conn: Option<u64>,
}

impl Sim {
    /// A client configuration whose server list is the given simulated servers.
    #[must_use]
    pub fn client_config(&self, servers: &[usize]) -> ClientConfig {
        ClientConfig::new(
            servers
                .iter()
                .map(|&s| format!("ws://{SIM_HOST}:{}/", port_of(s)))
                .collect(),
        )
    }

    /// Adds a real [`Client`] with fixture key `key` and a seed derived from
    /// `seed`; it dials the first server of `cfg` at once. Returns its user
    /// index (usable with [`Sim::user`] and [`Sim::disconnect_user`]).
    pub fn add_client(&mut self, cfg: ClientConfig, key: usize, seed: u64) -> usize {
        let idx = self.add_user(key);
        let id = self.users[idx].id.clone();
        let identity = UserIdentity::new(id, fixtures::rsa_identity(key));
        self.insert_client(idx, cfg, identity, AuthMode::Hello, seed)
    }

    /// Adds a real [`Client`] for `identity` that identifies as `auth` says
    /// (register or log in to an account); it dials at once. Returns its user index.
    pub fn add_client_with(
        &mut self,
        cfg: ClientConfig,
        identity: UserIdentity,
        auth: AuthMode,
        seed: u64,
    ) -> usize {
        let idx = self.users.len();
        let pubkey = identity.rsa.public().to_wire();
        self.users.push(super::user::SimUser::with_key(
            identity.user_id.clone(),
            pubkey,
        ));
        self.insert_client(idx, cfg, identity, auth, seed)
    }

    /// Fetches an account's keystore from server `s` with only `who` (user id
    /// or username) and `password`, over a link of its own (a new scripted user
    /// slot), as a client on another machine would. Returns the final step:
    /// [`FetchStep::Done`] with the identity, or why not ([`FetchStep::Wait`]
    /// if the server never answered within 10 virtual seconds).
    pub fn fetch_keystore(&mut self, s: usize, who: &str, password: &[u8]) -> FetchStep {
        // A slot with no key of its own: the fetch link never identifies.
        let u = self.users.len();
        self.users.push(super::user::SimUser::with_key(
            format!("fetch-{u}"),
            String::new(),
        ));
        self.connect_user_raw(u, s);
        let mut fetcher = KeystoreFetcher::new(who, password);
        let hello = fetcher.hello_frame(self.now);
        self.user_send(u, hello);
        let mut read = 0;
        for _ in 0..100 {
            self.run_for(core::time::Duration::from_millis(100));
            while read < self.users[u].inbox.len() {
                let frame = self.users[u].inbox[read].encode();
                read += 1;
                match fetcher.handle_frame(self.now, &frame) {
                    FetchStep::Send(f) => self.user_send(u, f),
                    FetchStep::Wait => {}
                    done => {
                        self.disconnect_user(u);
                        return done;
                    }
                }
            }
        }
        self.disconnect_user(u);
        FetchStep::Wait
    }

    /// A client on "another machine": fetches the keystore of `who` (user id
    /// or username) from server `s` with `password` ([`Sim::fetch_keystore`]),
    /// opens it, then adds a client that logs in to the account on the servers
    /// of `cfg`. Returns the client's index, or the failed fetch step.
    ///
    /// # Errors
    /// The [`FetchStep`] that ended the fetch, if it was not [`FetchStep::Done`].
    pub fn add_client_from_password(
        &mut self,
        cfg: ClientConfig,
        s: usize,
        who: &str,
        password: &[u8],
        seed: u64,
    ) -> Result<usize, FetchStep> {
        match self.fetch_keystore(s, who, password) {
            FetchStep::Done(identity) => {
                Ok(self.add_client_with(cfg, *identity, AuthMode::Login, seed))
            }
            other => Err(other),
        }
    }

    fn insert_client(
        &mut self,
        idx: usize,
        cfg: ClientConfig,
        identity: UserIdentity,
        auth: AuthMode,
        seed: u64,
    ) -> usize {
        let mut cfg = cfg;
        if self.legacy_links {
            cfg.secure_link = false;
        }
        let mut s = self.seed;
        s[8..16].copy_from_slice(&(idx as u64).to_le_bytes());
        s[16..24].copy_from_slice(&seed.to_le_bytes());
        s[24] = 0xc1;
        let client = Client::with_auth(cfg, identity, auth, s, self.now);
        self.clients.insert(
            idx,
            SimClient {
                client,
                events: Vec::new(),
                files: Vec::new(),
                conn: None,
            },
        );
        self.drain_client(idx);
        idx
    }

    /// Client `idx`.
    #[must_use]
    pub fn client(&self, idx: usize) -> &Client {
        &self.clients[&idx].client
    }

    /// The simulated client `idx`, with its recorded events and files.
    #[must_use]
    pub fn sim_client(&self, idx: usize) -> &SimClient {
        &self.clients[&idx]
    }

    /// The events client `idx` emitted so far.
    #[must_use]
    pub fn client_events(&self, idx: usize) -> Vec<ClientEvent> {
        self.clients[&idx]
            .events
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Forgets the events client `idx` emitted so far.
    pub fn clear_client_events(&mut self, idx: usize) {
        if let Some(c) = self.clients.get_mut(&idx) {
            c.events.clear();
        }
    }

    /// The files client `idx` asked to write.
    #[must_use]
    pub fn client_files(&self, idx: usize) -> &[(FileId, String, Bytes)] {
        &self.clients[&idx].files
    }

    /// Runs `f` on client `idx` (an app command, say) at the current time, then
    /// drains its outputs into the network.
    ///
    /// # Panics
    /// If there is no client `idx` (a bug in the calling test).
    #[allow(
        clippy::expect_used,
        reason = "test support: a wrong index is a bug in the test"
    )]
    pub fn client_do<R>(&mut self, idx: usize, f: impl FnOnce(&mut Client, Now) -> R) -> R {
        let now = self.now;
        let result = f(
            &mut self.clients.get_mut(&idx).expect("no such client").client,
            now,
        );
        self.drain_client(idx);
        result
    }

    /// Drains client `idx`'s outputs.
    pub(super) fn drain_client(&mut self, idx: usize) {
        loop {
            let Some(c) = self.clients.get_mut(&idx) else {
                return;
            };
            let mut frames = Vec::new();
            while let Some(frame) = c.client.poll_transmit() {
                frames.push(frame);
            }
            let mut actions = Vec::new();
            while let Some(action) = c.client.poll_action() {
                actions.push(action);
            }
            while let Some(event) = c.client.poll_event() {
                c.events.push((self.now.mono, event));
            }
            if frames.is_empty() && actions.is_empty() {
                return;
            }
            for frame in frames {
                if let Some(conn) = self.users[idx].conn {
                    self.transmit(conn, Endpoint::User { idx }, frame.to_vec());
                }
            }
            for action in actions {
                self.client_act(idx, action);
            }
        }
    }

    fn client_act(&mut self, idx: usize, action: ClientAction) {
        match action {
            ClientAction::Connect { url, .. } => self.client_dial(idx, &url),
            ClientAction::Close { .. } => match self.clients[&idx].conn {
                Some(conn) if self.conns.contains_key(&conn) => {
                    let at = self.now.mono + core::time::Duration::from_micros(1);
                    self.schedule(at, Pending::Kill { conn });
                }
                Some(conn) => {
                    let at = self.now.mono;
                    self.schedule(at, Pending::ClientClosed { idx, conn });
                }
                None => {}
            },
            ClientAction::WriteFile {
                file_id,
                name,
                bytes,
            } => {
                if let Some(c) = self.clients.get_mut(&idx) {
                    c.files.push((file_id, name, bytes));
                }
            }
        }
    }

    fn client_dial(&mut self, idx: usize, url: &str) {
        let target = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .map(|port| usize::from(port.wrapping_sub(BASE_PORT)));
        let at = self.now.mono + self.latency() * 2;
        let reachable = target.filter(|&s| self.servers.get(s).is_some_and(|s| s.alive));
        let conn = match reachable {
            Some(s) => {
                let now = self.now;
                let link = self.servers[s].server.handle_connected(
                    now,
                    Connection::Inbound {
                        remote: format!("client-{idx}"),
                    },
                );
                let conn =
                    self.open_conn(Endpoint::User { idx }, Endpoint::Server { idx: s, link });
                self.users[idx].conn = Some(conn);
                self.users[idx].server = Some(s);
                self.drain(s);
                self.schedule(at, Pending::ClientConnected { idx, conn });
                conn
            }
            None => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.schedule(at, Pending::ClientClosed { idx, conn });
                conn
            }
        };
        if let Some(c) = self.clients.get_mut(&idx) {
            c.conn = Some(conn);
        }
    }

    /// A dial of client `idx` completed.
    pub(super) fn client_connected(&mut self, idx: usize, conn: u64) {
        let now = self.now;
        let Some(c) = self.clients.get_mut(&idx) else {
            return;
        };
        if c.conn == Some(conn) && self.conns.contains_key(&conn) {
            c.client.handle_connected(now);
            self.drain_client(idx);
        }
    }

    /// Client `idx`'s connection `conn` closed (or its dial failed).
    pub(super) fn client_closed(&mut self, idx: usize, conn: u64) {
        let now = self.now;
        let Some(c) = self.clients.get_mut(&idx) else {
            return;
        };
        if c.conn != Some(conn) {
            return;
        }
        c.conn = None;
        c.client.handle_closed(now);
        if self.users[idx].conn == Some(conn) {
            self.users[idx].conn = None;
            self.users[idx].server = None;
        }
        self.drain_client(idx);
    }

    /// The earliest client timer: (time, client index).
    pub(super) fn next_client_timer(&self) -> Option<(Instant, usize)> {
        self.clients
            .iter()
            .filter_map(|(i, c)| c.client.poll_timeout().map(|t| (t.max(self.now.mono), *i)))
            .min()
    }

    /// Fires client `idx`'s timer.
    pub(super) fn client_timeout(&mut self, idx: usize) {
        let now = self.now;
        if let Some(c) = self.clients.get_mut(&idx) {
            c.client.handle_timeout(now);
        }
        self.drain_client(idx);
    }
}
