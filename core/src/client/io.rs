//! What comes out of a [`Client`](super::Client): actions for the adapter and
//! events for the UI.

use core::fmt;
use core::time::Duration;

use bytes::Bytes;

use crate::wire::ErrorCode;

/// The id of a message we sent: 16 random bytes, shown as 32 hex digits (the
/// `msg_id` payload field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// The id as it travels in `msg_id`: 32 lowercase hex digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        super::hex(&self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The id of a file transfer (a UUIDv4, the `file_id` payload field).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub String);

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where [`Client::send_file`](super::Client::send_file) sends a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTarget {
    /// To one user (`mode: "dm"`).
    User(String),
    /// To every online member of the public channel (`mode: "public"`), one
    /// encrypted copy per member.
    Public,
}

/// Something the adapter must do for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAction {
    /// Open the WebSocket to server `index` of
    /// [`ClientConfig::servers`](super::ClientConfig::servers). Report success
    /// with [`Client::handle_connected`](super::Client::handle_connected) and
    /// failure with [`Client::handle_closed`](super::Client::handle_closed).
    Connect {
        /// Index into the configured server list.
        index: usize,
        /// The server's URL, as configured.
        url: String,
    },
    /// Close the connection (after sending what is queued), then report it with
    /// `handle_closed`.
    Close {
        /// The WebSocket close code (1000 = normal).
        code: u16,
        /// A short human reason.
        reason: String,
    },
    /// Save a received file. `name` is already sanitized
    /// ([`sanitize_file_name`](super::sanitize_file_name)): a bare file name,
    /// never a path. The adapter writes it **only inside its download folder**
    /// and must not overwrite an existing file (add a suffix instead).
    WriteFile {
        /// The transfer it came from.
        file_id: FileId,
        /// The sanitized file name.
        name: String,
        /// The complete, size- and SHA-256-checked content.
        bytes: Bytes,
    },
}

/// How far a received message can be trusted. Always computed locally: a
/// `status`, `verified` or `is_forward_message` field on the wire is ignored
/// (docs/seed-systems.md A.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageStatus {
    /// The `content_sig` verifies under the sender's pinned directory key.
    Verified,
    /// No directory key is pinned for the sender (at most the key the message
    /// itself carried in `sender_pub`), so the signature proves nothing.
    Unverified,
    /// The message carries no `content_sig` (absent or empty).
    Unsigned,
    /// The `content_sig` does not verify under the sender's pinned key. The
    /// text is not decrypted.
    InvalidSignature,
    /// The ciphertext does not decrypt with our key. No text.
    DecryptionFailed,
}

impl MessageStatus {
    /// The status as seed 000 spells it (`verified`, `invalid_signature`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Unverified => "unverified",
            Self::Unsigned => "unsigned",
            Self::InvalidSignature => "invalid_signature",
            Self::DecryptionFailed => "decryption_failed",
        }
    }

    /// The less trustworthy of two statuses (for a message of several parts).
    #[must_use]
    pub fn worst(self, other: Self) -> Self {
        self.max(other)
    }
}

/// Where a pinned key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// The server's directory: `USER_ADVERTISE` or `PUBKEY_RESPONSE`.
    Directory,
    /// Only the `sender_pub` of a received message (trust on first use, last
    /// resort): usable to reply, but messages checked with it stay `Unverified`,
    /// and the first directory key replaces it.
    SenderPub,
    /// A changed key the user accepted with [`Client::accept_key`](super::Client::accept_key).
    Accepted,
}

/// Why a sent message did not go out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendFailure {
    /// No key for the recipient arrived within
    /// [`ClientConfig::key_timeout`](super::ClientConfig::key_timeout).
    NoKey,
    /// The server does not know the recipient (`ERROR USER_NOT_FOUND`).
    UserNotFound,
    /// The outgoing queue is full.
    QueueFull,
    /// Encryption or signing failed.
    Crypto,
}

