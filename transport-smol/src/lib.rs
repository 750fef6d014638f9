//! socp-smol: drives the [`socp_core`] state machines over smol and
//! async-tungstenite.
//!
//! The core does no I/O: a [`Server`](socp_core::server::Server) or a
//! [`Client`](socp_core::client::Client) takes frames, connection events, the
//! time and commands, and gives back frames, actions and events. This crate is
//! the thin loop around it, the same as `socp-tokio` (same names, limits and
//! behaviour) on another runtime:
//!
//! - [`spawn_server`] runs a server on a bound `TcpListener`: it accepts
//!   WebSocket connections (paths `/` and `/ws`), dials the servers the core
//!   asks for, applies the core's storage actions to a
//!   [`Store`](socp_core::server::Store) on a thread of its own, and publishes
//!   every core event ([`ServerHandle::subscribe`]).
//! - [`spawn_client`] runs a client: it connects where the core asks, saves
//!   received files inside a download folder, and hands events to the app
//!   ([`ClientHandle::next`]); the app commands it with [`ClientHandle::with`].
//! - [`login_with_password`] goes from a username (or user id) and a password
//!   to a logged-in client; [`fetch_identity`] is its first half.
//!
//! # Tasks
//!
//! Each state machine is owned by one driver task. Every WebSocket has one task
//! of its own that reads (forwarding text frames to the driver over a bounded
//! channel, so a busy driver slows readers down instead of buffering), writes
//! (from a bounded per-link queue), pings every `idle_timeout / 3` and closes
//! the link after `idle_timeout` of silence. The driver never waits on a socket:
//! a link whose queue is full is a slow reader and is disconnected
//! ([`WsLimits::outgoing_queue`], [`WsLimits::outgoing_bytes`]).
//!
//! Tasks run on socp-smol's own executor, one thread per core (or
//! `SMOL_THREADS` threads when that environment variable is set; smol's
//! global executor would run a single thread, on which one server signing
//! frames with RSA holds up everything else); sockets and timers run on
//! async-io's reactor, blocking work (files, password derivation) on smol's
//! blocking pool. Nothing needs the caller to run `smol::block_on`, and every
//! handle method can be awaited from any executor (tokio included).
//!
//! # Logging
//!
//! Everything is logged with [`tracing`]; this crate installs no subscriber.

mod clock;
mod conn;
mod files;
mod http;
mod login;

mod client;
mod executor;
mod server;

pub use client::{ClientHandle, spawn_client};
pub use clock::Clock;
pub use login::{fetch_identity, login_with_password};
pub use server::{ServerHandle, spawn_server};
// The plain data both adapters share lives in the core, so apps switch
// runtimes without changing a type.
/// The broadcast channel of [`ServerHandle::subscribe`] (its `Receiver` and
/// `RecvError`), re-exported so an app needs no direct dependency.
pub use async_broadcast;
pub use socp_core::driver::{
    ClientOptions, ClientUpdate, LOGIN_TIMEOUT, LoginError, UPDATE_CAPACITY, WsLimits,
};

use std::future::Future;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use smol::Timer;
use smol::channel::Receiver;

/// 32 bytes from the operating system's random source, to seed a state
/// machine's CSPRNG.
///
/// If the OS cannot give randomness (it essentially never fails on the
/// platforms Rust supports), the process is aborted after logging: a server or
/// client keyed from a weak seed would be worse than none.
#[must_use]
pub fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    let mut last = None;
    for _ in 0..3 {
        match getrandom::fill(&mut seed) {
            Ok(()) => return seed,
            Err(e) => last = Some(e),
        }
    }
    tracing::error!(error = ?last, "the OS random source failed; aborting");
    std::process::abort()
}

/// The tungstenite configuration for `limits` (made valid: tungstenite
/// panics on a write buffer bound below the write buffer size).
pub(crate) fn ws_config(limits: &WsLimits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer.max(1))
        .write_buffer_size(limits.write_buffer)
        .max_write_buffer_size(limits.write_buffer_bound())
        .max_message_size(Some(limits.message()))
        .max_frame_size(Some(limits.frame()))
        .accept_unmasked_frames(false)
}

/// `fut`'s output, or `None` if it takes longer than `limit`.
pub(crate) async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    // An instant past what `Instant` can hold: a timer that never fires.
    let at = Instant::now().checked_add(limit);
    timeout_at(at, fut).await
}

/// `fut`'s output, or `None` if it is not done at `at` (`None`: never).
pub(crate) async fn timeout_at<T>(at: Option<Instant>, fut: impl Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(fut.await) }, async {
        sleep_until(at).await;
        None
    })
    .await
}

/// Sleeps until `at`; forever for `None`.
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => {
            Timer::at(at).await;
        }
        None => std::future::pending().await,
    }
}

/// The next message of a channel the caller keeps open; a closed channel
/// never yields (so a select branch on it just stays quiet).
pub(crate) async fn recv<T>(rx: &Receiver<T>) -> T {
    match rx.recv().await {
        Ok(item) => item,
        Err(_) => std::future::pending().await,
    }
}

/// A timer re-armed only when its deadline changes (arming one wakes the
/// reactor thread, and the drivers' deadlines rarely change between inputs).
#[derive(Debug)]
pub(crate) struct Deadline {
    timer: Timer,
    armed: Option<Instant>,
}

impl Deadline {
    /// A timer that never fires.
    pub(crate) fn new() -> Self {
        Self {
            timer: Timer::never(),
            armed: None,
        }
    }

    /// Fires at `at` (never for `None`).
    pub(crate) fn set(&mut self, at: Option<Instant>) {
        if at != self.armed {
            self.armed = at;
            match at {
                Some(at) => self.timer.set_at(at),
                None => self.timer = Timer::never(),
            }
        }
    }

    /// Waits until the deadline; then it is disarmed until the next `set`.
    pub(crate) async fn wait(&mut self) {
        (&mut self.timer).await;
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_always_valid() {
        let mut limits = WsLimits::default();
        limits.write_buffer = 1 << 20;
        limits.max_write_buffer = 0;
        limits.max_frame = 1 << 30;
        let cfg = ws_config(&limits);
        assert!(cfg.max_write_buffer_size > cfg.write_buffer_size);
        assert_eq!(cfg.max_frame_size, Some(limits.max_message));
        assert_ne!(random_seed(), random_seed());
    }

    #[test]
    fn timeouts_and_deadlines() {
        smol::block_on(async {
            assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Some(7));
            let never = std::future::pending::<()>();
            assert_eq!(timeout(Duration::from_millis(20), never).await, None);
            assert_eq!(timeout(Duration::MAX, async { 1 }).await, Some(1));
            let mut deadline = Deadline::new();
            deadline.set(Some(Instant::now() + Duration::from_millis(20)));
            let fired = timeout(Duration::from_secs(5), deadline.wait()).await;
            assert_eq!(fired, Some(()));
            // Disarmed after firing: the same instant arms it again.
            let at = Instant::now() + Duration::from_millis(10);
            deadline.set(Some(at));
            deadline.wait().await;
            deadline.set(Some(at));
            assert!(
                timeout(Duration::from_secs(5), deadline.wait())
                    .await
                    .is_some()
            );
            deadline.set(None);
            assert!(
                timeout(Duration::from_millis(20), deadline.wait())
                    .await
                    .is_none()
            );
        });
    }
}
