//! socp-tests: end-to-end tests over real sockets on 127.0.0.1.
//!
//! [`Net`] starts an introducer and servers in this process, each on a port
//! chosen by the OS, with a SQLite database in a temporary directory and the
//! fixture RSA keys (generating RSA-4096 keys per test would cost seconds);
//! [`User`] is a real client (register, log in, DMs, public messages, files)
//! driven through the adapter's API.
//!
//! A [`Mix`] says which runtime runs each node and each client: all tokio, all
//! smol, or mixed (the introducer on tokio, then servers alternating smol and
//! tokio, clients alternating too). `tests/e2e.rs` runs every scenario under
//! each mix; the test itself awaits on tokio whatever the nodes run on. Heartbeats and the dead-link timeout are
//! short ([`HEARTBEAT`], [`DEAD`]) so failure cases finish quickly.
//!
//! Every wait has a deadline ([`WAIT`]): a failure is a clear panic, never a
//! hang. No test asserts on timing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use socp_apps::node::{self, KeySource, Node, NodeOptions};
pub use socp_apps::runtime::Runtime;
use socp_apps::runtime::{self as rt, ClientHandle};
use socp_core::client::{
    ClientConfig, ClientEvent, FileTarget, MessageId, MessageStatus, UserIdentity,
};
use socp_core::crypto::{KeystoreParams, fixtures, rng_from_seed};
use socp_core::server::BootstrapEntry;
use socp_tokio::{ClientOptions, ClientUpdate};

/// Heartbeat interval of test servers.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// Silence after which a test server declares a link dead.
pub const DEAD: Duration = Duration::from_secs(2);
/// Longest any one wait may take.
pub const WAIT: Duration = Duration::from_secs(60);
/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery staple";

/// A temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    #[must_use]
    pub fn new(tag: &str) -> Self {
        let mut raw = [0u8; 8];
        rand_core::Rng::fill_bytes(&mut rng_from_seed(socp_tokio::random_seed()), &mut raw);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("socp-test-{tag}-{hex}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which runtime runs each node and each client of a [`Net`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Everything on one runtime.
    All(Runtime),
    /// The introducer (slot 0) on tokio, servers 1, 3, ... on smol and 2, 4,
    /// ... on tokio; clients with odd keys on smol, even keys on tokio.
    Mixed,
}

impl Mix {
    /// The runtime of server slot `i`.
    #[must_use]
    pub fn server(self, i: usize) -> Runtime {
        match self {
            Self::All(r) => r,
            Self::Mixed if i % 2 == 1 => Runtime::Smol,
            Self::Mixed => Runtime::Tokio,
        }
    }

    /// The runtime of the client using fixture key `key`.
    #[must_use]
    pub fn client(self, key: usize) -> Runtime {
        match self {
            Self::All(r) => r,
            Self::Mixed if key % 2 == 1 => Runtime::Smol,
            Self::Mixed => Runtime::Tokio,
        }
    }

    /// A short name for temporary directories.
    #[must_use]
    pub fn tag(self) -> &'static str {
        match self {
            Self::All(r) => r.name(),
            Self::Mixed => "mixed",
        }
    }
}

/// One server slot of a [`Net`]: its key, database and (while up) the node.
pub struct Slot {
    pub key: usize,
    pub db: PathBuf,
    pub port: u16,
    pub node: Option<Node>,
}

/// An introducer (slot 0) and servers joining through it.
pub struct Net {
    pub dir: TempDir,
    pub slots: Vec<Slot>,
    pub mix: Mix,
    /// Held while this network runs: see [`SERIAL`].
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// One network at a time per test binary. A legacy-profile network is
/// CPU-bound (every relayed piece of a file costs four RSA-4096 private-key
/// operations across sender, two servers and receiver: about 40 s of CPU for
/// the 1 MiB file), so two of them sharing this machine's two cores would
/// stretch each other's waits past [`WAIT`]. Taking turns keeps every wait
/// meaningful; the binary's other tests run alongside.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Net {
    /// Starts an introducer and `servers` servers (fixture keys 1, 2, ...)
    /// on the runtimes `mix` says, and waits until every server is linked to
    /// every other.
    pub async fn start(tag: &str, servers: usize, mix: Mix) -> Self {
        init_logs();
        let serial = SERIAL.lock().await;
        let mut net = Self {
            dir: TempDir::new(&format!("{tag}-{}", mix.tag())),
            slots: Vec::new(),
            mix,
            _serial: serial,
        };
        for i in 0..=servers {
            let db = net.dir.path().join(format!("server-{i}.db"));
            net.slots.push(Slot {
                key: i + 1,
                db,
                port: 0,
                node: None,
            });
            net.boot(i).await;
        }
        net.wait_mesh().await;
        net
    }

