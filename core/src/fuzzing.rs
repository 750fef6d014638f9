//! Fuzz harnesses: functions that feed arbitrary bytes through the public API.
//!
//! The cargo-fuzz targets in `fuzz/` are one line each and call these, so the
//! harnesses live here, are always compiled, and normal builds and tests
//! type-check and run them (style.md, "Fuzz layout").
//!
//! A harness never panics on any input; a broken property is returned as a
//! [`Finding`] and it is the caller (a fuzz target, a test) that turns it into a
//! crash. A panic inside socp-core itself is of course also a finding.
//!
//! | harness | drives | input format |
//! | --- | --- | --- |
//! | [`envelope_decode`] | `Envelope::decode` and re-encoding | raw bytes |
//! | `server_frames` ([`server_frames_with`]) | a [`Server`] | [`ServerScript`] |
//! | `client_frames` ([`client_frames_with`]) | a [`Client`](crate::client::Client) | [`ClientScript`] |
//! | [`handshake`] | a `session` handshake under attack | [`HandshakeScript`] |
//! | [`ratchet`], [`channel`] | an established session pair | [`SessionScript`] |
//! | [`upgrade`] | the HTTP upgrade judge of `driver::upgrade` | raw bytes |
//!
//! The `*Script` builders let tests write inputs (seed corpora, regressions)
//! without knowing the byte formats; `fuzz/corpus/` is written that way by
//! `core/tests/fuzzing_smoke.rs`.
//!
//! # Why `server_frames_with` takes an identity
//!
//! A [`Server`] needs an RSA-4096 [`RsaIdentity`], and generating one takes
//! seconds: far too slow for every fuzz run, and a fixed key cannot be built
//! without the test keys of `crypto::fixtures`, which only exist with the
//! `fixtures` feature. So the harness proper, [`server_frames_with`], borrows an
//! identity and is always compiled (normal builds type-check all of it), and the
//! one-argument `server_frames` that fuzz targets call is only a wrapper that
//! lends it fixture key 1 (`cfg(feature = "fixtures")`, which `fuzz/` enables).
//!
//! The client harness has the same shape: [`client_frames_with`] borrows the
//! client's RSA key and `client_frames` lends it fixture key 4.
//!
//! # Cost
//!
//! Every `ERROR` a server sends to an unidentified or user link is RSA-signed
//! (about 7 ms), and each run starts a fresh server with an empty signature
//! cache, so a run that provokes an error costs at least one signature. The
//! setup byte can therefore also choose `errors_per_second = 0` (a legal
//! configuration: errors are counted but never answered), which keeps most runs
//! free of private-key operations. A client run pays two RSA private-key
//! operations per templated delivery and one per message it sends, so both are
//! capped per input ([`CLIENT_EXPENSIVE_OPS`]).

use bytes::Bytes;
use core::time::Duration;

use crate::crypto::rsa::RsaIdentity;
use crate::crypto::{CoreRng, rng_from_seed};
use crate::server::{
    Action, BootstrapEntry, Connection, LinkId, Server, ServerConfig, StoredState,
};
use crate::time::{Instant, Now};
use crate::wire::messages::{MsgDirect, ServerHelloLink, UserHello};
use crate::wire::{Envelope, Limits, Message, b64};

/// Unix time (ms) at the start of every fuzz run.
pub const FUZZ_EPOCH_MS: u64 = 1_760_000_000_000;
/// The host name the fuzzed server and its templated peers use.
pub const FUZZ_HOST: &str = "fuzz.invalid";
/// The port the introducer of the joining setups listens on.
pub const FUZZ_INTRODUCER_PORT: u16 = 29_999;

/// A property a harness found broken. Each one is a bug in socp-core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Finding {
    /// The server sent a frame that its own decoder refuses.
    #[error("the server sent a frame it cannot decode itself: {error}")]
    UndecodableOutput {
        /// The decode error.
        error: String,
    },
    /// An envelope we encoded does not decode.
    #[error("an encoded envelope does not decode: {error}")]
    ReencodeFails {
        /// The decode error.
        error: String,
    },
    /// Encoding is not a fixed point: encode, decode, encode gave other bytes.
    #[error("canonical encoding is not a fixed point")]
    NotCanonical,
    /// Re-encoding changed the bytes a transport signature covers, so a
    /// relayed frame would no longer verify.
    #[error("re-encoding changed the signed bytes of the payload")]
    SignedBytesChanged,
    /// A typed message did not survive `to_map` and back.
    #[error("a typed {msg_type} message changed in a round trip")]
    MessageChanged {
        /// The message type.
        msg_type: String,
    },
    /// The client sent a frame that does not decode.
    #[error("the client sent a frame it cannot decode itself: {error}")]
    ClientUndecodableOutput {
        /// The decode error.
        error: String,
    },
    /// The client sent a frame under another sender than its own user id.
    #[error("the client sent a frame from {from}, not from its own id")]
    ClientWrongSender {
        /// The frame's `from`.
        from: String,
    },
    /// The client asked to write a file under a name that is not a bare
    /// file name (a path, `..`, a separator).
    #[error("the client asked to write a file named {name:?}")]
    UnsafeFileName {
        /// The name it asked for.
        name: String,
    },
    /// The client asked to dial a server index that is not configured.
    #[error("the client asked to dial server {index} of {count}")]
    BadDialIndex {
        /// The index it asked for.
        index: usize,
        /// How many servers are configured.
        count: usize,
    },
    /// A handshake completed although one of its messages was altered or
    /// made up: the attacker cannot know the keys.
    #[error("a handshake completed with an altered or forged {message}")]
    HandshakeForged {
        /// Which message was not genuine (`M1`, `M2`, `M3`).
        message: &'static str,
    },
    /// A genuine, unaltered handshake failed.
    #[error("a genuine handshake failed: {error}")]
    HandshakeFailed {
        /// The session error.
        error: String,
    },
    /// Both sides completed a handshake but disagree (session id, peer,
    /// keys).
    #[error("the two sides of a handshake disagree: {what}")]
    SessionMismatch {
        /// What differs.
        what: &'static str,
    },
    /// Sealing or encrypting a genuine message failed.
    #[error("sealing a message failed: {error}")]
    SealFailed {
        /// The session error.
        error: String,
    },
    /// A genuine message, delivered for the first time, was refused.
    #[error("genuine message {index} was refused: {error}")]
    GenuineRefused {
        /// Its index in the script's send order.
        index: usize,
        /// The session error.
        error: String,
    },
    /// A genuine message opened to another plaintext than the one sent.
    #[error("message {index} opened to another plaintext")]
    WrongPlaintext {
        /// Its index in the script's send order.
        index: usize,
    },
    /// An altered, forged, misdirected or replayed message opened.
    #[error("a message that is not a fresh genuine one opened ({what})")]
    ForgeryAccepted {
        /// What it was.
        what: &'static str,
    },
    /// A refused message changed the receiving session's state.
    #[error("a refused message changed the session ({what})")]
    RefusalChangedState {
        /// What it was.
        what: &'static str,
    },
    /// A refusal of the HTTP upgrade judge is not a well-formed HTTP/1.1
    /// response, or the judge contradicts itself.
    #[error("upgrade judge: {what}")]
    BadHttpResponse {
        /// What is wrong.
        what: String,
    },
}

/// Decodes `data` as an envelope and, when it decodes, checks that encoding is
/// canonical and stable: the encoding decodes again, encoding that gives the
/// same bytes, the signed payload bytes are unchanged, and the typed message
/// (when the payload fits its type) survives `to_map` and back.
///
/// # Errors
/// A [`Finding`] if any of those properties fails.
pub fn envelope_decode(data: &[u8]) -> Result<(), Finding> {
    let limits = Limits::default();
    let Ok(env) = Envelope::decode(data, &limits) else {
        return Ok(());
    };
    let first = env.encode();
    let again = Envelope::decode(&first, &limits).map_err(|e| Finding::ReencodeFails {
        error: e.to_string(),
    })?;
    if again.encode() != first {
        return Err(Finding::NotCanonical);
    }
    if again.signing_bytes() != env.signing_bytes() {
        return Err(Finding::SignedBytesChanged);
    }
    if let Ok(msg) = env.message() {
        let rebuilt = Envelope::new(env.from.clone(), env.to.clone(), env.ts, msg.clone());
        let decoded =
            Envelope::decode(&rebuilt.encode(), &limits).map_err(|e| Finding::ReencodeFails {
                error: e.to_string(),
            })?;
        if decoded.message().ok() != Some(msg) {
            return Err(Finding::MessageChanged {
                msg_type: env.msg_type.as_str().to_owned(),
            });
        }
    }
    Ok(())
}

/// [`server_frames_with`] with RSA fixture key 1 as the server's identity.
///
/// # Errors
/// As [`server_frames_with`].
#[cfg(feature = "fixtures")]
pub fn server_frames(data: &[u8]) -> Result<(), Finding> {
    server_frames_with(crate::crypto::fixtures::rsa_identity_ref(1), data)
}

