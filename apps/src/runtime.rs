//! One API over both adapters: `--runtime tokio|smol` picks which one drives
//! a server's or a client's state machine, sockets, timers and store.
//!
//! The adapters share only socp-core (every type they exchange with an app
//! lives in [`socp_core::driver`]), so this module is dispatch and nothing
//! else: each handle is an enum of the two adapters' handles, and every
//! method forwards. The futures of both adapters' handles can be awaited from
//! any executor, which is what lets the CLI's front end (REPL, signals) and
//! the end-to-end tests run on tokio while a node runs on smol, and a mixed
//! mesh run in one process.

use std::net::SocketAddr;

use socp_core::client::{AuthMode, Client, ClientConfig, UserIdentity};
use socp_core::crypto::{KeystoreError, KeystoreParams, rng_from_seed};
use socp_core::server::{Event, Server, Store};
use socp_core::time::Now;
use socp_tokio::{ClientOptions, ClientUpdate, LoginError, WsLimits};

/// Which adapter runs a node or a client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// tokio + tokio-tungstenite (`socp-tokio`).
    #[default]
    Tokio,
    /// smol + async-tungstenite (`socp-smol`).
    Smol,
}

impl Runtime {
    /// Both runtimes, for tests that run on each.
    pub const ALL: [Self; 2] = [Self::Tokio, Self::Smol];

    /// Its name on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::Smol => "smol",
        }
    }

    /// A fresh clock of this runtime.
    #[must_use]
    pub fn clock(self) -> Clock {
        match self {
            Self::Tokio => Clock::Tokio(socp_tokio::Clock::new()),
            Self::Smol => Clock::Smol(socp_smol::Clock::new()),
        }
    }
}

impl core::fmt::Display for Runtime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A clock of one runtime; what it times, that runtime drives.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// tokio's.
    Tokio(socp_tokio::Clock),
    /// smol's.
    Smol(socp_smol::Clock),
}

impl Clock {
    /// The current time for the core.
    #[must_use]
    pub fn now(&self) -> Now {
        match self {
            Self::Tokio(c) => c.now(),
            Self::Smol(c) => c.now(),
        }
    }

    /// The runtime this clock belongs to.
    #[must_use]
    pub fn runtime(&self) -> Runtime {
        match self {
            Self::Tokio(_) => Runtime::Tokio,
            Self::Smol(_) => Runtime::Smol,
        }
    }
}

/// A listener bound for one runtime, with that runtime's clock: the server
/// made for it reads its start time from [`clock`](Self::clock), and
/// [`spawn_server`] drives it with the same clock.
#[derive(Debug)]
pub enum Listener {
    /// tokio's.
    Tokio(tokio::net::TcpListener, socp_tokio::Clock),
    /// smol's.
    Smol(smol::net::TcpListener, socp_smol::Clock),
}

impl Listener {
    /// Binds `addr` for `runtime`.
    ///
    /// # Errors
    /// The bind error.
    pub async fn bind(runtime: Runtime, addr: &str) -> std::io::Result<Self> {
        Ok(match runtime {
            Runtime::Tokio => Self::Tokio(
                tokio::net::TcpListener::bind(addr).await?,
                socp_tokio::Clock::new(),
            ),
            Runtime::Smol => Self::Smol(
                smol::net::TcpListener::bind(addr).await?,
                socp_smol::Clock::new(),
            ),
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// The OS error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Tokio(l, _) => l.local_addr(),
            Self::Smol(l, _) => l.local_addr(),
        }
    }

    /// The clock the server on this listener runs on.
    #[must_use]
    pub fn clock(&self) -> Clock {
        match self {
            Self::Tokio(_, c) => Clock::Tokio(*c),
            Self::Smol(_, c) => Clock::Smol(*c),
        }
    }
}

/// Starts `server` on `listener` with the listener's runtime and clock.
pub fn spawn_server<S: Store>(
    listener: Listener,
    server: Server,
    store: S,
    limits: WsLimits,
) -> ServerHandle {
    match listener {
        Listener::Tokio(l, c) => {
            ServerHandle::Tokio(socp_tokio::spawn_server(l, server, store, limits, c))
        }
        Listener::Smol(l, c) => {
            ServerHandle::Smol(socp_smol::spawn_server(l, server, store, limits, c))
        }
    }
}

/// A running server on either runtime.
#[derive(Debug)]
pub enum ServerHandle {
    /// On tokio.
    Tokio(socp_tokio::ServerHandle),
    /// On smol.
    Smol(socp_smol::ServerHandle),
}

impl ServerHandle {
    /// The runtime it runs on.
    #[must_use]
    pub fn runtime(&self) -> Runtime {
        match self {
            Self::Tokio(_) => Runtime::Tokio,
            Self::Smol(_) => Runtime::Smol,
        }
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            Self::Tokio(h) => h.local_addr(),
            Self::Smol(h) => h.local_addr(),
        }
    }

    /// Its current id.
    #[must_use]
    pub fn server_id(&self) -> String {
        match self {
            Self::Tokio(h) => h.server_id(),
            Self::Smol(h) => h.server_id(),
        }
    }

