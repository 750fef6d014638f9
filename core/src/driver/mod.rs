//! What every runtime adapter shares: the limits on a WebSocket link, what a
//! running client hands its app, and why a password login fails.
//!
//! [`upgrade`] decides what happens to an HTTP request on a server's port
//! before the WebSocket upgrade.
//!
//! These are plain data: the adapters (`socp-tokio`, `socp-smol`) re-export
//! them, so an app can switch runtimes without changing a type, and a mixed
//! mesh runs one configuration. Nothing here does I/O.

pub mod upgrade;

use core::time::Duration;
use std::path::PathBuf;

use crate::client::{ClientEvent, FileId, IdentityError};
use crate::wire::ErrorCode;

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
    /// [`Limits::DEFAULT_MAX_FRAME_BYTES`](crate::wire::Limits::DEFAULT_MAX_FRAME_BYTES) (1 MiB), since the core would refuse
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
            max_message: crate::wire::Limits::DEFAULT_MAX_FRAME_BYTES,
            max_frame: crate::wire::Limits::DEFAULT_MAX_FRAME_BYTES,
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
    /// The interval between pings (a third of the idle timeout, at least 10 ms).
    #[must_use]
    pub fn ping_interval(&self) -> Duration {
        (self.idle_timeout / 3).max(Duration::from_millis(10))
    }

    /// The idle timeout, at least 30 ms.
    #[must_use]
    pub fn idle(&self) -> Duration {
        self.idle_timeout.max(Duration::from_millis(30))
    }

    /// Per-link queue capacity, at least 1.
    #[must_use]
    pub fn queue(&self) -> usize {
        self.outgoing_queue.max(1)
    }

    /// The largest message, at least 1 byte.
    #[must_use]
    pub fn message(&self) -> usize {
        self.max_message.max(1)
    }

    /// The largest frame: at least 1 byte, at most [`message`](Self::message).
    #[must_use]
    pub fn frame(&self) -> usize {
        self.max_frame.clamp(1, self.message())
    }

    /// The bound on the WebSocket layer's write buffer, raised to
    /// `write_buffer + max_message + 1` when lower (tungstenite panics on a
    /// bound at or below its write buffer).
    #[must_use]
    pub fn write_buffer_bound(&self) -> usize {
        let floor = self
            .write_buffer
            .saturating_add(self.message())
            .saturating_add(1);
        self.max_write_buffer.max(floor)
    }
}

/// Capacity of the update channel from a client driver to its app.
pub const UPDATE_CAPACITY: usize = 4096;

/// Something for the app from a running client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientUpdate {
    /// An event of the core client.
    Event(ClientEvent),
    /// A received file was written at `path` (inside the download folder).
    FileSaved {
        /// The transfer.
        file_id: FileId,
        /// Where it was written.
        path: PathBuf,
    },
    /// A received file could not be written.
    FileSaveFailed {
        /// The transfer.
        file_id: FileId,
        /// Why.
        error: String,
    },
    /// The driver ended: the client is closed for good. Nothing follows.
    Stopped,
}

/// How an adapter runs a client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Where received files are written (created if missing). Nothing is
    /// ever written outside it, and no existing file is ever replaced.
    pub download_dir: PathBuf,
    /// WebSocket limits.
    pub limits: WsLimits,
}

impl ClientOptions {
    /// Options saving files in `download_dir`, with the default limits.
    #[must_use]
    pub fn new(download_dir: impl Into<PathBuf>) -> Self {
        Self {
            download_dir: download_dir.into(),
            limits: WsLimits::default(),
        }
    }
}

/// How long a whole login (fetch and log in) may take.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an adapter's `login_with_password` or `fetch_identity` failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The server could not be reached (or the URL is not `ws://`).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server refused: `INVALID_SIG` for a wrong password,
    /// `USER_NOT_FOUND` for an unknown account, or the login's error.
    #[error("refused by the server: {code}: {detail}")]
    Refused {
        /// The SOCP error code.
        code: ErrorCode,
        /// The server's explanation.
        detail: String,
    },
    /// The keystore arrived but does not open.
    #[error("the keystore does not open: {0}")]
    Keystore(IdentityError),
    /// It took longer than [`LOGIN_TIMEOUT`].
    #[error("timed out")]
    Timeout,
    /// The connection closed before an answer.
    #[error("the connection closed")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_always_valid() {
        let limits = WsLimits {
            write_buffer: 1 << 20,
            max_write_buffer: 0,
            max_frame: 1 << 30,
            max_message: 0,
            idle_timeout: Duration::ZERO,
            outgoing_queue: 0,
            ..WsLimits::default()
        };
        assert_eq!(limits.message(), 1);
        assert_eq!(limits.frame(), 1);
        assert!(limits.write_buffer_bound() > limits.write_buffer);
        assert_eq!(limits.idle(), Duration::from_millis(30));
        assert_eq!(limits.ping_interval(), Duration::from_millis(10));
        assert_eq!(limits.queue(), 1);
    }
}