/// Builds a [`Server`] with `identity` and feeds it the inputs `data` encodes
/// (see [`ServerScript`] for the format), draining every output after every
/// input, as an adapter would. Every frame the server sends must decode.
///
/// # Errors
/// [`Finding::UndecodableOutput`] if the server sends a frame it cannot decode.
pub fn server_frames_with(identity: &RsaIdentity, data: &[u8]) -> Result<(), Finding> {
    let mut input = Cursor { data };
    let setup = input.byte().unwrap_or(0);
    let mut run = Run::new(identity, setup);
    run.drain()?;
    while let Some(op) = input.byte() {
        run.step(op, &mut input);
        run.drain()?;
    }
    Ok(())
}

/// Operation codes of the [`ServerScript`] format (the op byte modulo [`OP_COUNT`]).
mod op {
    pub const CONNECT: u8 = 0;
    pub const FRAME: u8 = 1;
    pub const BINARY: u8 = 2;
    pub const CLOSE: u8 = 3;
    pub const ADVANCE: u8 = 4;
    pub const USER_HELLO: u8 = 5;
    pub const SERVER_HELLO: u8 = 6;
    pub const SIGNED: u8 = 7;
    pub const DIAL_UP: u8 = 8;
    pub const DIAL_FAIL: u8 = 9;
    pub const DIRECT: u8 = 10;
}
/// How many operations there are.
const OP_COUNT: u8 = 11;

/// Builds inputs for [`server_frames_with`]: tests use it to write seed corpora
/// and regression inputs without knowing the byte format.
///
/// The format: one setup byte, then operations until the data ends. The setup
/// byte's bits 0–1 choose the configuration (0 a standalone server, 1 a server
/// joining an introducer whose key it learns on first use, 2 one joining an
/// introducer pinned to the server's own key, 3 standalone with small decoding
/// limits) and bit 2 sets `errors_per_second = 0`. Each operation is an op byte
/// (taken modulo the number of operations) and its arguments; `k` picks a link
/// (or a pending dial) modulo how many there are, and operations on nothing are
/// skipped; lengths are little-endian `u16` and cut short at the end of the data.
///
/// | op | arguments | input |
/// | --- | --- | --- |
/// | 0 connect | | `handle_connected(Inbound)`, a new link |
/// | 1 frame | k, len, bytes | `handle_frame` |
/// | 2 binary | k | `handle_binary` |
/// | 3 close | k | `handle_closed` |
/// | 4 advance | ms (u16) | time moves on, then `handle_timeout` |
/// | 5 user hello | k, j | a valid `USER_HELLO` from user `j` |
/// | 6 server hello | k, j | an unsigned `SERVER_HELLO_LINK` from server `j` |
/// | 7 signed | k, len, bytes | the bytes decoded as an envelope, signed with the server's own key (which templated servers and the pinned introducer share), sent as a frame; skipped if they do not decode |
/// | 8 dial up | k | a pending dial connects |
/// | 9 dial fail | k | a pending dial fails |
/// | 10 direct | k, j, len (u8), bytes | `MSG_DIRECT` from the user of link `k` to user `j` |
///
/// Users and servers `j` have fixed UUIDv4 ids ([`ServerScript::user_id`],
/// [`ServerScript::server_id`]) and share the server's public key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerScript {
    bytes: Vec<u8>,
}

impl ServerScript {
    /// A standalone server (the introducer of its network).
    #[must_use]
    pub fn standalone() -> Self {
        Self::with_setup(0)
    }

    /// A script with an explicit setup byte (see the type's documentation).
    #[must_use]
    pub fn with_setup(setup: u8) -> Self {
        Self { bytes: vec![setup] }
    }

    /// The id of templated user `j`.
    #[must_use]
    pub fn user_id(j: u8) -> String {
        format!("00000000-0000-4000-8000-0000000000{j:02x}")
    }

    /// The id of templated server `j`.
    #[must_use]
    pub fn server_id(j: u8) -> String {
        format!("00000000-0000-4000-9000-0000000000{j:02x}")
    }

    /// Opens an inbound link.
    #[must_use]
    pub fn connect(mut self) -> Self {
        self.bytes.push(op::CONNECT);
        self
    }

    /// A text frame on link `k`.
    #[must_use]
    pub fn frame(mut self, k: u8, frame: &[u8]) -> Self {
        self.bytes.extend([op::FRAME, k]);
        self.push_slice(frame);
        self
    }

    /// A binary frame on link `k`.
    #[must_use]
    pub fn binary(mut self, k: u8) -> Self {
        self.bytes.extend([op::BINARY, k]);
        self
    }

    /// Link `k` closes.
    #[must_use]
    pub fn close(mut self, k: u8) -> Self {
        self.bytes.extend([op::CLOSE, k]);
        self
    }

    /// Time moves on by `ms`, then the timers run.
    #[must_use]
    pub fn advance(mut self, ms: u16) -> Self {
        self.bytes.push(op::ADVANCE);
        self.bytes.extend(ms.to_le_bytes());
        self
    }

    /// User `j` says hello on link `k`.
    #[must_use]
    pub fn user_hello(mut self, k: u8, j: u8) -> Self {
        self.bytes.extend([op::USER_HELLO, k, j]);
        self
    }

    /// Server `j` opens link `k` with an unsigned `SERVER_HELLO_LINK`.
    #[must_use]
    pub fn server_hello(mut self, k: u8, j: u8) -> Self {
        self.bytes.extend([op::SERVER_HELLO, k, j]);
        self
    }

    /// `frame`, decoded and signed with the server's own key, on link `k`.
    #[must_use]
    pub fn signed(mut self, k: u8, frame: &[u8]) -> Self {
        self.bytes.extend([op::SIGNED, k]);
        self.push_slice(frame);
        self
    }

    /// Pending dial `k` connects.
    #[must_use]
    pub fn dial_up(mut self, k: u8) -> Self {
        self.bytes.extend([op::DIAL_UP, k]);
        self
    }

    /// Pending dial `k` fails.
    #[must_use]
    pub fn dial_fail(mut self, k: u8) -> Self {
        self.bytes.extend([op::DIAL_FAIL, k]);
        self
    }

    /// The user of link `k` sends a direct message to user `j`.
    #[must_use]
    pub fn direct(mut self, k: u8, j: u8, ciphertext: &[u8]) -> Self {
        let len = u8::try_from(ciphertext.len()).unwrap_or(u8::MAX);
        self.bytes.extend([op::DIRECT, k, j, len]);
        self.bytes
            .extend(ciphertext.iter().take(usize::from(len)).copied());
        self
    }

    /// The encoded input.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn push_slice(&mut self, data: &[u8]) {
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        self.bytes.extend(len.to_le_bytes());
        self.bytes
            .extend(data.iter().take(usize::from(len)).copied());
    }
}

/// Reads the input without indexing.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(first)
    }

    fn u16(&mut self) -> u16 {
        let lo = self.byte().unwrap_or(0);
        let hi = self.byte().unwrap_or(0);
        u16::from_le_bytes([lo, hi])
    }

    fn slice(&mut self, len: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at_checked(len).unwrap_or((self.data, &[]));
        self.data = rest;
        head
    }
}

/// One fuzz run: the server, the clock, and what the adapter knows.
struct Run<'a> {
    identity: &'a RsaIdentity,
    server: Server,
    key_wire: String,
    limits: Limits,
    now: Now,
    rng: CoreRng,
    /// Every link id the server has used, open or not (stale ids are inputs too).
    links: Vec<LinkId>,
    /// The user each link said hello as, for templated direct messages.
    users: Vec<(LinkId, String)>,
    /// Dials the server asked for that have neither connected nor failed.
    dials: Vec<LinkId>,
}

/// Bound on the close-feedback rounds of one drain (each close is reported back
/// once, so a handful is always enough; the bound only guards against a bug).
const MAX_DRAIN_ROUNDS: usize = 64;

impl<'a> Run<'a> {
    fn new(identity: &'a RsaIdentity, setup: u8) -> Self {
        let now = Now::new(Instant::ZERO, FUZZ_EPOCH_MS);
        let key_wire = identity.public().to_wire();
        let mut cfg = ServerConfig {
            host: FUZZ_HOST.to_owned(),
            port: 30_000,
            ..ServerConfig::default()
        };
        match setup & 0b11 {
            1 => cfg.bootstrap.push(BootstrapEntry {
                host: FUZZ_HOST.to_owned(),
                port: FUZZ_INTRODUCER_PORT,
                pubkey: None,
            }),
            2 => cfg.bootstrap.push(BootstrapEntry {
                host: FUZZ_HOST.to_owned(),
                port: FUZZ_INTRODUCER_PORT,
                pubkey: Some(key_wire.clone()),
            }),
            3 => {
                cfg.limits = Limits {
                    max_frame_bytes: 2048,
                    max_json_depth: 4,
                };
            }
            _ => {}
        }
        if setup & 0b100 != 0 {
            cfg.errors_per_second = 0;
        }
        let limits = cfg.limits;
        let server = Server::new(
            cfg,
            identity.clone(),
            [0x5a; 32],
            StoredState::default(),
            now,
        );
        Self {
            identity,
            server,
            key_wire,
            limits,
            now,
            rng: rng_from_seed([0xf0; 32]),
            links: Vec::new(),
            users: Vec::new(),
            dials: Vec::new(),
        }
    }

