//! The SOCP v1.3 client (user agent), as a sans-IO state machine.
//!
//! A [`Client`] is fed the state of its one link (to its server), the frames
//! that arrive on it, timer ticks and the app's commands, and is drained of
//! frames to send, actions (connect, close, write a file) and events for the
//! UI. It never touches a socket, a clock, a file or the OS random source:
//! time comes in as [`Now`], randomness from a 32-byte seed.
//!
//! # The run loop
//!
//! ```no_run
//! use socp_core::client::{Client, ClientAction, ClientConfig, UserIdentity};
//! use socp_core::crypto::fixtures;
//! use socp_core::time::{Instant, Now};
//!
//! let now = Now::new(Instant::ZERO, 1_700_000_000_000);
//! let me = UserIdentity::new("6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", fixtures::rsa_identity(4));
//! let cfg = ClientConfig::new(vec!["ws://127.0.0.1:8765/".into()]);
//! let mut client = Client::new(cfg, me, [9; 32], now);
//! // The client asks to connect at once:
//! while let Some(action) = client.poll_action() {
//!     if let ClientAction::Connect { url, .. } = action { /* dial url */ }
//! }
//! // The WebSocket is up: USER_HELLO goes out.
//! client.handle_connected(now);
//! let _id = client.send_direct(now, "0d6c...", "hello");
//! // After every input, drain everything:
//! while let Some(frame) = client.poll_transmit() { /* send frame as a text message */ }
//! while let Some(action) = client.poll_action() { /* connect, close, write a file */ }
//! while let Some(event) = client.poll_event() { /* show it */ }
//! // Then sleep until `poll_timeout()` (or the next input) and call `handle_timeout`.
//! let _wake_at = client.poll_timeout();
//! ```
//!
//! Contract (as [`Server`](crate::server::Server)): mutate (any `handle_*` or
//! command), then drain all three queues, then re-arm the timer from
//! [`Client::poll_timeout`]. Calling `handle_timeout` early is harmless. The
//! same seed and the same inputs give the same outputs, byte for byte.
//!
//! # What lives where
//! - `identity`: [`UserIdentity`] and its keystore form;
//! - `keys`: key learning, pinning and [`ClientEvent::KeyChanged`];
//! - `direct`: DMs (§1.7 MSG_DIRECT / USER_DELIVER), statuses, multi-part reassembly;
//! - `public`: the public channel (per-member fan-out, §2 row 11), its version, key shares;
//! - `files`: FILE_START / FILE_CHUNK / FILE_END both ways, and `filename`'s sanitizer;
//! - `reconnect`: backoff; `chunking`: splitting text on UTF-8 boundaries.
//!
//! # Connection and queueing
//! On [`Client::handle_connected`] the client sends USER_HELLO, or, with an
//! account ([`AuthMode`]), registers or logs in first (`login` module). Messages
//! and files sent while disconnected, or to a user whose key is not known yet,
//! wait in an outbox; they are encrypted, signed and stamped with a fresh `ts`
//! only when they go out (so they pass the server's freshness window however
//! long the wait). A closed link is redialled after exponential backoff with
//! jitter ([`RECONNECT_INITIAL`] doubling to [`RECONNECT_MAX`]), trying the
//! next configured server after a failed dial, and USER_HELLO is sent again on
//! every new link.
//!
//! A socp server acknowledges each piece it passed on (`ACK`); messages whose
//! pieces were not all acknowledged when the link died are sent again after
//! the next login, under the same `msg_id` (the `acks` module).

mod acks;
mod chunking;
mod config;
mod direct;
mod filename;
mod files;
mod identity;
mod io;
mod keys;
mod login;
mod public;
mod reconnect;
mod secure;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use rand_core::Rng;
use zeroize::Zeroizing;

pub use chunking::{PIECE_BYTES, split_utf8};
pub use config::{ClientConfig, DEFAULT_MAX_FILE_SIZE, RECONNECT_INITIAL, RECONNECT_MAX};
pub use filename::{
    MAX_FILE_NAME_BYTES, MAX_NAME_SUFFIX, download_names, is_bare_name, numbered_name,
    sanitize_file_name,
};
pub use files::sha256_hex;
pub use identity::{IdentityError, UserIdentity};
pub use io::{
    ClientAction, ClientEvent, FileFailure, FileId, FileTarget, KeySource, MessageId,
    MessageStatus, SendFailure,
};
pub use keys::fingerprint;
pub use login::{AuthMode, FetchStep, KeystoreFetcher, derive_auth_key};

