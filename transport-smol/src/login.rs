//! From a username (or user id) and a password to a logged-in client.

use std::time::Instant;

use async_tungstenite::tungstenite::{Message, Utf8Bytes};
use bytes::Bytes;
use futures_util::StreamExt;
use socp_core::client::{
    AuthMode, Client, ClientConfig, ClientEvent, FetchStep, KeystoreFetcher, UserIdentity,
};

use crate::client::{ClientHandle, spawn_client};
use crate::conn::{self, CLOSE_LINGER};
use crate::{
    ClientOptions, ClientUpdate, Clock, LOGIN_TIMEOUT, LoginError, WsLimits, random_seed, timeout,
    timeout_at,
};

/// Fetches and opens the keystore of the account `who` (a user id or a
/// username) from the server at `url` with `password`, on a WebSocket of its
/// own that is closed afterwards. The password never leaves this process
/// (only a proof derived from it does). Times out after [`LOGIN_TIMEOUT`].
///
/// # Errors
/// See [`LoginError`].
pub async fn fetch_identity(
    url: &str,
    who: &str,
    password: &[u8],
    limits: &WsLimits,
) -> Result<UserIdentity, LoginError> {
    timeout(LOGIN_TIMEOUT, fetch(url, who, password, limits))
        .await
        .ok_or(LoginError::Timeout)?
}

/// Logs in to the account `who` (a user id or a username) with `password`
/// only: fetches the keystore ([`fetch_identity`]), builds a
/// [`Client`] with [`AuthMode::Login`] (`cfg.servers` gets `url` first if it
/// lacks it), spawns it ([`spawn_client`]) and waits until it is logged in.
/// The updates seen meanwhile (`Connecting`, `Connected`, `LoggedIn`, ...) are
/// still handed out by [`ClientHandle::next`]. Times out after
/// [`LOGIN_TIMEOUT`] overall.
///
/// # Errors
/// See [`LoginError`]; a refused login (the client's
/// [`ClientEvent::LoginFailed`]) is [`LoginError::Refused`], and the client
/// is then closed.
pub async fn login_with_password(
    url: &str,
    who: &str,
    password: &[u8],
    mut cfg: ClientConfig,
    opts: ClientOptions,
    clock: Clock,
) -> Result<ClientHandle, LoginError> {
    let deadline = Instant::now().checked_add(LOGIN_TIMEOUT);
    let identity = timeout_at(deadline, fetch(url, who, password, &opts.limits))
        .await
        .ok_or(LoginError::Timeout)??;
    if !cfg.servers.iter().any(|s| s == url) {
        cfg.servers.insert(0, url.to_owned());
    }
    let client = Client::with_auth(cfg, identity, AuthMode::Login, random_seed(), clock.now());
    let mut handle = spawn_client(client, opts, clock);
    let outcome = timeout_at(deadline, async {
        loop {
            let Ok(update) = handle.updates.recv().await else {
                return Err(LoginError::Closed);
            };
            let verdict = match &update {
                ClientUpdate::Event(ClientEvent::LoggedIn { .. }) => Some(Ok(())),
                ClientUpdate::Event(ClientEvent::LoginFailed { code, detail }) => {
                    Some(Err(LoginError::Refused {
                        code: code.clone(),
                        detail: detail.clone(),
                    }))
                }
                ClientUpdate::Stopped => Some(Err(LoginError::Closed)),
                _ => None,
            };
            handle.replay.push_back(update);
            if let Some(verdict) = verdict {
                return verdict;
            }
        }
    })
    .await
    .unwrap_or(Err(LoginError::Timeout));
    match outcome {
        Ok(()) => Ok(handle),
        Err(e) => {
            handle.close().await;
            Err(e)
        }
    }
}

fn text(frame: Vec<u8>) -> Result<Message, LoginError> {
    Utf8Bytes::try_from(frame)
        .map(Message::Text)
        .map_err(|_| LoginError::Closed)
}

/// The fetch itself, without its timeout.
async fn fetch(
    url: &str,
    who: &str,
    password: &[u8],
    limits: &WsLimits,
) -> Result<UserIdentity, LoginError> {
    let clock = Clock::new();
    let mut ws = conn::dial(url, limits).await.map_err(LoginError::Connect)?;
    let mut fetcher = KeystoreFetcher::new(who, password);
    let hello = text(fetcher.hello_frame(clock.now()))?;
    let result = async {
        ws.send(hello).await.map_err(|_| LoginError::Closed)?;
        loop {
            let frame = match ws.next().await {
                Some(Ok(Message::Text(frame))) => Bytes::from(frame),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Err(LoginError::Closed),
                Some(Ok(_)) => continue,
            };
            // Deriving the password key (Argon2id) is heavy: off the executor.
            let now = clock.now();
            let (back, step) = smol::unblock(move || {
                let step = fetcher.handle_frame(now, &frame);
                (fetcher, step)
            })
            .await;
            fetcher = back;
            match step {
                FetchStep::Send(frame) => {
                    ws.send(text(frame)?)
                        .await
                        .map_err(|_| LoginError::Closed)?;
                }
                FetchStep::Done(identity) => return Ok(*identity),
                FetchStep::Refused { code, detail } => {
                    return Err(LoginError::Refused { code, detail });
                }
                FetchStep::Failed(e) => return Err(LoginError::Keystore(e)),
                _ => {}
            }
        }
    }
    .await;
    let _ = timeout(CLOSE_LINGER, ws.close(None)).await;
    result
}