    fn link(&self, k: u8) -> Option<LinkId> {
        pick(&self.links, k)
    }

    fn step(&mut self, op: u8, input: &mut Cursor<'_>) {
        let now = self.now;
        match op % OP_COUNT {
            op::CONNECT => {
                let link = self.server.handle_connected(
                    now,
                    Connection::Inbound {
                        remote: "192.0.2.1:4000".into(),
                    },
                );
                self.links.push(link);
            }
            op::FRAME => {
                let k = input.byte().unwrap_or(0);
                let len = input.u16();
                let frame = input.slice(usize::from(len));
                if let Some(link) = self.link(k) {
                    self.server.handle_frame(now, link, frame);
                }
            }
            op::BINARY => {
                if let Some(link) = self.link(input.byte().unwrap_or(0)) {
                    self.server.handle_binary(now, link);
                }
            }
            op::CLOSE => {
                if let Some(link) = self.link(input.byte().unwrap_or(0)) {
                    self.dials.retain(|d| *d != link);
                    self.server.handle_closed(now, link);
                }
            }
            op::ADVANCE => {
                let ms = input.u16();
                self.now = now.advanced(Duration::from_millis(u64::from(ms)));
                self.server.handle_timeout(self.now);
            }
            op::USER_HELLO => {
                let k = input.byte().unwrap_or(0);
                let j = input.byte().unwrap_or(0);
                let user = ServerScript::user_id(j);
                let hello = UserHello {
                    client: Some("socp-fuzz".into()),
                    pubkey: self.key_wire.clone(),
                    enc_pubkey: None,
                    caps: Vec::new(),
                };
                let frame =
                    Envelope::new(user.clone(), "server", now.unix_ms, Message::from(hello));
                if let Some(link) = self.link(k) {
                    self.users.retain(|(l, _)| *l != link);
                    self.users.push((link, user));
                    self.server.handle_frame(now, link, &frame.encode());
                }
            }
            op::SERVER_HELLO => {
                let k = input.byte().unwrap_or(0);
                let j = input.byte().unwrap_or(0);
                let hello = ServerHelloLink {
                    host: FUZZ_HOST.to_owned(),
                    port: 30_001 + u16::from(j),
                    pubkey: self.key_wire.clone(),
                    caps: Vec::new(),
                };
                let to = self.server.id().to_owned();
                let frame = Envelope::new(
                    ServerScript::server_id(j),
                    to,
                    now.unix_ms,
                    Message::from(hello),
                );
                if let Some(link) = self.link(k) {
                    self.server.handle_frame(now, link, &frame.encode());
                }
            }
            op::SIGNED => {
                let k = input.byte().unwrap_or(0);
                let len = input.u16();
                let frame = input.slice(usize::from(len));
                let Some(link) = self.link(k) else {
                    return;
                };
                let Ok(mut env) = Envelope::decode(frame, &self.limits) else {
                    return;
                };
                if let Ok(sig) = self.identity.sign_pss(&mut self.rng, &env.signing_bytes()) {
                    env.sig = Some(b64::encode(&sig));
                }
                self.server.handle_frame(now, link, &env.encode());
            }
            op::DIAL_UP => {
                if let Some(link) = take(&mut self.dials, input.byte().unwrap_or(0)) {
                    self.links.push(link);
                    self.server.handle_connected(now, Connection::Dialed(link));
                }
            }
            op::DIAL_FAIL => {
                if let Some(link) = take(&mut self.dials, input.byte().unwrap_or(0)) {
                    self.server.handle_closed(now, link);
                }
            }
            _ => {
                // op::DIRECT
                let k = input.byte().unwrap_or(0);
                let j = input.byte().unwrap_or(0);
                let len = input.byte().unwrap_or(0);
                let ciphertext = b64::encode(input.slice(usize::from(len)));
                let Some(link) = self.link(k) else {
                    return;
                };
                let from = self
                    .users
                    .iter()
                    .find(|(l, _)| *l == link)
                    .map_or_else(|| ServerScript::user_id(0), |(_, u)| u.clone());
                let dm = MsgDirect {
                    ciphertext,
                    sender_pub: None,
                    content_sig: Some(String::new()),
                };
                let frame = Envelope::new(
                    from,
                    ServerScript::user_id(j),
                    now.unix_ms,
                    Message::from(dm),
                );
                self.server.handle_frame(now, link, &frame.encode());
            }
        }
    }

    /// Drains every output, as an adapter does after each input: frames must
    /// decode, dials are remembered, and closes are reported back.
    fn drain(&mut self) -> Result<(), Finding> {
        for _ in 0..MAX_DRAIN_ROUNDS {
            let mut closed = Vec::new();
            while let Some(tx) = self.server.poll_transmit() {
                check_output(&tx.frame)?;
            }
            while let Some(action) = self.server.poll_action() {
                match action {
                    Action::Dial { link, .. } => self.dials.push(link),
                    Action::Close { link, .. } => closed.push(link),
                    _ => {}
                }
            }
            while self.server.poll_event().is_some() {}
            if closed.is_empty() {
                break;
            }
            for link in closed {
                self.dials.retain(|d| *d != link);
                self.server.handle_closed(self.now, link);
            }
        }
        Ok(())
    }
}

/// Outputs are checked against the default limits, the ones peers decode with
/// (a server configured with smaller limits may still send larger frames).
fn check_output(frame: &Bytes) -> Result<(), Finding> {
    Envelope::decode(frame, &Limits::default())
        .map(drop)
        .map_err(|e| Finding::UndecodableOutput {
            error: e.to_string(),
        })
}

fn pick(items: &[LinkId], k: u8) -> Option<LinkId> {
    let len = items.len();
    if len == 0 {
        return None;
    }
    items.get(usize::from(k) % len).copied()
}

fn take(items: &mut Vec<LinkId>, k: u8) -> Option<LinkId> {
    let len = items.len();
    if len == 0 {
        return None;
    }
    let i = usize::from(k) % len;
    (i < len).then(|| items.remove(i))
}

// ----- the client ------------------------------------------------------------

/// The user id of the fuzzed client.
pub const FUZZ_CLIENT_ID: &str = "00000000-0000-4000-a000-00000000c11e";
/// The servers the fuzzed client is configured with (it dials the first).
pub const FUZZ_CLIENT_SERVERS: [&str; 2] = ["ws://fuzz.invalid:30000/", "ws://fuzz.invalid:30001/"];
/// Most templated deliveries (each costs two RSA private-key operations) and
/// app commands (each may cost one) a client run performs; later ones are
/// skipped, so no input can make one run take seconds.
pub const CLIENT_EXPENSIVE_OPS: usize = 4;

/// [`client_frames_with`] with RSA fixture key 4 as the client's key.
///
/// # Errors
/// As [`client_frames_with`].
#[cfg(feature = "fixtures")]
pub fn client_frames(data: &[u8]) -> Result<(), Finding> {
    client_frames_with(crate::crypto::fixtures::rsa_identity_ref(4), data)
}

/// Builds a [`Client`](crate::client::Client) for user [`FUZZ_CLIENT_ID`] with
/// key `identity`, connects it, and feeds it the inputs `data` encodes (see
/// [`ClientScript`]), draining every output after every input as an adapter
/// would. Every frame the client sends must decode and come from its own id,
/// every file it asks to write must have a bare name, and every dial must
/// name a configured server.
///
/// # Errors
/// [`Finding::ClientUndecodableOutput`], [`Finding::ClientWrongSender`],
/// [`Finding::UnsafeFileName`] or [`Finding::BadDialIndex`].
pub fn client_frames_with(identity: &RsaIdentity, data: &[u8]) -> Result<(), Finding> {
    let mut input = Cursor { data };
    let setup = input.byte().unwrap_or(0);
    let mut run = ClientRun::new(identity, setup, input_seed(b"client", data));
    run.drain()?;
    if run.dialing {
        run.dialing = false;
        run.client.handle_connected(run.now);
        run.drain()?;
    }
    while let Some(op) = input.byte() {
        run.step(op, &mut input);
        run.drain()?;
    }
    Ok(())
}

/// Operation codes of the [`ClientScript`] format (the op byte modulo [`CLIENT_OP_COUNT`]).
mod client_op {
    pub const FRAME: u8 = 0;
    pub const CONNECTED: u8 = 1;
    pub const CLOSED: u8 = 2;
    pub const ADVANCE: u8 = 3;
    pub const ADVERTISE: u8 = 4;
    pub const DELIVER: u8 = 5;
    pub const SEND_DIRECT: u8 = 6;
    pub const SEND_PUBLIC: u8 = 7;
    pub const SEND_FILE: u8 = 8;
    pub const REQUEST: u8 = 9;
    pub const ACCEPT_KEY: u8 = 10;
    pub const CLOSE: u8 = 11;
    pub const SECURE_ANSWER: u8 = 12;
    pub const SEALED: u8 = 13;
}
/// How many client operations there are.
const CLIENT_OP_COUNT: u8 = 14;

