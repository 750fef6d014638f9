//! Server configuration: identity, bootstrap list, timers and bounds.

use core::time::Duration;

use crate::wire::Limits;

/// One entry of the bootstrap list (SOCP §8: `bootstrap_servers: [{host, port, pubkey}]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapEntry {
    /// Host name or address of the introducer.
    pub host: String,
    /// Its WebSocket port.
    pub port: u16,
    /// Its pinned public key in wire encoding, if known. Without one, the
    /// introducer's key is trusted on first use and then pinned.
    pub pubkey: Option<String>,
}

/// How a server is set up. [`ServerConfig::default`] gives the SOCP v1.3 timings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The server id to ask for; `None` lets the introducer assign one ("auto").
    pub requested_id: Option<String>,
    /// Host other servers and clients should use to reach this server.
    pub host: String,
    /// Port other servers and clients should use to reach this server.
    pub port: u16,
    /// Introducers to join through, tried in order with failover (SOCP §8 asks for ≥ 3).
    /// Empty for the first server of a network. Every server answers
    /// `SERVER_HELLO_JOIN`, so any server can act as an introducer.
    pub bootstrap: Vec<BootstrapEntry>,
    /// Interval between `HEARTBEAT`s to every linked server (SOCP: 15 s).
    pub heartbeat_interval: Duration,
    /// Silence after which a server link is declared dead (SOCP: 45 s).
    pub dead_timeout: Duration,
    /// Largest accepted difference between a frame's `ts` and our clock.
    pub freshness_window: Duration,
    /// How long a frame stays in the seen-cache (at least twice `dead_timeout`).
    pub seen_ttl: Duration,
    /// Most entries the seen-cache holds.
    pub seen_capacity: usize,
    /// First reconnect delay after a link to a server dies.
    pub reconnect_initial: Duration,
    /// Cap on the reconnect delay (exponential backoff with jitter).
    pub reconnect_max: Duration,
    /// How long a new link may stay silent before its first frame identifies it.
    pub hello_timeout: Duration,
    /// Most `ERROR` frames sent to one link per second (no error storms).
    pub errors_per_second: u32,
    /// Wrong keystore proofs (password guesses) outstanding per account
    /// before its keystore fetches get `RATE_LIMITED` (see `throttle`).
    pub login_failures_per_account: u32,
    /// Failed authentications outstanding per remote address before it gets
    /// `RATE_LIMITED` for any login.
    pub login_failures_per_address: u32,
    /// One outstanding failure is forgiven per this period.
    pub login_failure_decay: Duration,
    /// Frame and JSON limits for decoding.
    pub limits: Limits,
    /// Offer the secure profile to other socp servers (`server::secure`):
    /// links where both sides offer it run a ratcheted, authenticated channel
    /// instead of one RSA signature per frame. Links to other SOCP servers
    /// stay plain either way. Default on.
    pub secure_links: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            requested_id: None,
            host: "127.0.0.1".to_owned(),
            port: 0,
            bootstrap: Vec::new(),
            heartbeat_interval: Duration::from_secs(15),
            dead_timeout: Duration::from_secs(45),
            freshness_window: Duration::from_secs(120),
            seen_ttl: Duration::from_secs(120),
            seen_capacity: 100_000,
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(10),
            errors_per_second: 10,
            login_failures_per_account: 5,
            login_failures_per_address: 20,
            login_failure_decay: Duration::from_secs(60),
            limits: Limits::default(),
            secure_links: true,
        }
    }
}