use crate::crypto::rsa::RsaPublic;
use crate::crypto::{CoreRng, rng_from_seed, sha256};
use crate::time::{Instant, Now};
use crate::wire::messages::{CtrlClose, ErrorMsg, ListRequest, PubkeyRequest, UserHello};
use crate::wire::{Envelope, ErrorCode, Message};
use keys::{KeyBook, Learned};
use reconnect::Backoff;

/// WebSocket close code for a normal close.
pub const CLOSE_NORMAL: u16 = 1000;

/// Most entries of the replay filter for received messages.
const SEEN_CAPACITY: usize = 8192;

/// The state of the one link.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LinkState {
    /// No server configured, nothing to do.
    Idle,
    /// A [`ClientAction::Connect`] is out for server `index`.
    Connecting { index: usize },
    /// Connected to server `index`; `heard` once it sent us a frame.
    Up {
        index: usize,
        phase: SessionPhase,
        heard: bool,
    },
    /// Waiting to redial server `index`.
    Waiting { index: usize, until: Instant },
    /// Closed by the app; no reconnect.
    Stopped,
}

/// Where the session on an open link stands: with an account
/// ([`AuthMode::Login`] or [`AuthMode::Register`]) the login exchange runs
/// first (`LoggingIn`), and the outbox flows only once it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionPhase {
    /// USER_REGISTER or AUTH_HELLO sent; waiting for AUTH_OK.
    LoggingIn,
    /// USER_HELLO sent; messages flow.
    Ready,
}

/// A file we send, shared by its per-member copies.
#[derive(Debug)]
struct OutFile {
    name: String,
    bytes: Bytes,
    sha256_hex: String,
    public: bool,
}

/// Something waiting to go to one recipient.
#[derive(Debug)]
enum Outgoing {
    Direct {
        msg_id: MessageId,
        to: String,
        text: String,
    },
    Public {
        msg_id: MessageId,
        to: String,
        text: Arc<str>,
    },
    File {
        file_id: FileId,
        to: String,
        file: Arc<OutFile>,
    },
}

impl Outgoing {
    fn recipient(&self) -> &str {
        match self {
            Self::Direct { to, .. } | Self::Public { to, .. } | Self::File { to, .. } => to,
        }
    }
}

/// Something for the public channel, waiting for the roster to fan out.
#[derive(Debug)]
enum PublicItem {
    Text { msg_id: MessageId, text: Arc<str> },
    File { file_id: FileId, file: Arc<OutFile> },
}

/// A bounded set of digests of what we already received.
#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<[u8; 32]>,
    set: BTreeSet<[u8; 32]>,
}