/// Builds inputs for [`client_frames_with`].
///
/// The format: one setup byte (bit 0: the client logs in to an account
/// instead of sending `USER_HELLO`; bit 1: small decoding limits; bit 2: the
/// client offers the secure profile on its link, `secure_link`), then
/// operations until the data ends, each an op byte (modulo the number of
/// operations) and its arguments. The client is connected before the first
/// operation. Lengths are little-endian `u16` (`u8` where noted) and cut
/// short at the end of the data; `j` names templated user
/// [`ServerScript::user_id`]`(j)`, whose key is the client's own.
///
/// | op | arguments | input |
/// | --- | --- | --- |
/// | 0 frame | len, bytes | `handle_frame` |
/// | 1 connected | | `handle_connected`, if a dial is pending |
/// | 2 closed | | `handle_closed` (the link dropped or the dial failed) |
/// | 3 advance | ms (u16) | time moves on, then `handle_timeout` |
/// | 4 advertise | j | a `USER_ADVERTISE` of user `j` with its key |
/// | 5 deliver | j, len (u8), bytes | a genuine `USER_DELIVER` from user `j`: the bytes RSA-OAEP encrypted to the client, signed by `j` |
/// | 6 send direct | j, len (u8), text | `send_direct` to user `j` |
/// | 7 send public | len (u8), text | `send_public` |
/// | 8 send file | j, len (u8), bytes | `send_file` to user `j >> 1`, or to the public channel if `j` is odd |
/// | 9 request | j | `request_list` if `j` is odd, else `request_pubkey` of user `j` |
/// | 10 accept key | j | `accept_key` of user `j` |
/// | 11 close | | `close` (the app quits) |
/// | 12 secure answer | | the server answers the client's last `SECURE_HANDSHAKE` M1 with a genuine M2 (its M3 then sets up the link's channel) |
/// | 13 sealed | len, bytes | the bytes sealed in the link's channel as a `SECURE` frame (a plain frame while there is none) |
///
/// With the secure profile on, the harness plays the server's side of the
/// link's handshake (op 12) and opens every `SECURE` frame the client sends:
/// the frame inside must decode and come from the client, and once the
/// channel is up every frame must be sealed.
///
/// Deliveries and the three sends are limited to [`CLIENT_EXPENSIVE_OPS`]
/// per run (later ones are skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientScript {
    bytes: Vec<u8>,
}

impl ClientScript {
    /// A client that says `USER_HELLO`, with the default limits.
    #[must_use]
    pub fn hello() -> Self {
        Self::with_setup(0)
    }

    /// A script with an explicit setup byte (see the type's documentation).
    #[must_use]
    pub fn with_setup(setup: u8) -> Self {
        Self { bytes: vec![setup] }
    }

    /// A frame from the server.
    #[must_use]
    pub fn frame(mut self, frame: &[u8]) -> Self {
        self.bytes.push(client_op::FRAME);
        push_u16_slice(&mut self.bytes, frame);
        self
    }

    /// The pending dial connects.
    #[must_use]
    pub fn connected(mut self) -> Self {
        self.bytes.push(client_op::CONNECTED);
        self
    }

    /// The link closes (or the pending dial fails).
    #[must_use]
    pub fn closed(mut self) -> Self {
        self.bytes.push(client_op::CLOSED);
        self
    }

    /// Time moves on by `ms`, then the timers run.
    #[must_use]
    pub fn advance(mut self, ms: u16) -> Self {
        self.bytes.push(client_op::ADVANCE);
        self.bytes.extend(ms.to_le_bytes());
        self
    }

    /// The server advertises user `j` and its key.
    #[must_use]
    pub fn advertise(mut self, j: u8) -> Self {
        self.bytes.extend([client_op::ADVERTISE, j]);
        self
    }

    /// User `j` sends the client a genuine direct message.
    #[must_use]
    pub fn deliver(mut self, j: u8, text: &[u8]) -> Self {
        self.bytes.extend([client_op::DELIVER, j]);
        push_u8_slice(&mut self.bytes, text);
        self
    }

    /// The app sends `text` to user `j`.
    #[must_use]
    pub fn send_direct(mut self, j: u8, text: &[u8]) -> Self {
        self.bytes.extend([client_op::SEND_DIRECT, j]);
        push_u8_slice(&mut self.bytes, text);
        self
    }

    /// The app posts `text` to the public channel.
    #[must_use]
    pub fn send_public(mut self, text: &[u8]) -> Self {
        self.bytes.push(client_op::SEND_PUBLIC);
        push_u8_slice(&mut self.bytes, text);
        self
    }

    /// The app sends a file (to user `j >> 1`, or public if `j` is odd).
    #[must_use]
    pub fn send_file(mut self, j: u8, bytes: &[u8]) -> Self {
        self.bytes.extend([client_op::SEND_FILE, j]);
        push_u8_slice(&mut self.bytes, bytes);
        self
    }

    /// The app asks for the user list (`j` odd) or user `j`'s key.
    #[must_use]
    pub fn request(mut self, j: u8) -> Self {
        self.bytes.extend([client_op::REQUEST, j]);
        self
    }

    /// The app accepts user `j`'s changed key.
    #[must_use]
    pub fn accept_key(mut self, j: u8) -> Self {
        self.bytes.extend([client_op::ACCEPT_KEY, j]);
        self
    }

    /// The app closes the client.
    #[must_use]
    pub fn close(mut self) -> Self {
        self.bytes.push(client_op::CLOSE);
        self
    }

    /// The server answers the client's secure-profile M1.
    #[must_use]
    pub fn secure_answer(mut self) -> Self {
        self.bytes.push(client_op::SECURE_ANSWER);
        self
    }

    /// A frame from the server, sealed in the link's channel.
    #[must_use]
    pub fn sealed(mut self, frame: &[u8]) -> Self {
        self.bytes.push(client_op::SEALED);
        push_u16_slice(&mut self.bytes, frame);
        self
    }

    /// The encoded input.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

fn push_u16_slice(out: &mut Vec<u8>, data: &[u8]) {
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.extend(len.to_le_bytes());
    out.extend(data.iter().take(usize::from(len)).copied());
}

fn push_u8_slice(out: &mut Vec<u8>, data: &[u8]) {
    let len = u8::try_from(data.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend(data.iter().take(usize::from(len)).copied());
}

/// One client fuzz run.
struct ClientRun<'a> {
    identity: &'a RsaIdentity,
    client: crate::client::Client,
    key_wire: String,
    now: Now,
    rng: CoreRng,
    /// A `Connect` action is out and was neither connected nor failed.
    dialing: bool,
    /// Deliveries and sends performed so far.
    expensive: usize,
    /// The server's side of the link's secure profile.
    secure: LinkPeer,
}

/// What the harness, as the client's server, knows of the link's secure
/// profile.
#[derive(Default)]
enum LinkPeer {
    /// No handshake, or it failed.
    #[default]
    Off,
    /// The client sent M1.
    Offered(Vec<u8>),
    /// M2 sent; waiting for the client's M3.
    Answered(Box<crate::session::ResponderAwaitingFinish>),
    /// The channel is up: every frame is sealed.
    On(Box<crate::session::Channel>),
}

impl<'a> ClientRun<'a> {
    fn new(identity: &'a RsaIdentity, setup: u8, seed: [u8; 32]) -> Self {
        use crate::client::{AuthMode, Client, ClientConfig, UserIdentity};
        let now = Now::new(Instant::ZERO, FUZZ_EPOCH_MS);
        let mut cfg = ClientConfig::new(
            FUZZ_CLIENT_SERVERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        );
        if setup & 0b10 != 0 {
            cfg.limits = Limits {
                max_frame_bytes: 2048,
                max_json_depth: 4,
            };
        }
        cfg.secure_link = setup & 0b100 != 0;
        let auth = if setup & 0b1 != 0 {
            AuthMode::Login
        } else {
            AuthMode::Hello
        };
        let user = UserIdentity::new(FUZZ_CLIENT_ID, identity.clone());
        let client = Client::with_auth(cfg, user, auth, [0xc1; 32], now);
        Self {
            identity,
            client,
            key_wire: identity.public().to_wire(),
            now,
            // The server's handshake randomness, from the input (see `input_seed`).
            rng: rng_from_seed(seed),
            dialing: false,
            expensive: 0,
            secure: LinkPeer::Off,
        }
    }

    /// Counts an expensive operation; false once the budget is spent.
    fn afford(&mut self) -> bool {
        self.expensive += 1;
        self.expensive <= CLIENT_EXPENSIVE_OPS
    }

