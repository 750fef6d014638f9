//! What goes into and comes out of a [`Server`](super::Server).

use bytes::Bytes;

use super::AccountRecord;
use crate::wire::ErrorCode;

/// A connection, as the server knows it. Ids are allocated by the server and
/// never reused within one `Server`'s lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// How a connection came to be, given to [`Server::handle_connected`](super::Server::handle_connected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Someone connected to us. `remote` is their address, for logs and per-address limits.
    Inbound {
        /// The peer's address as the adapter sees it (e.g. `"127.0.0.1:53122"`).
        remote: String,
    },
    /// A [`Action::Dial`] we asked for has connected.
    Dialed(LinkId),
}

/// A frame to send on a link: one WebSocket text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub link: LinkId,
    /// The frame (UTF-8 JSON). Shared, so fan-out costs no copies.
    pub frame: Bytes,
}

/// Something the adapter must do for the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Open a WebSocket to `ws://host:port/`. Report success with
    /// [`Connection::Dialed`] and failure with `handle_closed(link)`.
    Dial {
        /// The id this link will have.
        link: LinkId,
        /// Host to dial.
        host: String,
        /// Port to dial.
        port: u16,
    },
    /// Close a link (after sending whatever is queued for it).
    Close {
        /// The link to close.
        link: LinkId,
        /// The WebSocket close code (1000 = normal).
        code: u16,
        /// A short human reason.
        reason: String,
    },
    /// Persist something (SOCP §15 tables and pins).
    Store(StoreOp),
    /// Look something up in the store; answer with
    /// [`Server::handle_stored`](super::Server::handle_stored). Later than
    /// every [`Action::Store`] emitted before it, so it sees those writes.
    Load(LoadRequest),
}

/// A read the server asks the adapter for (see [`Action::Load`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadRequest {
    /// The account `user_id` (`users` row), for the login on `link`.
    Account {
        /// The link waiting for it (give it back in the reply).
        link: LinkId,
        /// The account's user id.
        user_id: String,
    },
}

/// The answer to a [`LoadRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredReply {
    /// The answer to [`LoadRequest::Account`]: the record, or `None` if there is none.
    Account {
        /// The link from the request.
        link: LinkId,
        /// The account.
        record: Option<AccountRecord>,
    },
}

/// A write the server asks the adapter to persist. Writes are idempotent upserts,
/// so the adapter may apply them in batches; the server never waits for them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// Our own server id, once the introducer has assigned it.
    ServerId {
        /// The assigned id.
        server_id: String,
    },
    /// A user that has connected here (`users` table): id and public key.
    User {
        /// The user's id.
        user_id: String,
        /// The user's key, in wire encoding.
        pubkey: String,
    },
    /// The public channel's version (`groups` row `public`).
    PublicVersion {
        /// The new version.
        version: u64,
    },
    /// A public channel member (`group_members`).
    PublicMember {
        /// The member's user id.
        member_id: String,
        /// When it was added (Unix ms).
        added_at: u64,
    },
    /// A server's key, pinned to its id, and its address.
    PinServer {
        /// The server's id.
        server_id: String,
        /// Its key, in wire encoding.
        pubkey: String,
        /// Its host.
        host: String,
        /// Its port.
        port: u16,
    },
    /// A registered account (`users` row with `privkey_store`, `pake_password`
    /// and `version`): an upsert keyed by user id.
    Account(AccountRecord),
}

/// State a server starts from: what an earlier run persisted through [`StoreOp`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// The id assigned by an introducer in an earlier run.
    pub server_id: Option<String>,
    /// Users that connected here before: `(user_id, pubkey)`.
    pub users: Vec<(String, String)>,
    /// The public channel's version.
    pub public_version: u64,
    /// Public channel members: `(member_id, added_at)`.
    pub public_members: Vec<(String, u64)>,
    /// Pinned servers: `(server_id, pubkey, host, port)`.
    pub servers: Vec<(String, String, String, u16)>,
    /// Registered accounts.
    pub accounts: Vec<AccountRecord>,
}

/// Where a user is, as this server knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Location {
    /// Connected to this server.
    Local,
    /// Homed on another server (by id).
    Server(String),
}

/// Something that happened, for logs, metrics and UIs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An introducer welcomed us; `server_id` is our (possibly new) id.
    Joined {
        /// Our id from now on.
        server_id: String,
        /// The introducer's id.
        introducer: String,
    },
    /// No introducer could be reached this round; we keep serving standalone and retry.
    BootstrapFailed,
    /// A server link is up and identified.
    ServerLinked {
        /// The peer server.
        server_id: String,
    },
    /// A server link now runs the secure profile: its frames are sealed in
    /// a ratcheted channel, without per-frame RSA signatures.
    SecureLinkUp {
        /// The peer server.
        server_id: String,
    },
    /// A server link closed or timed out; its users were removed.
    ServerLost {
        /// The peer server.
        server_id: String,
        /// Why.
        reason: String,
    },
    /// A user became reachable.
    UserOnline {
        /// The user.
        user_id: String,
        /// Where.
        location: Location,
    },
    /// A user is no longer reachable.
    UserOffline {
        /// The user.
        user_id: String,
    },
    /// A frame was refused. Counted, logged, and (to users, rate-limited) answered.
    Rejected {
        /// The link it came on.
        link: LinkId,
        /// The SOCP error code.
        code: ErrorCode,
        /// What was wrong.
        detail: String,
    },
    /// A duplicate or replayed frame was dropped by the seen-cache.
    Duplicate {
        /// The link it came on.
        link: LinkId,
    },
}
