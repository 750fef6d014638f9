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
//! # Cost
//!
//! Every `ERROR` a server sends to an unidentified or user link is RSA-signed
//! (about 7 ms), and each run starts a fresh server with an empty signature
//! cache, so a run that provokes an error costs at least one signature. The
//! setup byte can therefore also choose `errors_per_second = 0` (a legal
//! configuration: errors are counted but never answered), which keeps most runs
//! free of private-key operations.

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