    fn options(&self, i: usize) -> NodeOptions {
        let slot = &self.slots[i];
        let mut opts = NodeOptions::new("127.0.0.1", slot.port, self.dir.path());
        opts.key = KeySource::Given(Arc::new(fixtures::rsa_identity(slot.key)));
        opts.db = Some(slot.db.clone());
        opts.heartbeat = HEARTBEAT;
        opts.dead_timeout = DEAD;
        opts.runtime = self.mix.server(i);
        if i > 0 {
            let intro = &self.slots[0];
            opts.bootstrap = vec![BootstrapEntry {
                host: "127.0.0.1".into(),
                port: intro.port,
                pubkey: Some(fixtures::rsa_identity(intro.key).public().to_wire()),
            }];
        }
        opts
    }

    /// Starts (or restarts, on its old port and database) server `i`.
    pub async fn boot(&mut self, i: usize) {
        let node = node::start(self.options(i)).await.unwrap();
        self.slots[i].port = node.handle.local_addr().port();
        self.slots[i].node = Some(node);
    }

    /// The URL of server `i`.
    #[must_use]
    pub fn url(&self, i: usize) -> String {
        format!("ws://127.0.0.1:{}/", self.slots[i].port)
    }

    /// The id of server `i` (while it runs).
    #[must_use]
    pub fn server_id(&self, i: usize) -> String {
        self.slots[i].node.as_ref().unwrap().handle.server_id()
    }

    /// Crashes server `i`: sockets dropped, no goodbye.
    pub fn kill(&mut self, i: usize) {
        self.slots[i].node.take().unwrap().handle.kill();
    }