    fn step(&mut self, op: u8, input: &mut Cursor<'_>) {
        let now = self.now;
        match op % CLIENT_OP_COUNT {
            client_op::FRAME => {
                let len = input.u16();
                let frame = input.slice(usize::from(len));
                self.client.handle_frame(now, frame);
            }
            client_op::CONNECTED => {
                if self.dialing {
                    self.dialing = false;
                    self.client.handle_connected(now);
                }
            }
            client_op::CLOSED => {
                self.dialing = false;
                self.secure = LinkPeer::Off;
                self.client.handle_closed(now);
            }
            client_op::ADVANCE => {
                let ms = input.u16();
                self.now = now.advanced(Duration::from_millis(u64::from(ms)));
                self.client.handle_timeout(self.now);
            }
            client_op::ADVERTISE => {
                let j = input.byte().unwrap_or(0);
                let ad = crate::wire::messages::UserAdvertise {
                    user_id: ServerScript::user_id(j),
                    server_id: ServerScript::server_id(0),
                    meta: None,
                    pubkey: Some(self.key_wire.clone()),
                };
                let env = Envelope::new(
                    ServerScript::server_id(0),
                    "*",
                    now.unix_ms,
                    Message::from(ad),
                );
                self.client.handle_frame(now, &env.encode());
            }
            client_op::DELIVER => {
                let j = input.byte().unwrap_or(0);
                let len = input.byte().unwrap_or(0);
                let text = input.slice(usize::from(len));
                if self.afford()
                    && let Some(frame) = self.delivery(j, text)
                {
                    self.client.handle_frame(now, &frame);
                }
            }
            client_op::SEND_DIRECT => {
                let j = input.byte().unwrap_or(0);
                let len = input.byte().unwrap_or(0);
                let text = String::from_utf8_lossy(input.slice(usize::from(len))).into_owned();
                if self.afford() {
                    let _id = self
                        .client
                        .send_direct(now, &ServerScript::user_id(j), &text);
                }
            }
            client_op::SEND_PUBLIC => {
                let len = input.byte().unwrap_or(0);
                let text = String::from_utf8_lossy(input.slice(usize::from(len))).into_owned();
                if self.afford() {
                    let _id = self.client.send_public(now, &text);
                }
            }
            client_op::SEND_FILE => {
                let j = input.byte().unwrap_or(0);
                let len = input.byte().unwrap_or(0);
                let bytes = input.slice(usize::from(len)).to_vec();
                let target = if j & 1 == 0 {
                    crate::client::FileTarget::User(ServerScript::user_id(j >> 1))
                } else {
                    crate::client::FileTarget::Public
                };
                if self.afford() {
                    let _id = self.client.send_file(now, target, "fuzz.bin", bytes);
                }
            }
            client_op::REQUEST => {
                let j = input.byte().unwrap_or(0);
                if j & 1 == 1 {
                    self.client.request_list(now);
                } else {
                    self.client.request_pubkey(now, &ServerScript::user_id(j));
                }
            }
            client_op::ACCEPT_KEY => {
                let j = input.byte().unwrap_or(0);
                let _offered = self.client.accept_key(now, &ServerScript::user_id(j));
            }
            client_op::CLOSE => self.client.close(now),
            client_op::SECURE_ANSWER => {
                if let Some(frame) = self.secure_answer() {
                    self.client.handle_frame(now, &frame);
                }
            }
            _ => {
                // client_op::SEALED
                let len = input.u16();
                let frame = input.slice(usize::from(len));
                let from = ServerScript::server_id(0);
                let sealed = match &mut self.secure {
                    LinkPeer::On(channel) => crate::session::link::seal_frame(
                        channel,
                        &from,
                        FUZZ_CLIENT_ID,
                        now.unix_ms,
                        frame,
                    )
                    .ok(),
                    _ => None,
                };
                match sealed {
                    Some(sealed) => self.client.handle_frame(now, &sealed),
                    None => self.client.handle_frame(now, frame),
                }
            }
        }
    }

    /// The server's genuine M2 to the client's last M1, if there is one.
    fn secure_answer(&mut self) -> Option<Vec<u8>> {
        use crate::crypto::ed25519::Ed25519Identity;
        use crate::session::{LocalIdentity, Responder};
        let LinkPeer::Offered(m1) = core::mem::take(&mut self.secure) else {
            return None;
        };
        let server = LocalIdentity::new(FUZZ_HOST, Ed25519Identity::from_seed([0x5e; 32])).ok()?;
        let pending = Responder::read_hello(&server, &m1).ok()?;
        let (waiting, m2) = pending.accept(&server, &mut self.rng).ok()?;
        self.secure = LinkPeer::Answered(Box::new(waiting));
        let hs = crate::wire::messages::SecureHandshake {
            m: b64::encode(&m2),
        };
        let env = Envelope::new(
            ServerScript::server_id(0),
            FUZZ_CLIENT_ID,
            self.now.unix_ms,
            Message::SecureHandshake(hs),
        );
        Some(env.encode())
    }

    /// Checks one frame the client sent and follows the link's handshake.
    fn check_sent(&mut self, frame: &[u8]) -> Result<(), Finding> {
        let env = Envelope::decode(frame, &Limits::default()).map_err(|e| {
            Finding::ClientUndecodableOutput {
                error: e.to_string(),
            }
        })?;
        if env.from != FUZZ_CLIENT_ID {
            return Err(Finding::ClientWrongSender { from: env.from });
        }
        let msg = env.message().ok();
        if let LinkPeer::On(channel) = &mut self.secure {
            let Some(Message::Secure(record)) = msg else {
                return Err(Finding::ClientUndecodableOutput {
                    error: format!("a plain {} on a secure link", env.msg_type.as_str()),
                });
            };
            let inner = crate::session::link::open_frame(channel, &record).map_err(|e| {
                Finding::ClientUndecodableOutput {
                    error: format!("a sealed frame does not open: {e}"),
                }
            })?;
            let env = Envelope::decode(&inner, &Limits::default()).map_err(|e| {
                Finding::ClientUndecodableOutput {
                    error: format!("inside a sealed frame: {e}"),
                }
            })?;
            if env.from != FUZZ_CLIENT_ID {
                return Err(Finding::ClientWrongSender { from: env.from });
            }
            return Ok(());
        }
        let Some(Message::SecureHandshake(hs)) = msg else {
            return Ok(());
        };
        let Ok(m) = b64::decode(&hs.m) else {
            return Err(Finding::ClientUndecodableOutput {
                error: "a SECURE_HANDSHAKE that is not base64url".into(),
            });
        };
        self.secure = match core::mem::take(&mut self.secure) {
            // The client's M3 to our M2.
            LinkPeer::Answered(waiting) if m.get(1) == Some(&3) => match waiting.finish(&m) {
                Ok(established) => LinkPeer::On(Box::new(established.into_channel())),
                Err(_) => LinkPeer::Off,
            },
            _ => LinkPeer::Offered(m),
        };
        Ok(())
    }

    /// A genuine `USER_DELIVER` of `text` from user `j` (whose key is ours).
    fn delivery(&mut self, j: u8, text: &[u8]) -> Option<Vec<u8>> {
        use crate::crypto::content_sig::{DmFields, SigLayout, sign_dm};
        let sender = ServerScript::user_id(j);
        let ts = self.now.unix_ms;
        let sealed = self
            .identity
            .public()
            .encrypt_oaep(&mut self.rng, text)
            .ok()?;
        let ciphertext = b64::encode(&sealed);
        let fields = DmFields {
            ciphertext: &ciphertext,
            from: &sender,
            to: FUZZ_CLIENT_ID,
            ts,
        };
        let content_sig = sign_dm(self.identity, &mut self.rng, &fields, SigLayout::A).ok()?;
        let deliver = crate::wire::messages::UserDeliver {
            ciphertext,
            sender,
            sender_pub: self.key_wire.clone(),
            content_sig,
            orig_ts: Some(ts),
        };
        let env = Envelope::new(
            ServerScript::server_id(0),
            FUZZ_CLIENT_ID,
            ts,
            Message::from(deliver),
        );
        Some(env.encode())
    }

    /// Drains every output: frames must decode and come from us, files must
    /// have bare names, dials must name a configured server, and a `Close`
    /// is reported back as the adapter would.
    fn drain(&mut self) -> Result<(), Finding> {
        use crate::client::{ClientAction, is_bare_name};
        for _ in 0..MAX_DRAIN_ROUNDS {
            while let Some(frame) = self.client.poll_transmit() {
                self.check_sent(&frame)?;
            }
            let mut closed = false;
            while let Some(action) = self.client.poll_action() {
                match action {
                    ClientAction::Connect { index, .. } => {
                        if index >= FUZZ_CLIENT_SERVERS.len() {
                            return Err(Finding::BadDialIndex {
                                index,
                                count: FUZZ_CLIENT_SERVERS.len(),
                            });
                        }
                        self.dialing = true;
                    }
                    ClientAction::Close { .. } => closed = true,
                    ClientAction::WriteFile { name, .. } => {
                        if !is_bare_name(&name) {
                            return Err(Finding::UnsafeFileName { name });
                        }
                    }
                }
            }
            while self.client.poll_event().is_some() {}
            if !closed {
                break;
            }
            self.dialing = false;
            self.secure = LinkPeer::Off;
            self.client.handle_closed(self.now);
        }
        Ok(())
    }
}

// ----- mutations of genuine messages ---------------------------------------

/// How a harness alters a genuine message before delivering it (the
/// [`HandshakeScript`] and [`SessionScript`] formats share it).
///
/// Encoded as a kind byte (modulo 5) and its arguments: 0 keep; 1 flip:
/// a count `n` (u8, 1 + n % 8 flips), each a position (u16, modulo the
/// length) and a byte XORed in; 2 truncate to a length (u16, at most the
/// length); 3 replace with bytes (u16 length); 4 append bytes (u8 length).
/// A mutation may leave the bytes as they were (XOR with 0): harnesses
/// compare bytes, not kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// The message as it is.
    Keep,
    /// XOR `byte` into position `pos` (modulo the length), for each pair.
    Flip(Vec<(u16, u8)>),
    /// Cut to this many bytes.
    Truncate(u16),
    /// Other bytes altogether.
    Replace(Vec<u8>),
    /// Extra bytes at the end.
    Append(Vec<u8>),
}

