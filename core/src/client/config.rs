//! Client configuration: servers, reconnect timing and receive bounds.

use core::time::Duration;

use crate::wire::Limits;

/// First delay before reconnecting after the link drops.
pub const RECONNECT_INITIAL: Duration = Duration::from_millis(500);
/// Cap on the reconnect delay.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Largest incoming file accepted by default: 16 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// How a client is set up. [`ClientConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Server URLs (`ws://host:port/`), in order of preference. After a failed
    /// dial the client tries the next one.
    pub servers: Vec<String>,
    /// The `client` field of USER_HELLO.
    pub client_name: String,
    /// First reconnect delay ([`RECONNECT_INITIAL`]); doubles per failure.
    pub reconnect_initial: Duration,
    /// Cap on the reconnect delay ([`RECONNECT_MAX`]).
    pub reconnect_max: Duration,
    /// How long a message waits, while connected, for its recipient's key
    /// (PUBKEY_REQUEST) before it fails.
    pub key_timeout: Duration,
    /// How long after USER_HELLO the roster is taken as complete if the server
    /// sends no PUBLIC_CHANNEL_UPDATED (public messages wait for the roster).
    pub roster_grace: Duration,
    /// Largest incoming file ([`DEFAULT_MAX_FILE_SIZE`]).
    pub max_file_size: u64,
    /// Most incoming transfers in progress at once.
    pub max_incoming_files: usize,
    /// An incoming transfer with no frame for this long fails.
    pub file_idle_timeout: Duration,
    /// Largest reassembled multi-part message, in bytes of text.
    pub max_message_bytes: usize,
    /// How long the parts of a message may take to all arrive.
    pub reassembly_timeout: Duration,
    /// Most messages and files queued while offline or waiting for keys.
    pub max_outbox: usize,
    /// Frame and JSON limits for decoding.
    pub limits: Limits,
    /// Offer the secure profile on the link to the server (`client::secure`):
    /// a socp server then seals every frame of this link in a ratcheted
    /// channel and signs none of them. A SOCP server just refuses the offer.
    /// Default on.
    pub secure_link: bool,
}

impl ClientConfig {
    /// The defaults, with `servers` to connect to.
    #[must_use]
    pub fn new(servers: Vec<String>) -> Self {
        Self {
            servers,
            client_name: "socp".to_owned(),
            reconnect_initial: RECONNECT_INITIAL,
            reconnect_max: RECONNECT_MAX,
            key_timeout: Duration::from_secs(10),
            roster_grace: Duration::from_secs(1),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_incoming_files: 4,
            file_idle_timeout: Duration::from_secs(60),
            max_message_bytes: 64 * 1024,
            reassembly_timeout: Duration::from_secs(60),
            max_outbox: 1024,
            limits: Limits::default(),
            secure_link: true,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}