    /// Runs `f` on server `i`'s state machine (inside its driver).
    pub async fn inspect<R: Send + 'static>(
        &self,
        i: usize,
        f: impl FnOnce(&socp_core::server::Server) -> R + Send + 'static,
    ) -> R {
        self.slots[i]
            .node
            .as_ref()
            .expect("server is down")
            .handle
            .with(f)
            .await
            .expect("server driver gone")
    }

    /// Waits until every running server has a link to every other.
    pub async fn wait_mesh(&self) {
        let running: Vec<usize> = (0..self.slots.len())
            .filter(|i| self.slots[*i].node.is_some())
            .collect();
        let want = running.len() - 1;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut linked = Vec::new();
            for &i in &running {
                linked.push(self.inspect(i, |s| s.linked_servers().len()).await);
            }
            if linked.iter().all(|n| *n >= want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "mesh never formed: links per server {linked:?}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until server `i` has `n` secure server links.
    pub async fn wait_secure_links(&self, i: usize, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let secure = self.inspect(i, |s| s.secure_servers().len()).await;
            if secure == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server {i} has {secure} secure links, want {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until server `i` knows exactly `users` as online (anywhere).
    pub async fn wait_roster(&self, i: usize, users: &[&str]) {
        let mut want: Vec<String> = users.iter().map(|u| (*u).to_owned()).collect();
        want.sort();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut got = self.inspect(i, |s| s.online_users()).await;
            got.sort();
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server {i} roster {got:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Registers `name` with fixture key `key` on server `server`, on the
    /// client runtime the mix gives that key.
    pub async fn register(&self, server: usize, name: &str, key: usize) -> User {
        User::register(
            self.mix.client(key),
            self.dir.path(),
            &self.url(server),
            name,
            key,
        )
        .await
    }

    /// Logs `name` in on server `server` from its password alone; the client
    /// runs on `runtime`.
    pub async fn login(&self, server: usize, name: &str, runtime: Runtime) -> User {
        User::login(runtime, self.dir.path(), &self.url(server), name).await
    }

    /// Stops every server cleanly.
    pub async fn shutdown(mut self) {
        for slot in &mut self.slots {
            if let Some(node) = slot.node.take() {
                node.handle.shutdown().await;
            }
        }
    }
}

/// Logs to stderr as `RUST_LOG` says (nothing by default), once per process.
pub fn init_logs() {
    socp_apps::logging::init(socp_apps::logging::LogFormat::Human, None, "off");
}

/// A real client, with every update it produced kept for assertions.
pub struct User {
    pub name: String,
    pub id: String,
    pub handle: ClientHandle,
    pub seen: Vec<ClientUpdate>,
    pub downloads: PathBuf,
}

impl User {
    /// Registers a new account with fixture key `key` on `url` (username
    /// `name`), its client on `runtime`, and waits until it is logged in.
    pub async fn register(runtime: Runtime, dir: &Path, url: &str, name: &str, key: usize) -> Self {
        let mut rng = rng_from_seed([u8::try_from(key).unwrap(); 32]);
        let identity = UserIdentity::with_random_id(fixtures::rsa_identity(key), &mut rng);
        let id = identity.user_id.clone();
        let downloads = dir.join(format!("downloads-{name}"));
        let handle = rt::spawn_registration(
            url,
            identity,
            PASSWORD.as_bytes(),
            Some(name),
            &KeystoreParams::for_tests(),
            ClientOptions::new(&downloads),
            runtime.clock(),
        )
        .unwrap();
        let mut user = Self {
            name: name.to_owned(),
            id,
            handle,
            seen: Vec::new(),
            downloads,
        };
        user.wait_for("registered", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::Registered { .. }))
        })
        .await;
        user.wait_connected().await;
        user
    }

    /// Logs in to an existing account from its name and password alone,
    /// the client on `runtime`.
    pub async fn login(runtime: Runtime, dir: &Path, url: &str, name: &str) -> Self {
        let downloads = dir.join(format!("downloads-{name}-2"));
        let handle = rt::login_with_password(
            url,
            name,
            PASSWORD.as_bytes(),
            ClientConfig::new(vec![url.to_owned()]),
            ClientOptions::new(&downloads),
            runtime.clock(),
        )
        .await
        .unwrap();
        let mut user = Self {
            name: name.to_owned(),
            id: handle.user_id().to_owned(),
            handle,
            seen: Vec::new(),
            downloads,
        };
        user.wait_connected().await;
        user
    }

    /// Waits until this client's link to its server runs the secure profile.
    pub async fn wait_secure_link(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.handle.with(|c, _| c.is_link_secure()).await == Some(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: the link never became secure",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_connected(&mut self) {
        self.wait_for("connected", |u| {
            matches!(u, ClientUpdate::Event(ClientEvent::Connected { .. }))
        })
        .await;
    }

    /// Reads updates until one satisfies `pred` (looking at those already
    /// seen first); returns it. Panics after [`WAIT`].
    pub async fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&ClientUpdate) -> bool,
    ) -> ClientUpdate {
        if let Some(u) = self.seen.iter().find(|u| pred(u)) {
            return u.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.handle.next()).await;
            let update = match next {
                Ok(Some(u)) => u,
                Ok(None) => panic!("{}: client stopped while waiting for {what}", self.name),
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; saw {:#?}",
                    self.name,
                    self.seen.iter().rev().take(20).collect::<Vec<_>>()
                ),
            };
            self.seen.push(update.clone());
            if pred(&update) {
                return update;
            }
        }
    }

    /// Reads whatever arrives for `d`.
    pub async fn settle(&mut self, d: Duration) {
        let until = tokio::time::Instant::now() + d;
        while let Ok(Some(u)) = tokio::time::timeout_at(until, self.handle.next()).await {
            self.seen.push(u);
        }
    }

    pub async fn send_dm(&self, to: &str, text: &str) -> MessageId {
        let (to, text) = (to.to_owned(), text.to_owned());
        self.handle
            .with(move |c, now| c.send_direct(now, &to, &text))
            .await
            .unwrap()
    }

    pub async fn send_public(&self, text: &str) -> MessageId {
        let text = text.to_owned();
        self.handle
            .with(move |c, now| c.send_public(now, &text))
            .await
            .unwrap()
    }

    pub async fn send_file(&self, to: &str, name: &str, bytes: Vec<u8>) {
        let (to, name) = (to.to_owned(), name.to_owned());
        self.handle
            .with(move |c, now| {
                c.send_file(now, FileTarget::User(to), &name, bytes);
            })
            .await
            .unwrap();
    }

    /// The online users the server lists (`/list`).
    pub async fn list(&mut self) -> Vec<String> {
        let before = self
            .seen
            .iter()
            .filter(|u| matches!(u, ClientUpdate::Event(ClientEvent::List(_))))
            .count();
        self.handle
            .with(|c, now| c.request_list(now))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let lists: Vec<Vec<String>> = self
                .seen
                .iter()
                .filter_map(|u| match u {
                    ClientUpdate::Event(ClientEvent::List(l)) => Some(l.clone()),
                    _ => None,
                })
                .collect();
            if lists.len() > before {
                return lists.last().cloned().unwrap();
            }
            let u = tokio::time::timeout_at(deadline, self.handle.next())
                .await
                .expect("no /list answer")
                .expect("client stopped");
            self.seen.push(u);
        }
    }

    /// Waits for the message `text` (DM or public) and returns (from, status).
    pub async fn expect_message(&mut self, text: &str, public: bool) -> (String, MessageStatus) {
        let want = text.to_owned();
        match self
            .wait_for(&format!("message {text:?}"), move |u| {
                matches!(u, ClientUpdate::Event(ClientEvent::Message { text, public: p, .. }) if *text == want && *p == public)
            })
            .await
        {
            ClientUpdate::Event(ClientEvent::Message { from, status, .. }) => (from, status),
            _ => unreachable!(),
        }
    }

    /// How many times `text` was shown.
    #[must_use]
    pub fn count_messages(&self, text: &str) -> usize {
        self.seen
            .iter()
            .filter(|u| matches!(u, ClientUpdate::Event(ClientEvent::Message { text: t, .. }) if t == text))
            .count()
    }

    pub async fn close(self) {
        self.handle.close().await;
    }
}