impl Mutation {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Keep => out.push(0),
            Self::Flip(flips) => {
                let count = flips.len().clamp(1, 8);
                out.extend([1, u8::try_from(count - 1).unwrap_or(0)]);
                for i in 0..count {
                    let (pos, byte) = flips.get(i).copied().unwrap_or((0, 0));
                    out.extend(pos.to_le_bytes());
                    out.push(byte);
                }
            }
            Self::Truncate(len) => {
                out.push(2);
                out.extend(len.to_le_bytes());
            }
            Self::Replace(bytes) => {
                out.push(3);
                push_u16_slice(out, bytes);
            }
            Self::Append(bytes) => {
                out.push(4);
                push_u8_slice(out, bytes);
            }
        }
    }

    /// Reads a mutation and applies it to `genuine`.
    fn apply(genuine: &[u8], input: &mut Cursor<'_>) -> Vec<u8> {
        let mut out = genuine.to_vec();
        match input.byte().map(|k| k % 5) {
            None | Some(0) => {}
            Some(1) => {
                let count = 1 + usize::from(input.byte().unwrap_or(0) % 8);
                for _ in 0..count {
                    let pos = usize::from(input.u16());
                    let byte = input.byte().unwrap_or(0);
                    let len = out.len();
                    if len > 0
                        && let Some(b) = out.get_mut(pos % len)
                    {
                        *b ^= byte;
                    }
                }
            }
            Some(2) => out.truncate(usize::from(input.u16())),
            Some(3) => {
                let len = input.u16();
                out = input.slice(usize::from(len)).to_vec();
            }
            _ => {
                let len = input.byte().unwrap_or(0);
                out.extend_from_slice(input.slice(usize::from(len)));
            }
        }
        out
    }
}

// ----- the handshake ---------------------------------------------------------

/// Runs one handshake of [`crate::session`] between two fixed identities
/// (initiator `alice`, responder `bob`, Ed25519 keys from fixed seeds;
/// ephemerals and nonces from a hash of the input) in which an attacker may alter or replace every message (see
/// [`HandshakeScript`]): M1 goes through [`Responder::read_hello`] and
/// `accept`, M2 through [`Initiator::finish`], M3 through
/// [`ResponderAwaitingFinish::finish`]. When a message was refused, the next
/// step still runs on the attacker's bytes alone (a made-up M2 for the
/// initiator, a made-up M3 for the responder).
///
/// Properties: a genuine transcript completes on both sides with the same
/// session id and the right peers, and a channel between them works; a side
/// completes only if every message it read was genuine (unchanged bytes):
/// altered or made-up bytes never complete a handshake.
///
/// [`Responder::read_hello`]: crate::session::Responder::read_hello
/// [`Initiator::finish`]: crate::session::Initiator::finish
/// [`ResponderAwaitingFinish::finish`]: crate::session::ResponderAwaitingFinish::finish
///
/// # Errors
/// [`Finding::HandshakeForged`], [`Finding::HandshakeFailed`],
/// [`Finding::SessionMismatch`].
pub fn handshake(data: &[u8]) -> Result<(), Finding> {
    use crate::session::handshake::Expect;
    use crate::session::{Initiator, Responder};

    let mut input = Cursor { data };
    let setup = input.byte().unwrap_or(0);
    let Some((alice, bob)) = session_parties(setup & 0b1 != 0) else {
        return Ok(());
    };
    // Whom alice expects; `mallory` makes even a genuine M2 fail.
    let (expect, genuine_ok) = match (setup >> 1) % 4 {
        0 => (Expect::anyone(), true),
        1 => (Expect::key(bob.public()), true),
        2 => (Expect::id("bob"), true),
        _ => (Expect::id("mallory"), false),
    };
    let mut rng = rng_from_seed(input_seed(b"handshake", data));
    let (initiator, m1) = Initiator::start(&alice, expect, &mut rng);
    let m1x = Mutation::apply(&m1, &mut input);
    let m1_genuine = m1x == m1;

    let accepted = match Responder::read_hello(&bob, &m1x) {
        Ok(pending) => {
            if m1_genuine && *pending.peer() != alice.as_peer() {
                return Err(Finding::SessionMismatch {
                    what: "the responder read another initiator",
                });
            }
            pending.accept(&bob, &mut rng)
        }
        Err(e) => Err(e),
    };
    let (waiting, m2) = match accepted {
        Ok(answer) => answer,
        Err(error) => {
            if m1_genuine {
                return Err(Finding::HandshakeFailed {
                    error: error.to_string(),
                });
            }
            // No M2 exists: alice reads made-up bytes.
            let m2x = Mutation::apply(&[], &mut input);
            if initiator.finish(&alice, &m2x).is_ok() {
                return Err(Finding::HandshakeForged { message: "M2" });
            }
            return Ok(());
        }
    };
    let m2x = Mutation::apply(&m2, &mut input);
    let m2_genuine = m2x == m2;
    match initiator.finish(&alice, &m2x) {
        Ok((alice_session, m3)) => {
            if !(m1_genuine && m2_genuine && genuine_ok) {
                return Err(Finding::HandshakeForged {
                    message: if m2_genuine { "M1" } else { "M2" },
                });
            }
            let m3x = Mutation::apply(&m3, &mut input);
            match waiting.finish(&m3x) {
                Ok(bob_session) if m3x == m3 => {
                    check_sessions(alice_session, bob_session, &alice, &bob)
                }
                Ok(_) => Err(Finding::HandshakeForged { message: "M3" }),
                Err(error) if m3x == m3 => Err(Finding::HandshakeFailed {
                    error: error.to_string(),
                }),
                Err(_) => Ok(()),
            }
        }
        Err(error) => {
            if m1_genuine && m2_genuine && genuine_ok {
                return Err(Finding::HandshakeFailed {
                    error: error.to_string(),
                });
            }
            // No M3 exists: bob reads made-up bytes.
            let m3x = Mutation::apply(&[], &mut input);
            if waiting.finish(&m3x).is_ok() {
                return Err(Finding::HandshakeForged { message: "M3" });
            }
            Ok(())
        }
    }
}

/// The seed of a session harness's randomness (ephemerals, nonces, ratchet
/// keys): a hash of the whole input.
///
/// Not a fixed seed: with one, every run derives the same session keys, and
/// libFuzzer, which records the operands of the harness's own comparisons
/// (`wire == bytes`, `m3x == m3`), learns genuine ciphertexts in one run and
/// replays them in another where they were never sent, as if it knew the
/// keys. It found exactly that in the `ratchet` harness: a forged message
/// that was the sender's genuine message 22 of an earlier run. With the seed
/// hashed from the input, any change to the input changes every key.
fn input_seed(label: &[u8], data: &[u8]) -> [u8; 32] {
    crate::crypto::hash::sha256_concat(&[b"socp fuzz seed ", label, data])
}

/// The two fixed parties of the session harnesses: `alice` (with a made-up
/// binding if `bound`) and `bob`.
fn session_parties(
    bound: bool,
) -> Option<(crate::session::LocalIdentity, crate::session::LocalIdentity)> {
    use crate::crypto::ed25519::Ed25519Identity;
    use crate::session::LocalIdentity;
    let alice_key = Ed25519Identity::from_seed([0xa1; 32]);
    let alice = if bound {
        LocalIdentity::with_binding("alice", alice_key, vec![0xb1; 512]).ok()?
    } else {
        LocalIdentity::new("alice", alice_key).ok()?
    };
    let bob = LocalIdentity::new("bob", Ed25519Identity::from_seed([0xb0; 32])).ok()?;
    Some((alice, bob))
}

/// Both sides of a genuine handshake must agree, and talk.
fn check_sessions(
    a: crate::session::Established,
    b: crate::session::Established,
    alice: &crate::session::LocalIdentity,
    bob: &crate::session::LocalIdentity,
) -> Result<(), Finding> {
    if a.session_id() != b.session_id() {
        return Err(Finding::SessionMismatch { what: "session id" });
    }
    if *a.peer() != bob.as_peer() || *b.peer() != alice.as_peer() {
        return Err(Finding::SessionMismatch { what: "peer" });
    }
    let (mut a, mut b) = (a.into_channel(), b.into_channel());
    let record = a.seal(b"ctx", b"ping").map_err(|e| Finding::SealFailed {
        error: e.to_string(),
    })?;
    match b.open(b"ctx", &record) {
        Ok(plain) if plain.as_slice() == b"ping" => Ok(()),
        _ => Err(Finding::SessionMismatch {
            what: "channel keys",
        }),
    }
}

