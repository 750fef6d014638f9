//! Starting a server or an introducer: keys, store, listener, core server and
//! the adapter of the chosen [`Runtime`], from one [`NodeOptions`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use socp_core::crypto::rsa::RsaIdentity;
use socp_core::server::{BootstrapEntry, MemoryStore, Server, ServerConfig, Store, StoredState};
use socp_tokio::{WsLimits, random_seed};

use crate::keyfile;
use crate::runtime::{Listener, Runtime, ServerHandle, spawn_server};
use crate::store::SqliteStore;

/// Everything needed to start one server.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Address to bind (`127.0.0.1`, `0.0.0.0`, ...).
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Host other servers and clients should dial (defaults to `host`, or
    /// `127.0.0.1` when binding every interface).
    pub advertise_host: Option<String>,
    /// The server id to ask for (`None`: assigned by the introducer, "auto").
    pub server_id: Option<String>,
    /// Introducers (or any server) to join through, in order.
    pub bootstrap: Vec<BootstrapEntry>,
    /// Where the server's RSA-4096 key lives (created on first start).
    pub key: KeySource,
    /// SQLite database path; `None` keeps state in memory.
    pub db: Option<PathBuf>,
    /// Seconds between heartbeats.
    pub heartbeat: Duration,
    /// Silence after which a server link is dead.
    pub dead_timeout: Duration,
    /// WebSocket limits.
    pub limits: WsLimits,
    /// The adapter that runs it.
    pub runtime: Runtime,
}

/// Where a node's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A PKCS#8 PEM file, generated (mode 0600) if missing.
    File(PathBuf),
    /// A key already in memory (tests, the demo's pre-generated keys).
    Given(std::sync::Arc<RsaIdentity>),
}

impl NodeOptions {
    /// Defaults for a server on `host:port` with a key file and database in
    /// `data_dir`.
    #[must_use]
    pub fn new(host: &str, port: u16, data_dir: &Path) -> Self {
        Self {
            host: host.to_owned(),
            port,
            advertise_host: None,
            server_id: None,
            bootstrap: Vec::new(),
            key: KeySource::File(data_dir.join(format!("server-{port}.key.pem"))),
            db: Some(data_dir.join(format!("server-{port}.db"))),
            heartbeat: Duration::from_secs(15),
            dead_timeout: Duration::from_secs(45),
            limits: WsLimits::default(),
            runtime: Runtime::default(),
        }
    }
}

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The key file could not be read, created or parsed.
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    /// The database could not be opened.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    /// The adapter's handle (shutdown, kill, events).
    pub handle: ServerHandle,
    /// The URL clients use: `ws://host:port/`.
    pub url: String,
    /// The public key in wire encoding (for introducers.json pins).
    pub pubkey: String,
}

/// Binds, loads the key and the store, and starts the server on
/// `opts.runtime`. Must run inside a tokio runtime (the app's front end),
/// whichever runtime the node itself uses.
///
/// # Errors
/// See [`NodeError`].
pub async fn start(opts: NodeOptions) -> Result<Node, NodeError> {
    let identity = match &opts.key {
        KeySource::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || keyfile::load_or_create(&path))
                .await
                .map_err(|e| keyfile::KeyFileError::Generate(e.to_string()))??
        }
        KeySource::Given(key) => RsaIdentity::from_pkcs8_der(&key.to_pkcs8_der())
            .map_err(|e| keyfile::KeyFileError::Parse(e.to_string()))?,
    };
    let addr = format!("{}:{}", opts.host, opts.port);
    let listener = Listener::bind(opts.runtime, &addr)
        .await
        .map_err(|source| NodeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| NodeError::Bind { addr, source })?
        .port();
    let advertise = opts.advertise_host.clone().unwrap_or_else(|| {
        if opts.host == "0.0.0.0" || opts.host == "::" {
            "127.0.0.1".to_owned()
        } else {
            opts.host.clone()
        }
    });
    let mut cfg = ServerConfig::default();
    cfg.host = advertise.clone();
    cfg.port = port;
    cfg.requested_id = opts.server_id.clone();
    cfg.bootstrap = opts.bootstrap.clone();
    cfg.heartbeat_interval = opts.heartbeat;
    cfg.dead_timeout = opts.dead_timeout;
    cfg.seen_ttl = cfg.seen_ttl.max(opts.dead_timeout * 2);
    let pubkey = identity.public().to_wire();
    let clock = listener.clock();
    let handle = match &opts.db {
        Some(path) => {
            let mut store = SqliteStore::open(path)?;
            let stored = store.load_state()?;
            let server = Server::new(cfg, identity, random_seed(), stored, clock.now());
            spawn_server(listener, server, store, opts.limits.clone())
        }
        None => {
            let server = Server::new(
                cfg,
                identity,
                random_seed(),
                StoredState::default(),
                clock.now(),
            );
            let store = MemoryStore::default();
            spawn_server(listener, server, store, opts.limits.clone())
        }
    };
    Ok(Node {
        handle,
        url: format!("ws://{advertise}:{port}/"),
        pubkey,
    })
}