    /// Runs `f` on the server inside its driver; `None` once it stopped.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Server) -> R + Send + 'static,
    ) -> Option<R> {
        match self {
            Self::Tokio(h) => h.with(f).await,
            Self::Smol(h) => h.with(f).await,
        }
    }

    /// Every core event from now on.
    #[must_use]
    pub fn subscribe(&self) -> Events {
        match self {
            Self::Tokio(h) => Events::Tokio(h.subscribe()),
            Self::Smol(h) => Events::Smol(h.subscribe()),
        }
    }

    /// Failed store operations so far.
    #[must_use]
    pub fn store_errors(&self) -> u64 {
        match self {
            Self::Tokio(h) => h.store_errors(),
            Self::Smol(h) => h.store_errors(),
        }
    }

    /// Graceful shutdown; returns once stopped.
    pub async fn shutdown(self) {
        match self {
            Self::Tokio(h) => h.shutdown().await,
            Self::Smol(h) => h.shutdown().await,
        }
    }

    /// Abrupt stop, as a crash.
    pub fn kill(self) {
        match self {
            Self::Tokio(h) => h.kill(),
            Self::Smol(h) => h.kill(),
        }
    }

    /// Resolves once the server has stopped.
    pub async fn closed(&self) {
        match self {
            Self::Tokio(h) => h.closed().await,
            Self::Smol(h) => h.closed().await,
        }
    }
}

/// A subscription to a server's events.
#[derive(Debug)]
pub enum Events {
    /// tokio's broadcast receiver.
    Tokio(tokio::sync::broadcast::Receiver<Event>),
    /// smol's.
    Smol(socp_smol::async_broadcast::Receiver<Event>),
}

impl Events {
    /// The next event; events missed by a lagging subscriber are skipped.
    /// `None` once the server has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        match self {
            Self::Tokio(rx) => loop {
                match rx.recv().await {
                    Ok(event) => return Some(event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            },
            Self::Smol(rx) => loop {
                match rx.recv().await {
                    Ok(event) => return Some(event),
                    Err(socp_smol::async_broadcast::RecvError::Overflowed(_)) => {}
                    Err(_) => return None,
                }
            },
        }
    }
}

/// A running client on either runtime.
#[derive(Debug)]
pub enum ClientHandle {
    /// On tokio.
    Tokio(socp_tokio::ClientHandle),
    /// On smol.
    Smol(socp_smol::ClientHandle),
}

impl ClientHandle {
    /// The next update; `None` after [`ClientUpdate::Stopped`].
    pub async fn next(&mut self) -> Option<ClientUpdate> {
        match self {
            Self::Tokio(h) => h.next().await,
            Self::Smol(h) => h.next().await,
        }
    }

    /// Runs `f` on the client inside its driver.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client, Now) -> R + Send + 'static,
    ) -> Option<R> {
        match self {
            Self::Tokio(h) => h.with(f).await,
            Self::Smol(h) => h.with(f).await,
        }
    }

    /// Our user id.
    #[must_use]
    pub fn user_id(&self) -> &str {
        match self {
            Self::Tokio(h) => h.user_id(),
            Self::Smol(h) => h.user_id(),
        }
    }

    /// Closes the client for good.
    pub async fn close(self) {
        match self {
            Self::Tokio(h) => h.close().await,
            Self::Smol(h) => h.close().await,
        }
    }
}

/// Runs `client` on `clock`'s runtime.
#[must_use]
pub fn spawn_client(client: Client, opts: ClientOptions, clock: Clock) -> ClientHandle {
    match clock {
        Clock::Tokio(c) => ClientHandle::Tokio(socp_tokio::spawn_client(client, opts, c)),
        Clock::Smol(c) => ClientHandle::Smol(socp_smol::spawn_client(client, opts, c)),
    }
}

/// A client on `clock`'s runtime that registers `identity` as a new account
/// on `url`: its keys sealed under `password` with `params`, and `username`
/// if given. Sealing runs Argon2id here, on the caller's task.
///
/// # Errors
/// The keystore could not be sealed (parameters out of bounds).
pub fn spawn_registration(
    url: &str,
    identity: UserIdentity,
    password: &[u8],
    username: Option<&str>,
    params: &KeystoreParams,
    opts: ClientOptions,
    clock: Clock,
) -> Result<ClientHandle, KeystoreError> {
    let mut rng = rng_from_seed(socp_tokio::random_seed());
    let auth = AuthMode::register(&identity, password, username, params, &mut rng)?;
    let client = Client::with_auth(
        ClientConfig::new(vec![url.to_owned()]),
        identity,
        auth,
        socp_tokio::random_seed(),
        clock.now(),
    );
    Ok(spawn_client(client, opts, clock))
}

/// Password login (keystore fetch, then a logged-in client) on `clock`'s
/// runtime.
///
/// # Errors
/// See [`LoginError`].
pub async fn login_with_password(
    url: &str,
    who: &str,
    password: &[u8],
    cfg: ClientConfig,
    opts: ClientOptions,
    clock: Clock,
) -> Result<ClientHandle, LoginError> {
    match clock {
        Clock::Tokio(c) => socp_tokio::login_with_password(url, who, password, cfg, opts, c)
            .await
            .map(ClientHandle::Tokio),
        Clock::Smol(c) => socp_smol::login_with_password(url, who, password, cfg, opts, c)
            .await
            .map(ClientHandle::Smol),
    }
}