/// Builds inputs for [`handshake`]: a setup byte (bit 0: alice carries an RSA
/// binding; bits 1–2: whom alice expects: anyone, bob's key, the id `bob`, or
/// the id `mallory`), then one [`Mutation`] for each of M1, M2 and M3 (for a
/// message that does not exist because an earlier one was refused, the
/// mutation of empty bytes: the attacker's made-up message).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeScript {
    bytes: Vec<u8>,
}

impl HandshakeScript {
    /// A script with this setup byte.
    #[must_use]
    pub fn with_setup(setup: u8) -> Self {
        Self { bytes: vec![setup] }
    }

    /// The next message's mutation.
    #[must_use]
    pub fn then(mut self, mutation: &Mutation) -> Self {
        mutation.encode(&mut self.bytes);
        self
    }

    /// The encoded input.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

// ----- channels and the Double Ratchet ---------------------------------------

/// Most messages one session run sends (later sends are skipped): far below
/// the chains' skip bounds, so every genuine message must open.
pub const SESSION_MAX_SENDS: usize = 200;

/// The contexts a session script binds messages to.
const CONTEXTS: [&[u8]; 3] = [b"", b"dm alice bob 1760000000000", b"link s1 s2"];

/// Operation codes of the [`SessionScript`] format.
mod session_op {
    pub const SEND: u8 = 0;
    pub const DELIVER: u8 = 1;
    pub const MUTATED: u8 = 2;
    pub const CONTEXT: u8 = 3;
    pub const REDIRECT: u8 = 4;
}
/// How many session operations there are.
const SESSION_OP_COUNT: u8 = 6;

/// Which side of a session harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The initiator.
    Alice,
    /// The responder.
    Bob,
}

/// Builds inputs for [`ratchet`] and [`channel`]: operations until the data
/// ends, each an op byte (modulo 6) and its arguments. `k` picks a sent
/// message (modulo how many there are; skipped if none); `flags` bit 0 is
/// the side (0 alice, 1 bob) and bits 1–2 the context (modulo 3).
///
/// | op | arguments | what happens |
/// | --- | --- | --- |
/// | 0 send | flags, len (u8), plaintext | the side seals a message to the other (at most [`SESSION_MAX_SENDS`]) |
/// | 1 deliver | k | message `k` reaches its receiver |
/// | 2 mutated | k, [`Mutation`] | message `k`, altered, reaches its receiver |
/// | 3 context | k, ctx | message `k` reaches its receiver, opened under context `ctx` |
/// | 4 redirect | k | message `k` comes back to its sender |
/// | 5 arbitrary | flags, len (u16), bytes | the bytes reach the side under the context |
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionScript {
    bytes: Vec<u8>,
}

impl SessionScript {
    /// An empty script.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn flags(side: Side, ctx: u8) -> u8 {
        u8::from(side == Side::Bob) | (ctx % 3) << 1
    }

    /// `from` seals `plaintext` under context `ctx` (0–2) to the other side.
    #[must_use]
    pub fn send(mut self, from: Side, ctx: u8, plaintext: &[u8]) -> Self {
        self.bytes
            .extend([session_op::SEND, Self::flags(from, ctx)]);
        push_u8_slice(&mut self.bytes, plaintext);
        self
    }

    /// Message `k` reaches its receiver.
    #[must_use]
    pub fn deliver(mut self, k: u8) -> Self {
        self.bytes.extend([session_op::DELIVER, k]);
        self
    }

    /// Message `k`, altered by `mutation`, reaches its receiver.
    #[must_use]
    pub fn mutated(mut self, k: u8, mutation: &Mutation) -> Self {
        self.bytes.extend([session_op::MUTATED, k]);
        mutation.encode(&mut self.bytes);
        self
    }

    /// Message `k` reaches its receiver under context `ctx`.
    #[must_use]
    pub fn context(mut self, k: u8, ctx: u8) -> Self {
        self.bytes.extend([session_op::CONTEXT, k, ctx]);
        self
    }

    /// Message `k` comes back to its sender.
    #[must_use]
    pub fn redirect(mut self, k: u8) -> Self {
        self.bytes.extend([session_op::REDIRECT, k]);
        self
    }

    /// `bytes` reach `to` under context `ctx`.
    #[must_use]
    pub fn arbitrary(mut self, to: Side, ctx: u8, bytes: &[u8]) -> Self {
        self.bytes.extend([5, Self::flags(to, ctx)]);
        push_u16_slice(&mut self.bytes, bytes);
        self
    }

    /// The encoded input.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// One end of an established session, as the session harness drives it.
trait SessionEnd {
    /// Seals `plaintext` to the peer.
    fn seal(&mut self, rng: &mut CoreRng, ctx: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String>;
    /// Opens a message from the peer.
    fn open(&mut self, ctx: &[u8], message: &[u8]) -> Result<Vec<u8>, String>;
    /// What a refused message must leave unchanged.
    fn snapshot(&self) -> Vec<u8>;
}

impl SessionEnd for crate::session::Channel {
    fn seal(&mut self, _: &mut CoreRng, ctx: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
        crate::session::Channel::seal(self, ctx, plaintext).map_err(|e| e.to_string())
    }

    fn open(&mut self, ctx: &[u8], message: &[u8]) -> Result<Vec<u8>, String> {
        crate::session::Channel::open(self, ctx, message)
            .map(|p| p.to_vec())
            .map_err(|e| e.to_string())
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut s = Vec::with_capacity(24);
        s.extend(self.send_counter().to_be_bytes());
        s.extend(self.recv_counter().to_be_bytes());
        s.extend((self.skipped_keys() as u64).to_be_bytes());
        s
    }
}

impl SessionEnd for crate::session::DoubleRatchet {
    fn seal(&mut self, rng: &mut CoreRng, ctx: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
        self.encrypt(rng, ctx, plaintext).map_err(|e| e.to_string())
    }

    fn open(&mut self, ctx: &[u8], message: &[u8]) -> Result<Vec<u8>, String> {
        self.decrypt(ctx, message)
            .map(|p| p.to_vec())
            .map_err(|e| e.to_string())
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut s = self.ratchet_key().as_bytes().to_vec();
        s.extend((self.skipped_keys() as u64).to_be_bytes());
        s
    }
}

/// A message a session script sent.
struct Sent {
    to: Side,
    ctx: usize,
    plaintext: Vec<u8>,
    wire: Vec<u8>,
    opened: bool,
}

/// Runs a [`SessionScript`] over a [`Channel`](crate::session::Channel)
/// established between two fixed identities (alice initiates; the
/// handshake's randomness comes from a hash of the input, so every input
/// has its own session keys).
///
/// Properties: every genuine message opens exactly once, to its plaintext;
/// an altered, made-up, misdirected or replayed message, or one opened
/// under another context, is refused; a refusal changes nothing (counters
/// and skipped keys are as before, and later genuine messages still open).
///
/// # Errors
/// [`Finding::GenuineRefused`], [`Finding::WrongPlaintext`],
/// [`Finding::ForgeryAccepted`], [`Finding::RefusalChangedState`], or
/// [`Finding::HandshakeFailed`] / [`Finding::SealFailed`].
pub fn channel(data: &[u8]) -> Result<(), Finding> {
    let seed = input_seed(b"channel", data);
    let (a, b) = established_pair(seed)?;
    run_session(a.into_channel(), b.into_channel(), seed, data)
}

/// As [`channel`], over a [`DoubleRatchet`](crate::session::DoubleRatchet):
/// every change of direction is a DH ratchet step.
///
/// # Errors
/// As [`channel`].
pub fn ratchet(data: &[u8]) -> Result<(), Finding> {
    let seed = input_seed(b"ratchet", data);
    let (a, b) = established_pair(seed)?;
    run_session(a.into_double_ratchet(), b.into_double_ratchet(), seed, data)
}

/// A genuine handshake between the fixed parties: (alice's side, bob's side).
fn established_pair(
    seed: [u8; 32],
) -> Result<(crate::session::Established, crate::session::Established), Finding> {
    use crate::session::handshake::Expect;
    use crate::session::{Initiator, Responder};
    let failed = |e: crate::session::SessionError| Finding::HandshakeFailed {
        error: e.to_string(),
    };
    let Some((alice, bob)) = session_parties(false) else {
        return Err(Finding::HandshakeFailed {
            error: "the fixed identities do not build".into(),
        });
    };
    let mut rng = rng_from_seed(seed);
    let (initiator, m1) = Initiator::start(&alice, Expect::key(bob.public()), &mut rng);
    let (waiting, m2) = Responder::read_hello(&bob, &m1)
        .and_then(|p| p.accept(&bob, &mut rng))
        .map_err(failed)?;
    let (a, m3) = initiator.finish(&alice, &m2).map_err(failed)?;
    let b = waiting.finish(&m3).map_err(failed)?;
    Ok((a, b))
}

fn run_session<E: SessionEnd>(
    alice: E,
    bob: E,
    seed: [u8; 32],
    data: &[u8],
) -> Result<(), Finding> {
    let mut run = SessionRun {
        alice,
        bob,
        rng: rng_from_seed(crate::crypto::sha256(&seed)),
        sent: Vec::new(),
    };
    let mut input = Cursor { data };
    while let Some(op) = input.byte() {
        run.step(op, &mut input)?;
    }
    Ok(())
}

struct SessionRun<E> {
    alice: E,
    bob: E,
    rng: CoreRng,
    sent: Vec<Sent>,
}

fn side_of(flags: u8) -> Side {
    if flags & 1 == 0 {
        Side::Alice
    } else {
        Side::Bob
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Alice => Side::Bob,
        Side::Bob => Side::Alice,
    }
}

impl<E: SessionEnd> SessionRun<E> {
    fn end(&mut self, side: Side) -> &mut E {
        match side {
            Side::Alice => &mut self.alice,
            Side::Bob => &mut self.bob,
        }
    }

