//! socp-tokio: drives the [`socp_core`] state machines over tokio and
//! tokio-tungstenite.
//!
//! The core does no I/O: a [`Server`](socp_core::server::Server) or a
//! [`Client`](socp_core::client::Client) takes frames, connection events, the
//! time and commands, and gives back frames, actions and events. This crate is
//! the thin loop around it:
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
//! The driver runs the core's cryptography (RSA signatures, decryption) on its
//! own task: use a multi-threaded runtime so that one busy state machine does
//! not hold up the rest of the program.
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
mod server;

pub use client::{ClientHandle, spawn_client};
pub use clock::Clock;
pub use login::{fetch_identity, login_with_password};
pub use server::{ServerHandle, spawn_server};
// The plain data both adapters share lives in the core, so apps switch
// runtimes without changing a type.
pub use socp_core::driver::{
    ClientOptions, ClientUpdate, LOGIN_TIMEOUT, LoginError, UPDATE_CAPACITY, WsLimits,
};

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

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
}