/// Why a received file was not saved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFailure {
    /// The manifest announces more than
    /// [`ClientConfig::max_file_size`](super::ClientConfig::max_file_size).
    TooLarge {
        /// Announced size.
        size: u64,
        /// Our limit.
        max: u64,
    },
    /// Too many transfers in progress at once.
    TooManyTransfers,
    /// A chunk index beyond what the announced size allows.
    BadChunkIndex {
        /// The index.
        index: u64,
    },
    /// A chunk does not decrypt with our key.
    DecryptionFailed {
        /// The chunk's index.
        index: u64,
    },
    /// FILE_END came and this chunk never did.
    MissingChunk {
        /// The first missing index.
        index: u64,
    },
    /// The chunks add up to another size than the manifest's.
    SizeMismatch {
        /// The manifest's size.
        expected: u64,
        /// Bytes received (so far, when it overflowed).
        got: u64,
    },
    /// The content's SHA-256 differs from the manifest's.
    HashMismatch,
    /// The manifest's `sha256` is not 64 hex digits.
    BadManifest,
    /// The manifest's `content_sig` does not verify under the sender's pinned key.
    InvalidSignature,
    /// No chunk and no FILE_END within
    /// [`ClientConfig::file_idle_timeout`](super::ClientConfig::file_idle_timeout).
    Timeout,
}

impl fmt::Display for FileFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, max } => write!(f, "file of {size} bytes exceeds {max}"),
            Self::TooManyTransfers => f.write_str("too many transfers in progress"),
            Self::BadChunkIndex { index } => write!(f, "chunk index {index} out of range"),
            Self::DecryptionFailed { index } => write!(f, "chunk {index} does not decrypt"),
            Self::MissingChunk { index } => write!(f, "chunk {index} is missing"),
            Self::SizeMismatch { expected, got } => {
                write!(f, "size mismatch: manifest {expected}, received {got}")
            }
            Self::HashMismatch => f.write_str("SHA-256 mismatch"),
            Self::BadManifest => f.write_str("malformed manifest"),
            Self::InvalidSignature => f.write_str("manifest signature does not verify"),
            Self::Timeout => f.write_str("transfer timed out"),
        }
    }
}