    fn pick(&self, k: u8) -> Option<usize> {
        let len = self.sent.len();
        (len > 0).then(|| usize::from(k) % len)
    }

    fn step(&mut self, op: u8, input: &mut Cursor<'_>) -> Result<(), Finding> {
        match op % SESSION_OP_COUNT {
            session_op::SEND => {
                let flags = input.byte().unwrap_or(0);
                let len = input.byte().unwrap_or(0);
                let plaintext = input.slice(usize::from(len)).to_vec();
                if self.sent.len() >= SESSION_MAX_SENDS {
                    return Ok(());
                }
                let from = side_of(flags);
                let ctx = usize::from(flags >> 1) % CONTEXTS.len();
                let context = CONTEXTS.get(ctx).copied().unwrap_or_default();
                let mut rng = self.rng.clone();
                let wire = self
                    .end(from)
                    .seal(&mut rng, context, &plaintext)
                    .map_err(|error| Finding::SealFailed { error })?;
                self.rng = rng;
                self.sent.push(Sent {
                    to: other(from),
                    ctx,
                    plaintext,
                    wire,
                    opened: false,
                });
                Ok(())
            }
            session_op::DELIVER => {
                let Some(i) = self.pick(input.byte().unwrap_or(0)) else {
                    return Ok(());
                };
                self.deliver_sent(i, None, None)
            }
            session_op::MUTATED => {
                let k = input.byte().unwrap_or(0);
                let Some(i) = self.pick(k) else {
                    // Still consume the mutation, so scripts stay aligned.
                    let _ = Mutation::apply(&[], input);
                    return Ok(());
                };
                let wire = self.sent.get(i).map(|s| s.wire.clone()).unwrap_or_default();
                let altered = Mutation::apply(&wire, input);
                self.deliver_sent(i, Some(altered), None)
            }
            session_op::CONTEXT => {
                let k = input.byte().unwrap_or(0);
                let ctx = usize::from(input.byte().unwrap_or(0)) % CONTEXTS.len();
                let Some(i) = self.pick(k) else {
                    return Ok(());
                };
                self.deliver_sent(i, None, Some(ctx))
            }
            session_op::REDIRECT => {
                let Some(i) = self.pick(input.byte().unwrap_or(0)) else {
                    return Ok(());
                };
                let Some(s) = self.sent.get(i) else {
                    return Ok(());
                };
                let (to, ctx, wire) = (other(s.to), s.ctx, s.wire.clone());
                self.deliver(to, ctx, &wire)
            }
            _ => {
                let flags = input.byte().unwrap_or(0);
                let len = input.u16();
                let bytes = input.slice(usize::from(len)).to_vec();
                let ctx = usize::from(flags >> 1) % CONTEXTS.len();
                self.deliver(side_of(flags), ctx, &bytes)
            }
        }
    }

    /// Delivers sent message `i` (maybe altered, maybe under another context).
    fn deliver_sent(
        &mut self,
        i: usize,
        wire: Option<Vec<u8>>,
        ctx: Option<usize>,
    ) -> Result<(), Finding> {
        let Some(s) = self.sent.get(i) else {
            return Ok(());
        };
        let (to, ctx, wire) = (
            s.to,
            ctx.unwrap_or(s.ctx),
            wire.unwrap_or_else(|| s.wire.clone()),
        );
        self.deliver(to, ctx, &wire)
    }

    /// `bytes` reach `to` under context `ctx`. They open only if they are a
    /// message sent to `to` under `ctx` that has not been opened yet.
    fn deliver(&mut self, to: Side, ctx: usize, bytes: &[u8]) -> Result<(), Finding> {
        let genuine = self
            .sent
            .iter()
            .position(|s| s.to == to && s.ctx == ctx && s.wire == bytes);
        let context = CONTEXTS.get(ctx).copied().unwrap_or_default();
        let end = self.end(to);
        let before = end.snapshot();
        let opened = end.open(context, bytes);
        let after = end.snapshot();
        let fresh = genuine
            .and_then(|i| self.sent.get_mut(i))
            .filter(|s| !s.opened);
        match (opened, fresh, genuine) {
            (Ok(plain), Some(s), Some(index)) => {
                s.opened = true;
                if plain != s.plaintext {
                    return Err(Finding::WrongPlaintext { index });
                }
                Ok(())
            }
            (Err(error), Some(_), Some(index)) => Err(Finding::GenuineRefused { index, error }),
            (Ok(_), _, Some(_)) => Err(Finding::ForgeryAccepted { what: "a replay" }),
            (Ok(_), _, None) => Err(Finding::ForgeryAccepted {
                what: "altered, made-up or misdirected bytes",
            }),
            (Err(_), _, _) => {
                if before != after {
                    return Err(Finding::RefusalChangedState {
                        what: if genuine.is_some() {
                            "a replay"
                        } else {
                            "a forgery"
                        },
                    });
                }
                Ok(())
            }
        }
    }
}

// ----- the HTTP upgrade judge ------------------------------------------------

/// Feeds `data` to [`judge`](crate::driver::upgrade::judge) and
/// [`head_len`](crate::driver::upgrade::head_len) as the bytes an adapter
/// read from a new connection.
///
/// Properties: no panic; `head_len` points just past a blank line (`\n\n`
/// or `\r\n\r\n`) and there is none earlier; only the head is judged (the
/// verdict on the head alone is the same); an upgrade has no response and
/// every refusal's response is a well-formed HTTP/1.1 response: a status
/// line `HTTP/1.1 <3 digits> <reason>`, header lines `Name: value` ending
/// in CRLF, a `Content-Length` equal to the body's length, and the body.
///
/// # Errors
/// [`Finding::BadHttpResponse`].
pub fn upgrade(data: &[u8]) -> Result<(), Finding> {
    use crate::driver::upgrade::{Verdict, head_len, judge};
    let bad = |what: String| Err(Finding::BadHttpResponse { what });
    let head = head_len(data);
    if let Some(n) = head {
        let Some(prefix) = data.get(..n) else {
            return bad(format!("head_len {n} beyond {} bytes", data.len()));
        };
        if !(prefix.ends_with(b"\n\n") || prefix.ends_with(b"\r\n\r\n")) {
            return bad(format!("head_len {n} does not end at a blank line"));
        }
        let earlier = prefix.get(..n.saturating_sub(1)).unwrap_or_default();
        if earlier.windows(2).any(|w| w == b"\n\n") || earlier.windows(4).any(|w| w == b"\r\n\r\n")
        {
            return bad(format!("head_len {n} is not the first blank line"));
        }
        if judge(prefix) != judge(data) {
            return bad("the verdict depends on bytes after the head".into());
        }
    } else if data.windows(2).any(|w| w == b"\n\n") || data.windows(4).any(|w| w == b"\r\n\r\n") {
        return bad("head_len missed a blank line".into());
    }
    let verdict = judge(data);
    for v in [&verdict, &Verdict::too_large()] {
        match (v, v.response()) {
            (Verdict::Upgrade, None) => {}
            (Verdict::Upgrade, Some(_)) => return bad("an upgrade has a response".into()),
            (Verdict::Refuse { .. }, None) => return bad("a refusal has no response".into()),
            (Verdict::Refuse { status, .. }, Some(response)) => {
                if let Err(what) = check_http_response(&response, *status) {
                    return bad(format!("{what} in {response:?}"));
                }
            }
        }
    }
    Ok(())
}

/// Checks that `response` is one complete HTTP/1.1 response with `status`.
fn check_http_response(response: &str, status: u16) -> Result<(), String> {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("no blank line after the headers")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some("HTTP/1.1"), Some(code), Some(reason)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("bad status line {status_line:?}"));
    };
    if code.len() != 3 || code.parse::<u16>().ok() != Some(status) || !(100..600).contains(&status)
    {
        return Err(format!("bad status code {code:?}"));
    }
    if reason.is_empty() || reason.contains(['\r', '\n']) {
        return Err("bad reason phrase".into());
    }
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(": ") else {
            return Err(format!("bad header line {line:?}"));
        };
        let token = |c: char| c.is_ascii_alphanumeric() || c == '-';
        if name.is_empty() || !name.chars().all(token) || value.contains(['\r', '\n']) {
            return Err(format!("bad header line {line:?}"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err("two Content-Length headers".into());
            }
            length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        }
    }
    match length {
        Some(n) if n == body.len() => Ok(()),
        Some(n) => Err(format!(
            "Content-Length {n} but a body of {} bytes",
            body.len()
        )),
        None => Err("no Content-Length".into()),
    }
}
