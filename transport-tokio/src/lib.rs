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

use core::time::Duration;

pub use client::{ClientHandle, ClientOptions, ClientUpdate, UPDATE_CAPACITY, spawn_client};
pub use clock::Clock;
pub use login::{LOGIN_TIMEOUT, LoginError, fetch_identity, login_with_password};
pub use server::{ServerHandle, spawn_server};

use socp_core::wire::Limits;
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

/// Bounds on every WebSocket connection, server and client side.
///
/// Together they cap what one peer can make us hold: its incoming message
/// ([`max_message`](Self::max_message)), what waits to be written to it
/// ([`outgoing_queue`](Self::outgoing_queue), [`outgoing_bytes`](Self::outgoing_bytes),
/// [`max_write_buffer`](Self::max_write_buffer)), and how long it may keep a
/// connection without doing anything ([`handshake_timeout`](Self::handshake_timeout),
/// [`idle_timeout`](Self::idle_timeout)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsLimits {
    /// Largest incoming WebSocket message, in bytes. A larger one closes the
    /// connection (close code 1009). Default: the core's frame limit,
    /// [`Limits::DEFAULT_MAX_FRAME_BYTES`] (1 MiB), since the core would refuse
    /// a larger frame anyway.
    pub max_message: usize,
    /// Largest incoming WebSocket frame payload, in bytes. Default: the same as
    /// [`max_message`](Self::max_message) (1 MiB). Browsers, tungstenite and
    /// Python's `websockets` send each message as a single frame, so a smaller
    /// frame limit would refuse legitimate large messages; a message may still
    /// arrive in several frames, each within this bound. Memory is bounded by
    /// `max_message` either way.
    pub max_frame: usize,
    /// Read buffer of each connection, allocated up front. Default 4 KiB
    /// (tungstenite's own default is 128 KiB per connection, which 10 000 idle
    /// connections would turn into 1.25 GiB).
    pub read_buffer: usize,
    /// How many bytes to collect before writing to the socket. Default 0: every
    /// message is written at once (frames are small and latency matters).
    pub write_buffer: usize,
    /// Most bytes buffered inside the WebSocket layer while the socket does not
    /// take them. Default 4 MiB. It must exceed `write_buffer` plus one
    /// message; a smaller value is raised to `write_buffer + max_message + 1`.
    pub max_write_buffer: usize,
    /// Most frames queued for one link. A server link or user whose queue is
    /// full is a slow reader: it is disconnected (the core is told the link
    /// closed), so memory never grows with a peer that does not read.
    /// Default 16 384: the core sends a whole roster in one burst (one
    /// `USER_ADVERTISE` per online user to a user who just said hello), and
    /// a burst larger than this queue would disconnect a healthy peer.
    /// (The client driver instead waits for room: its frames are its own.)
    pub outgoing_queue: usize,
    /// Most bytes queued for one link (counting each queued frame in full, even
    /// when it is shared with other links); beyond it, as for
    /// [`outgoing_queue`](Self::outgoing_queue). Default 16 MiB (a roster of
    /// about 13 000 users at ~1.2 KiB per advert). This is what bounds a
    /// server's memory per link; the client driver does not apply it.
    pub outgoing_bytes: usize,
    /// Longest time from TCP accept (or connect) to a completed WebSocket
    /// upgrade. Default 10 s: a connection that sends nothing, or trickles its
    /// request (slowloris), is dropped after it.
    pub handshake_timeout: Duration,
    /// A connection that receives nothing (no frame, no ping, no pong) for this
    /// long is closed (close code 1001); the adapter sends a WebSocket ping
    /// every `idle_timeout / 3`, so a live peer always answers in time. Also
    /// bounds how long one frame may take to be written. Default 60 s.
    pub idle_timeout: Duration,
    /// Most accepted connections open at once on a server (handshaking or
    /// established); further ones are closed at once. Default 10 000.
    pub max_connections: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            max_message: Limits::DEFAULT_MAX_FRAME_BYTES,
            max_frame: Limits::DEFAULT_MAX_FRAME_BYTES,
            read_buffer: 4 * 1024,
            write_buffer: 0,
            max_write_buffer: 4 * 1024 * 1024,
            outgoing_queue: 16 * 1024,
            outgoing_bytes: 16 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

impl WsLimits {
    /// The tungstenite configuration for these limits (made valid: tungstenite
    /// panics on a write buffer bound below the write buffer size).
    pub(crate) fn ws_config(&self) -> WebSocketConfig {
        let max_message = self.max_message.max(1);
        let floor = self
            .write_buffer
            .saturating_add(max_message)
            .saturating_add(1);
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer.max(1))
            .write_buffer_size(self.write_buffer)
            .max_write_buffer_size(self.max_write_buffer.max(floor))
            .max_message_size(Some(max_message))
            .max_frame_size(Some(self.max_frame.clamp(1, max_message)))
            .accept_unmasked_frames(false)
    }

    /// The interval between pings (a third of the idle timeout, at least 10 ms).
    pub(crate) fn ping_interval(&self) -> Duration {
        (self.idle_timeout / 3).max(Duration::from_millis(10))
    }

    /// The idle timeout, at least 30 ms.
    pub(crate) fn idle(&self) -> Duration {
        self.idle_timeout.max(Duration::from_millis(30))
    }

    /// Per-link queue capacity, at least 1.
    pub(crate) fn queue(&self) -> usize {
        self.outgoing_queue.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_always_valid() {
        let limits = WsLimits {
            write_buffer: 1 << 20,
            max_write_buffer: 0,
            max_frame: 1 << 30,
            ..WsLimits::default()
        };
        let cfg = limits.ws_config();
        assert!(cfg.max_write_buffer_size > cfg.write_buffer_size);
        assert_eq!(cfg.max_frame_size, Some(limits.max_message));
        assert_ne!(random_seed(), random_seed());
    }
}