impl Seen {
    fn contains(&self, key: &[u8; 32]) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: [u8; 32]) {
        if self.set.insert(key) {
            self.order.push_back(key);
            if self.order.len() > SEEN_CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// A SOCP v1.3 client. See the [module documentation](self).
pub struct Client {
    cfg: ClientConfig,
    identity: UserIdentity,
    /// How each new link identifies us.
    auth: AuthMode,
    key_wire: String,
    rng: CoreRng,
    now: Now,
    link: LinkState,
    backoff: Backoff,
    keys: KeyBook,
    online: BTreeSet<String>,
    /// Whether the server has sent the roster since our hello.
    roster_ready: bool,
    roster_deadline: Option<Instant>,
    outbox: VecDeque<Outgoing>,
    public_queue: VecDeque<PublicItem>,
    /// Users whose key we asked for on this link, and when we give up.
    key_requests: BTreeMap<String, Instant>,
    partials: BTreeMap<direct::PartialKey, direct::Partial>,
    seen: Seen,
    incoming: BTreeMap<(String, String), files::Incoming>,
    public_version: u64,
    channel_key: Option<Zeroizing<[u8; 32]>>,
    /// Sent messages waiting for the server's ACK (`acks` module), by
    /// `msg_ref` of their first piece.
    unacked: BTreeMap<String, acks::Unacked>,
    /// The secure profile on the current connection.
    link_security: secure::LinkSecurity,
    /// Inside `handle_frame` for a frame opened from the channel.
    unsealing: bool,
    /// Our session identity (Ed25519 key bound to our RSA key), made once.
    secure_me: Option<crate::session::LocalIdentity>,
    /// Derives the Ed25519 key of `secure_me`, without drawing from `rng`.
    secure_seed: [u8; 32],
    ack_seq: u64,
    /// The last fully acknowledged messages: (key, msg_id, to).
    recently_acked: VecDeque<(String, MessageId, String)>,
    /// Whether this server has acknowledged anything (then we resend).
    server_acks: bool,
    transmits: VecDeque<Bytes>,
    actions: VecDeque<ClientAction>,
    events: VecDeque<ClientEvent>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("user_id", &self.identity.user_id)
            .field("link", &self.link)
            .field("online", &self.online.len())
            .field("outbox", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `identity` with a 32-byte random `seed`. If `cfg.servers`
    /// is not empty it asks at once to connect to the first one
    /// ([`ClientAction::Connect`]).
    #[must_use]
    pub fn new(cfg: ClientConfig, identity: UserIdentity, seed: [u8; 32], now: Now) -> Self {
        Self::with_auth(cfg, identity, AuthMode::Hello, seed, now)
    }

    /// As [`Client::new`], identifying on each link as `auth` says (register
    /// or log in to an account: see [`AuthMode`]).
    #[must_use]
    pub fn with_auth(
        cfg: ClientConfig,
        identity: UserIdentity,
        auth: AuthMode,
        seed: [u8; 32],
        now: Now,
    ) -> Self {
        let key_wire = identity.rsa.public().to_wire();
        let mut client = Self {
            backoff: Backoff::new(cfg.reconnect_initial, cfg.reconnect_max),
            cfg,
            identity,
            auth,
            key_wire,
            rng: rng_from_seed(seed),
            now,
            link: LinkState::Idle,
            keys: KeyBook::default(),
            online: BTreeSet::new(),
            roster_ready: false,
            roster_deadline: None,
            outbox: VecDeque::new(),
            public_queue: VecDeque::new(),
            key_requests: BTreeMap::new(),
            partials: BTreeMap::new(),
            seen: Seen::default(),
            incoming: BTreeMap::new(),
            public_version: 0,
            channel_key: None,
            unacked: BTreeMap::new(),
            link_security: secure::LinkSecurity::Off,
            unsealing: false,
            secure_me: None,
            secure_seed: seed,
            ack_seq: 0,
            recently_acked: VecDeque::new(),
            server_acks: false,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        client.dial(0);
        client
    }

    // ----- getters -------------------------------------------------------------

    /// Our user id.
    #[must_use]
    pub fn user_id(&self) -> &str {
        &self.identity.user_id
    }

    /// Our public key in wire encoding.
    #[must_use]
    pub fn pubkey(&self) -> &str {
        &self.key_wire
    }

    /// Whether the link to the server is up and USER_HELLO was sent.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        matches!(
            self.link,
            LinkState::Up {
                phase: SessionPhase::Ready,
                ..
            }
        )
    }

    /// The users the server told us are online (USER_ADVERTISE minus
    /// USER_REMOVE), sorted, without ourselves. Empty while disconnected.
    #[must_use]
    pub fn online_users(&self) -> Vec<String> {
        self.online.iter().cloned().collect()
    }

    /// The fingerprint of the key pinned for `user_id`, if any.
    #[must_use]
    pub fn pinned_fingerprint(&self, user_id: &str) -> Option<String> {
        self.keys.get(user_id).map(|pin| fingerprint(&pin.key))
    }

    /// The public channel's version as last announced by our server.
    #[must_use]
    pub fn public_version(&self) -> u64 {
        self.public_version
    }

    /// SHA-256 (hex) of the public-channel key we hold, if any.
    #[must_use]
    pub fn channel_key_fingerprint(&self) -> Option<String> {
        self.channel_key.as_ref().map(|k| hex(&sha256(&k[..])))
    }

    /// Messages and files waiting to go out (offline, or waiting for a key or
    /// for the roster).
    #[must_use]
    pub fn pending_outgoing(&self) -> usize {
        self.outbox.len() + self.public_queue.len()
    }

    // ----- link inputs ---------------------------------------------------------

    /// The connection asked for by [`ClientAction::Connect`] is up: the
    /// session starts (USER_HELLO) and queued messages go out.
    pub fn handle_connected(&mut self, now: Now) {
        self.now = now;
        if let LinkState::Connecting { index } = self.link {
            let phase = match self.auth {
                AuthMode::Hello => SessionPhase::Ready,
                AuthMode::Register(_) | AuthMode::Login => SessionPhase::LoggingIn,
            };
            self.link = LinkState::Up {
                index,
                phase,
                heard: false,
            };
            self.start_session(now);
        }
    }

    /// The connection closed, or the dial failed. Unless the app closed it,
    /// the client redials after a backoff (the next server if the dial failed
    /// or the server never answered).
    pub fn handle_closed(&mut self, now: Now) {
        self.now = now;
        let (index, heard) = match self.link {
            LinkState::Connecting { index } => (index, false),
            LinkState::Up { index, heard, .. } => (index, heard),
            LinkState::Idle | LinkState::Waiting { .. } | LinkState::Stopped => return,
        };
        let count = self.cfg.servers.len().max(1);
        let next = if heard { index } else { (index + 1) % count };
        let delay = self.backoff.next_delay(&mut self.rng);
        self.link = LinkState::Waiting {
            index: next,
            until: now.mono + delay,
        };
        // Frames not yet handed to the dead link are gone with it.
        self.transmits.clear();
        self.link_security = secure::LinkSecurity::Off;
        self.online.clear();
        self.roster_ready = false;
        self.roster_deadline = None;
        self.key_requests.clear();
        self.events
            .push_back(ClientEvent::Disconnected { retry_in: delay });
    }

    /// Timers: redial, roster grace, key waits, reassembly and file timeouts.
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        if let LinkState::Waiting { index, until } = self.link
            && now.mono >= until
        {
            self.dial(index);
        }
        if self.roster_deadline.is_some_and(|t| now.mono >= t) {
            self.roster_deadline = None;
            self.roster_ready = true;
            self.flush(now);
        }
        let expired: Vec<String> = self
            .key_requests
            .iter()
            .filter(|(_, t)| now.mono >= **t)
            .map(|(u, _)| u.clone())
            .collect();
        for user in expired {
            self.key_requests.remove(&user);
            self.fail_for(&user, &SendFailure::NoKey);
        }
        self.expire_partials(now);
        self.expire_files(now);
    }

    /// A text frame arrived from the server.
    pub fn handle_frame(&mut self, now: Now, frame: &[u8]) {
        self.now = now;
        let env = match Envelope::decode(frame, &self.cfg.limits) {
            Ok(env) => env,
            Err(e) => return self.dropped(format!("undecodable frame: {e}")),
        };
        let msg = match env.message() {
            Ok(msg) => msg,
            Err(e) => return self.dropped(format!("bad payload: {e}")),
        };
        match &msg {
            Message::SecureHandshake(hs) => return self.on_secure_handshake(now, hs),
            Message::Secure(record) if !self.unsealing => {
                if let Some(inner) = self.open_secure(record) {
                    self.unsealing = true;
                    self.handle_frame(now, &inner);
                    self.unsealing = false;
                }
                return;
            }
            Message::Secure(_) => return self.dropped("a nested sealed frame".into()),
            _ if self.link_sealed() && !self.unsealing => {
                return self.dropped("a plain frame on a secure link".into());
            }
            _ => {}
        }
        if !matches!(msg, Message::Error(_))
            && let LinkState::Up { heard, phase, .. } = &mut self.link
        {
            if !*heard {
                *heard = true;
            }
            // While logging in, only AUTH_OK resets the backoff (a login
            // refused again and again must not redial at the fastest pace).
            if *phase == SessionPhase::Ready || matches!(msg, Message::AuthOk(_)) {
                self.backoff.reset();
            }
        }
        if self.logging_in() {
            if !self.on_login_frame(now, &msg) {
                self.dropped(format!("{} before login completed", msg.msg_type()));
            }
            return;
        }
        match msg {
            Message::UserAdvertise(ad) => {
                let key = ad.pubkey().map(str::to_owned);
                self.on_advertise(now, &ad.user_id, key.as_deref());
            }
            Message::UserRemove(rm) => {
                if self.online.remove(&rm.user_id) {
                    self.events.push_back(ClientEvent::UserOffline {
                        user_id: rm.user_id,
                    });
                }
            }
            Message::PubkeyResponse(r) => {
                match RsaPublic::from_wire(&r.pubkey) {
                    Ok((key, _)) => self.learn_key(&r.user_id, key, KeySource::Directory),
                    Err(e) => self.dropped(format!("PUBKEY_RESPONSE key refused: {e}")),
                }
                self.flush(now);
            }
            Message::ListResponse(list) => self.on_list(now, list.online_users),
            Message::CommandResponse(resp) => match resp.list_users() {
                Some(users) => self.on_list(now, users),
                None => self.dropped("COMMAND_RESPONSE without a user list".into()),
            },
            Message::UserDeliver(d) => self.on_user_deliver(now, &env, d),
            Message::MsgPublicChannel(m) => self.on_public_message(now, &env, m),
            Message::PublicChannelUpdated(up) => self.on_channel_updated(now, up.version),
            Message::PublicChannelKeyShare(share) => self.on_key_share(now, &env, &share),
            Message::FileStart(start) => self.on_file_start(now, &env, start),
            Message::FileChunk(chunk) => self.on_file_chunk(now, &env, chunk),
            Message::FileEnd(end) => self.on_file_end(now, &env, &end.file_id),
            Message::Error(err) => self.on_error(err),
            Message::Ack(ack) => self.on_ack(&ack),
            Message::Heartbeat(_) | Message::CtrlClose(_) => {}
            Message::Unknown { msg_type } => {
                // `/list` answers in other dialects (CMD_LIST_RESULT, USER_LIST_RESPONSE).
                let users = ["online_users", "users"]
                    .iter()
                    .find_map(|k| env.payload.get(*k)?.as_array())
                    .map(|list| {
                        list.iter()
                            .filter_map(|u| u.as_str().map(str::to_owned))
                            .collect::<Vec<_>>()
                    });
                match users {
                    Some(users) => self.on_list(now, users),
                    None => self.dropped(format!("unknown type {msg_type}")),
                }
            }
            other => self.dropped(format!("unexpected {} from the server", other.msg_type())),
        }
    }

    // ----- app commands --------------------------------------------------------

    /// Sends `text` to `to` as a DM (legacy profile: RSA-OAEP pieces of ≤ 446
    /// bytes, each signed). Queued while offline or until `to`'s key is known;
    /// [`ClientEvent::Sent`] or [`ClientEvent::SendFailed`] tells the outcome.
    pub fn send_direct(&mut self, now: Now, to: &str, text: &str) -> MessageId {
        self.now = now;
        let msg_id = self.random_msg_id();
        if self.queue_full() {
            self.events.push_back(ClientEvent::SendFailed {
                msg_id,
                to: to.to_owned(),
                reason: SendFailure::QueueFull,
            });
            return msg_id;
        }
        self.outbox.push_back(Outgoing::Direct {
            msg_id,
            to: to.to_owned(),
            text: text.to_owned(),
        });
        self.flush(now);
        msg_id
    }

    /// Sends `text` to the public channel: one encrypted copy per online
    /// member (see the `public` module). Waits for the roster after a
    /// (re)connect.
    pub fn send_public(&mut self, now: Now, text: &str) -> MessageId {
        self.now = now;
        let msg_id = self.random_msg_id();
        if self.queue_full() {
            self.events.push_back(ClientEvent::SendFailed {
                msg_id,
                to: "public".to_owned(),
                reason: SendFailure::QueueFull,
            });
            return msg_id;
        }
        self.public_queue.push_back(PublicItem::Text {
            msg_id,
            text: Arc::from(text),
        });
        self.flush(now);
        msg_id
    }

    /// Sends a file: FILE_START (with its size and SHA-256), one FILE_CHUNK per
    /// 446 bytes, each RSA-OAEP encrypted to the recipient (to every member,
    /// for [`FileTarget::Public`]), then FILE_END.
    pub fn send_file(
        &mut self,
        now: Now,
        target: FileTarget,
        name: &str,
        bytes: impl Into<Bytes>,
    ) -> FileId {
        self.now = now;
        let mut raw = [0u8; 16];
        self.rng.fill_bytes(&mut raw);
        let file_id = FileId(uuid_from(raw));
        let bytes = bytes.into();
        let file = Arc::new(OutFile {
            name: name.to_owned(),
            sha256_hex: hex(&sha256(&bytes)),
            bytes,
            public: target == FileTarget::Public,
        });
        let full = self.queue_full();
        match target {
            FileTarget::User(to) if full => self.events.push_back(ClientEvent::FileSendFailed {
                file_id: file_id.clone(),
                to,
                reason: SendFailure::QueueFull,
            }),
            FileTarget::Public if full => self.events.push_back(ClientEvent::FileSendFailed {
                file_id: file_id.clone(),
                to: "public".to_owned(),
                reason: SendFailure::QueueFull,
            }),
            FileTarget::User(to) => self.outbox.push_back(Outgoing::File {
                file_id: file_id.clone(),
                to,
                file,
            }),
            FileTarget::Public => self.public_queue.push_back(PublicItem::File {
                file_id: file_id.clone(),
                file,
            }),
        }
        self.flush(now);
        file_id
    }

    /// Asks the server for the online users (`LIST_REQUEST`); the answer comes
    /// as [`ClientEvent::List`]. Does nothing while disconnected.
    pub fn request_list(&mut self, now: Now) {
        self.now = now;
        if self.is_connected() {
            let env = Envelope::new(self.user_id(), "server", now.unix_ms, ListRequest {});
            self.send_env(&env);
        }
    }

    /// Asks the server for `user_id`'s key (`PUBKEY_REQUEST`). Does nothing
    /// while disconnected.
    pub fn request_pubkey(&mut self, now: Now, user_id: &str) {
        self.now = now;
        if self.is_connected() {
            let req = PubkeyRequest {
                user_id: user_id.to_owned(),
            };
            let env = Envelope::new(self.user_id(), "server", now.unix_ms, req);
            self.send_env(&env);
        }
    }

    /// Accepts the key last offered for `user_id` after a
    /// [`ClientEvent::KeyChanged`], replacing the pinned one. A UI calls this
    /// only after the user compared the new fingerprint out of band. Returns
    /// whether there was an offer.
    pub fn accept_key(&mut self, now: Now, user_id: &str) -> bool {
        self.now = now;
        match self.keys.accept(user_id) {
            Some(fp) => {
                self.events.push_back(ClientEvent::KeyLearned {
                    user_id: user_id.to_owned(),
                    fingerprint: fp,
                    source: KeySource::Accepted,
                });
                self.flush(now);
                true
            }
            None => false,
        }
    }

    /// Closes the connection for good (CTRL_CLOSE, then [`ClientAction::Close`]);
    /// no reconnect follows.
    pub fn close(&mut self, now: Now) {
        self.now = now;
        if self.is_connected() {
            let env = Envelope::new(self.user_id(), "server", now.unix_ms, CtrlClose {});
            self.send_env(&env);
        }
        if matches!(
            self.link,
            LinkState::Up { .. } | LinkState::Connecting { .. }
        ) {
            self.actions.push_back(ClientAction::Close {
                code: CLOSE_NORMAL,
                reason: "client closed".to_owned(),
            });
        }
        self.link = LinkState::Stopped;
    }

    // ----- outputs -------------------------------------------------------------

    /// The next frame to send to the server (one WebSocket text message).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// The next action for the adapter.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<ClientAction> {
        self.actions.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`Client::handle_timeout`] next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.transmits.is_empty() || !self.actions.is_empty() {
            return Some(self.now.mono);
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let LinkState::Waiting { until, .. } = self.link {
            consider(until);
        }
        if let Some(t) = self.roster_deadline {
            consider(t);
        }
        self.key_requests.values().for_each(|t| consider(*t));
        self.partials.values().for_each(|p| consider(p.deadline));
        self.incoming.values().for_each(|f| consider(f.deadline));
        next
    }

    // ----- session -------------------------------------------------------------

    fn dial(&mut self, index: usize) {
        match self.cfg.servers.get(index) {
            Some(url) => {
                let url = url.clone();
                self.link = LinkState::Connecting { index };
                self.events.push_back(ClientEvent::Connecting {
                    index,
                    url: url.clone(),
                });
                self.actions.push_back(ClientAction::Connect { index, url });
            }
            None => self.link = LinkState::Idle,
        }
    }

    /// The first frames on a new link: USER_HELLO, or (with an account) the
    /// login exchange (`login` module), after which the session is ready.
    fn start_session(&mut self, now: Now) {
        if self.logging_in() {
            self.start_login(now);
            return;
        }
        let hello = UserHello {
            client: Some(self.cfg.client_name.clone()),
            pubkey: self.key_wire.clone(),
            enc_pubkey: Some(self.key_wire.clone()),
            caps: Vec::new(),
        };
        let env = Envelope::new(self.user_id(), "server", now.unix_ms, hello);
        self.send_env(&env);
        self.session_ready(now);
    }

    /// The session is identified (USER_HELLO sent, or AUTH_OK received):
    /// wait for the roster, and let the outbox flow.
    fn session_ready(&mut self, now: Now) {
        let LinkState::Up { index, .. } = self.link else {
            return;
        };
        self.roster_ready = false;
        self.roster_deadline = Some(now.mono + self.cfg.roster_grace);
        self.start_secure(now);
        self.events.push_back(ClientEvent::Connected { index });
        self.requeue_unacked();
        self.flush(now);
    }

    fn on_advertise(&mut self, now: Now, user: &str, key: Option<&str>) {
        if user == self.user_id() {
            return;
        }
        if self.online.insert(user.to_owned()) {
            self.events.push_back(ClientEvent::UserOnline {
                user_id: user.to_owned(),
            });
        }
        if let Some(text) = key {
            match RsaPublic::from_wire(text) {
                Ok((key, _)) => self.learn_key(user, key, KeySource::Directory),
                Err(e) => self.dropped(format!("advertised key of {user} refused: {e}")),
            }
        }
        self.flush(now);
    }

    fn on_list(&mut self, now: Now, mut users: Vec<String>) {
        users.sort();
        users.dedup();
        self.events.push_back(ClientEvent::List(users));
        if !self.roster_ready {
            self.roster_ready = true;
            self.roster_deadline = None;
            self.flush(now);
        }
    }

    fn on_error(&mut self, err: ErrorMsg) {
        let detail = err.detail.unwrap_or_default();
        if err.code == ErrorCode::UnknownType && self.secure_refused() {
            // Our offer of the secure profile, refused: the link stays plain.
            return;
        }
        if err.code == ErrorCode::UserNotFound {
            match (&err.msg_ref, &err.user_id) {
                (Some(msg_ref), _) => self.failed_ref(msg_ref),
                (None, Some(user)) => self.unacked_not_found(user),
                (None, None) => {}
            }
        }
        if err.code == ErrorCode::UserNotFound {
            // The server names the user in `detail`; fail what waits on them.
            let waiting: Vec<String> = self
                .key_requests
                .keys()
                .filter(|u| detail.contains(u.as_str()))
                .cloned()
                .collect();
            for user in waiting {
                self.key_requests.remove(&user);
                self.fail_for(&user, &SendFailure::UserNotFound);
            }
        }
        self.events.push_back(ClientEvent::Error {
            code: err.code,
            detail,
        });
    }

    /// Pins or refuses `key` for `user` (see the `keys` module) and reports it.
    fn learn_key(&mut self, user: &str, key: RsaPublic, source: KeySource) {
        if user == self.user_id() {
            return;
        }
        let fp = fingerprint(&key);
        match self.keys.learn(user, key, source) {
            Learned::New => {
                self.events.push_back(ClientEvent::KeyLearned {
                    user_id: user.to_owned(),
                    fingerprint: fp,
                    source,
                });
            }
            Learned::Replaced { old } => {
                self.events.push_back(ClientEvent::KeyChanged {
                    user_id: user.to_owned(),
                    old_fingerprint: old,
                    new_fingerprint: fp.clone(),
                });
                self.events.push_back(ClientEvent::KeyLearned {
                    user_id: user.to_owned(),
                    fingerprint: fp,
                    source,
                });
            }
            Learned::Changed { old, new } => {
                self.events.push_back(ClientEvent::KeyChanged {
                    user_id: user.to_owned(),
                    old_fingerprint: old,
                    new_fingerprint: new,
                });
            }
            Learned::Same | Learned::Ignored => {}
        }
        if self.keys.get(user).is_some() {
            self.key_requests.remove(user);
        }
    }

    // ----- outbox --------------------------------------------------------------

    fn queue_full(&self) -> bool {
        self.outbox.len() + self.public_queue.len() >= self.cfg.max_outbox
    }

    /// Sends whatever can go now: public items fan out once the roster is in,
    /// then every item whose recipient's key is known; for the others the key
    /// is requested.
    fn flush(&mut self, now: Now) {
        if !self.is_connected() {
            return;
        }
        if self.roster_ready {
            let members: Vec<String> = self.online.iter().cloned().collect();
            while let Some(item) = self.public_queue.pop_front() {
                for to in &members {
                    self.outbox.push_back(match &item {
                        PublicItem::Text { msg_id, text } => Outgoing::Public {
                            msg_id: *msg_id,
                            to: to.clone(),
                            text: Arc::clone(text),
                        },
                        PublicItem::File { file_id, file } => Outgoing::File {
                            file_id: file_id.clone(),
                            to: to.clone(),
                            file: Arc::clone(file),
                        },
                    });
                }
            }
        }
        let mut waiting = VecDeque::new();
        while let Some(item) = self.outbox.pop_front() {
            let key = self.keys.get(item.recipient()).map(|pin| pin.key.clone());
            match key {
                Some(key) => self.send_item(now, item, &key),
                None => {
                    let to = item.recipient().to_owned();
                    self.request_key(now, &to);
                    waiting.push_back(item);
                }
            }
        }
        self.outbox = waiting;
    }

    fn send_item(&mut self, now: Now, item: Outgoing, key: &RsaPublic) {
        match item {
            Outgoing::Direct { msg_id, to, text } => {
                let result = self.direct_frames(now, msg_id, &to, &text, key);
                if let Ok(frames) = &result {
                    self.track_sent(msg_id, &to, Arc::from(text.as_str()), false, frames.len());
                }
                self.finish_send(msg_id, to, result);
            }
            Outgoing::Public { msg_id, to, text } => {
                let result = self.public_frames(now, msg_id, &to, &text, key);
                if let Ok(frames) = &result {
                    self.track_sent(msg_id, &to, Arc::clone(&text), true, frames.len());
                }
                self.finish_send(msg_id, to, result);
            }
            Outgoing::File { file_id, to, file } => {
                match self.file_frames(now, &file_id, &to, &file, key) {
                    Ok(frames) => {
                        let chunks = u64::try_from(frames.len().saturating_sub(2)).unwrap_or(0);
                        for frame in frames {
                            self.queue(frame);
                        }
                        self.events.push_back(ClientEvent::FileSent {
                            file_id,
                            to,
                            chunks,
                        });
                    }
                    Err(reason) => self.events.push_back(ClientEvent::FileSendFailed {
                        file_id,
                        to,
                        reason,
                    }),
                }
            }
        }
    }

    fn finish_send(
        &mut self,
        msg_id: MessageId,
        to: String,
        result: Result<Vec<Bytes>, SendFailure>,
    ) {
        match result {
            Ok(frames) => {
                let parts = frames.len();
                for frame in frames {
                    self.queue(frame);
                }
                self.events
                    .push_back(ClientEvent::Sent { msg_id, to, parts });
            }
            Err(reason) => self
                .events
                .push_back(ClientEvent::SendFailed { msg_id, to, reason }),
        }
    }

    fn request_key(&mut self, now: Now, user: &str) {
        if self.key_requests.contains_key(user) {
            return;
        }
        self.key_requests
            .insert(user.to_owned(), now.mono + self.cfg.key_timeout);
        self.request_pubkey(now, user);
    }

    /// Fails every queued item for `user`.
    fn fail_for(&mut self, user: &str, reason: &SendFailure) {
        let (failed, kept): (VecDeque<Outgoing>, VecDeque<Outgoing>) =
            std::mem::take(&mut self.outbox)
                .into_iter()
                .partition(|item| item.recipient() == user);
        self.outbox = kept;
        for item in failed {
            self.events.push_back(match item {
                Outgoing::Direct { msg_id, to, .. } | Outgoing::Public { msg_id, to, .. } => {
                    ClientEvent::SendFailed {
                        msg_id,
                        to,
                        reason: reason.clone(),
                    }
                }
                Outgoing::File { file_id, to, .. } => ClientEvent::FileSendFailed {
                    file_id,
                    to,
                    reason: reason.clone(),
                },
            });
        }
    }

    // ----- helpers -------------------------------------------------------------

    fn send_env(&mut self, env: &Envelope) {
        self.queue(Bytes::from(env.encode()));
    }

    fn dropped(&mut self, reason: String) {
        self.events.push_back(ClientEvent::Dropped { reason });
    }

    fn random_msg_id(&mut self) -> MessageId {
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        MessageId(id)
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Parses lowercase or uppercase hex of exactly `N` bytes.
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = text.get(i * 2..i * 2 + 2)?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// A UUIDv4 from 16 random bytes.
pub(crate) fn uuid_from(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests;