/// Something that happened, for UIs and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Dialling server `index`.
    Connecting {
        /// Index into the configured server list.
        index: usize,
        /// Its URL.
        url: String,
    },
    /// The link is up and USER_HELLO was sent.
    Connected {
        /// Index of the server.
        index: usize,
    },
    /// The account was created on the server and this link is logged in.
    Registered {
        /// Our user id.
        user_id: String,
        /// Our username, if any.
        username: Option<String>,
    },
    /// This link is logged in to our account (every reconnect logs in again,
    /// with a fresh nonce).
    LoggedIn {
        /// Our user id.
        user_id: String,
    },
    /// Registering or logging in failed. On `NAME_IN_USE` (login only),
    /// `FORBIDDEN`, `TIMEOUT` and `RATE_LIMITED` the client retries on the next
    /// link; on anything else it stops (no reconnect):
    /// `code` is the server's SOCP error code (`INVALID_SIG`, `FORBIDDEN`,
    /// `USER_NOT_FOUND`, `NAME_IN_USE`, ...).
    LoginFailed {
        /// The error code.
        code: crate::wire::ErrorCode,
        /// The server's explanation.
        detail: String,
    },
    /// The link is gone; the next attempt is in `retry_in`. The roster is
    /// cleared (the server re-sends it after the next hello).
    Disconnected {
        /// Delay before the next [`ClientAction::Connect`].
        retry_in: Duration,
    },
    /// A user came online (USER_ADVERTISE).
    UserOnline {
        /// The user.
        user_id: String,
    },
    /// A user went offline (USER_REMOVE).
    UserOffline {
        /// The user.
        user_id: String,
    },
    /// The answer to [`Client::request_list`](super::Client::request_list): online users, sorted.
    List(Vec<String>),
    /// A key was pinned for a user who had none (or replaced a `sender_pub` pin).
    KeyLearned {
        /// The user.
        user_id: String,
        /// SHA-256 of the key's DER, hex.
        fingerprint: String,
        /// Where it came from.
        source: KeySource,
    },
    /// A different key was offered for a user whose key is pinned. The old key
    /// is kept; [`Client::accept_key`](super::Client::accept_key) switches to the new one.
    KeyChanged {
        /// The user.
        user_id: String,
        /// The pinned key's fingerprint.
        old_fingerprint: String,
        /// The offered key's fingerprint.
        new_fingerprint: String,
    },
    /// A message arrived (all its parts, if it had several).
    Message {
        /// The sender's user id.
        from: String,
        /// The sender's timestamp (Unix ms), as signed.
        ts: u64,
        /// The text; empty when it could not be decrypted or the signature failed.
        text: String,
        /// How far it can be trusted (computed here, never read from the wire).
        status: MessageStatus,
        /// Whether it came through the public channel.
        public: bool,
    },
    /// All frames of a message were handed to the transport.
    Sent {
        /// The message.
        msg_id: MessageId,
        /// The recipient (a member, for the public channel).
        to: String,
        /// How many MSG_* frames it took.
        parts: usize,
    },
    /// The server acknowledged every piece of a message: it took
    /// responsibility for passing it on (not a read receipt).
    Acked {
        /// The message.
        msg_id: MessageId,
        /// The recipient (a member, for the public channel).
        to: String,
    },
    /// A message could not be sent.
    SendFailed {
        /// The message.
        msg_id: MessageId,
        /// The recipient.
        to: String,
        /// Why.
        reason: SendFailure,
    },
    /// A file we send was handed to the transport (FILE_START, chunks, FILE_END).
    FileSent {
        /// The transfer.
        file_id: FileId,
        /// The recipient (a member, for the public channel).
        to: String,
        /// Number of chunks.
        chunks: u64,
    },
    /// A file we send could not be sent to `to`.
    FileSendFailed {
        /// The transfer.
        file_id: FileId,
        /// The recipient.
        to: String,
        /// Why.
        reason: SendFailure,
    },
    /// An incoming file is announced (FILE_START).
    FileOffered {
        /// The transfer.
        file_id: FileId,
        /// The sender.
        from: String,
        /// The sanitized name it will be saved under.
        name: String,
        /// Announced size in bytes.
        size: u64,
    },
    /// Progress of an incoming file.
    FileProgress {
        /// The transfer.
        file_id: FileId,
        /// Bytes received so far.
        received: u64,
        /// Announced size.
        total: u64,
    },
    /// An incoming file is complete and checked; a [`ClientAction::WriteFile`] follows.
    FileReceived {
        /// The transfer.
        file_id: FileId,
        /// The sender.
        from: String,
        /// The sanitized name.
        name: String,
        /// Size in bytes.
        size: u64,
        /// The manifest's signature status (socp signs the manifest, which
        /// carries the SHA-256; other clients do not).
        status: MessageStatus,
    },
    /// An incoming file was refused or failed its checks; nothing is written.
    FileFailed {
        /// The transfer.
        file_id: FileId,
        /// Why.
        reason: FileFailure,
    },
    /// The public channel's version moved forward (PUBLIC_CHANNEL_UPDATED).
    PublicChannel {
        /// The new version.
        version: u64,
    },
    /// A public-channel key share for us was received and decrypted.
    ChannelKey {
        /// Who created it (the envelope's `from`).
        creator: String,
        /// Whether its `content_sig` verifies (and under a pinned key).
        status: MessageStatus,
        /// SHA-256 of the channel key, hex (never the key itself).
        fingerprint: String,
    },
    /// An `ERROR` from the server.
    Error {
        /// The code.
        code: ErrorCode,
        /// Its detail text.
        detail: String,
    },
    /// A frame was ignored (undecodable, unexpected, a replay); for logs.
    Dropped {
        /// Why.
        reason: String,
    },
}
