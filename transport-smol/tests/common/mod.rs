//! Helpers shared by the integration tests: servers and clients on 127.0.0.1
//! port 0, fixture keys, bounded waits, a raw WebSocket dialer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    missing_docs
)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Error as WsError;
use smol::net::{TcpListener, TcpStream};
use socp_core::client::{Client, ClientConfig, ClientEvent, UserIdentity};
use socp_core::crypto::fixtures;
use socp_core::server::{BootstrapEntry, MemoryStore, Server, ServerConfig, StoredState};
use socp_smol::{
    ClientHandle, ClientOptions, ClientUpdate, Clock, ServerHandle, WsLimits, random_seed,
    spawn_client, spawn_server,
};

/// The longest any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// Runs a test's body to completion on this thread.
pub fn run<T>(test: impl Future<Output = T>) -> T {
    init_logs();
    smol::block_on(test)
}

/// `fut`'s output, or `None` after `limit`.
pub async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

/// A fresh UUIDv4.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&random_seed()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A server with fixture key `key`, joining through `bootstrap` (servers
/// already running), with `limits`.
pub async fn server_with(
    key: usize,
    bootstrap: &[&ServerHandle],
    limits: WsLimits,
) -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = ServerConfig::default();
    cfg.host = "127.0.0.1".into();
    cfg.port = port;
    cfg.bootstrap = bootstrap
        .iter()
        .map(|s| BootstrapEntry {
            host: "127.0.0.1".into(),
            port: s.local_addr().port(),
            pubkey: None,
        })
        .collect();
    let clock = Clock::new();
    let server = Server::new(
        cfg,
        fixtures::rsa_identity(key),
        random_seed(),
        StoredState::default(),
        clock.now(),
    );
    spawn_server(listener, server, MemoryStore::default(), limits, clock)
}

/// Logs to the test's output, filtered by `RUST_LOG` (nothing by default).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A standalone server with fixture key `key` and default limits.
pub async fn server(key: usize) -> ServerHandle {
    server_with(key, &[], WsLimits::default()).await
}

pub fn url(server: &ServerHandle) -> String {
    format!("ws://{}/", server.local_addr())
}

/// A raw WebSocket to `url` (`ws://127.0.0.1:port/path`), over `tcp` if given.
pub async fn ws_connect(
    url: &str,
    tcp: Option<TcpStream>,
) -> Result<WebSocketStream<TcpStream>, WsError> {
    let tcp = match tcp {
        Some(tcp) => tcp,
        None => {
            let authority = url.trim_start_matches("ws://").split('/').next().unwrap();
            TcpStream::connect(authority).await?
        }
    };
    let (ws, _response) = async_tungstenite::client_async(url, tcp).await?;
    Ok(ws)
}

/// A unique empty folder under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("socp-smol-{tag}-{}", new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A plain (USER_HELLO) client with fixture key `key` on `url`.
pub fn client(url: &str, key: usize, download_dir: PathBuf) -> ClientHandle {
    let clock = Clock::new();
    let me = UserIdentity::new(new_id(), fixtures::rsa_identity(key));
    let client = Client::new(
        ClientConfig::new(vec![url.to_owned()]),
        me,
        random_seed(),
        clock.now(),
    );
    spawn_client(client, ClientOptions::new(download_dir), clock)
}

/// Reads updates until `pick` returns something; fails after [`WAIT`].
pub async fn wait_for<T>(
    handle: &mut ClientHandle,
    what: &str,
    mut pick: impl FnMut(&ClientUpdate) -> Option<T>,
) -> T {
    let mut seen = Vec::new();
    let found = timeout(WAIT, async {
        while let Some(update) = handle.next().await {
            if let Some(found) = pick(&update) {
                return Some(found);
            }
            seen.push(update);
        }
        None
    })
    .await;
    match found {
        Some(Some(found)) => found,
        Some(None) => panic!("client stopped while waiting for {what}; saw {seen:#?}"),
        None => panic!("timed out waiting for {what}; saw {seen:#?}"),
    }
}

/// Waits until the client is connected (USER_HELLO sent).
pub async fn connected(handle: &mut ClientHandle) {
    wait_for(handle, "Connected", |u| {
        matches!(u, ClientUpdate::Event(ClientEvent::Connected { .. })).then_some(())
    })
    .await;
}

/// Waits until `user` is online as `handle` sees it.
pub async fn sees_online(handle: &mut ClientHandle, user: &str) {
    let user = user.to_owned();
    wait_for(handle, &format!("{user} online"), |u| match u {
        ClientUpdate::Event(ClientEvent::UserOnline { user_id }) if *user_id == user => Some(()),
        _ => None,
    })
    .await;
}

/// Waits for a message with `text` and returns (from, status).
pub async fn message(
    handle: &mut ClientHandle,
    text: &str,
) -> (String, socp_core::client::MessageStatus) {
    let want = text.to_owned();
    wait_for(handle, &format!("message {text:?}"), |u| match u {
        ClientUpdate::Event(ClientEvent::Message {
            from, text, status, ..
        }) if *text == want => Some((from.clone(), *status)),
        _ => None,
    })
    .await
}

/// Sends a DM from `from` to `to`.
pub async fn send_dm(from: &ClientHandle, to: &str, text: &str) {
    let (to, text) = (to.to_owned(), text.to_owned());
    from.with(move |c, now| c.send_direct(now, &to, &text))
        .await
        .expect("client driver gone");
}

/// Waits (at most [`WAIT`]) for a server event that `pick` accepts; skips
/// over events lost to lag.
pub async fn server_event(
    events: &mut socp_smol::async_broadcast::Receiver<socp_core::server::Event>,
    what: &str,
    mut pick: impl FnMut(&socp_core::server::Event) -> bool,
) {
    use socp_smol::async_broadcast::RecvError;
    let found = timeout(WAIT, async {
        loop {
            match events.recv_direct().await {
                Ok(event) if pick(&event) => break,
                Ok(_) | Err(RecvError::Overflowed(_)) => {}
                Err(RecvError::Closed) => panic!("server stopped while waiting for {what}"),
            }
        }
    })
    .await;
    assert!(found.is_some(), "timed out waiting for {what}");
}

/// Shuts a server down within [`WAIT`].
pub async fn stop(server: ServerHandle) {
    timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown hung");
}
