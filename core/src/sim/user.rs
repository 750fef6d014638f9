//! The scripted user of the simulator: just enough of a SOCP client to exercise
//! servers. It signs nothing end to end and encrypts nothing: servers treat
//! ciphertexts as opaque, so an opaque tag is enough to follow a message.

use crate::crypto::fixtures;
use crate::wire::messages::{ListRequest, MsgDirect, MsgPublicChannel, UserHello};
use crate::wire::{Envelope, Message, MsgType};

/// A scripted user and everything it has received.
#[derive(Debug, Clone)]
pub struct SimUser {
    /// Its user id (a UUIDv4).
    pub id: String,
    /// Its RSA key, in wire encoding.
    pub pubkey: String,
    /// Every frame received, in order.
    pub inbox: Vec<Envelope>,
    pub(super) server: Option<usize>,
    pub(super) conn: Option<u64>,
}

impl SimUser {
    pub(super) fn new(id: String, key: usize) -> Self {
        Self {
            id,
            pubkey: fixtures::rsa_identity_ref(key).public().to_wire(),
            inbox: Vec::new(),
            server: None,
            conn: None,
        }
    }

    pub(super) fn with_key(id: String, pubkey: String) -> Self {
        Self {
            id,
            pubkey,
            inbox: Vec::new(),
            server: None,
            conn: None,
        }
    }

    /// The server it is connected to, if any.
    #[must_use]
    pub fn server(&self) -> Option<usize> {
        self.server
    }

    /// Whether it is connected.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The frames of type `t` received so far.
    pub fn received(&self, t: &MsgType) -> impl Iterator<Item = &Envelope> {
        let t = t.clone();
        self.inbox.iter().filter(move |e| e.msg_type == t)
    }

    /// How many USER_DELIVERs carrying `ciphertext` it received.
    #[must_use]
    pub fn deliveries_of(&self, ciphertext: &str) -> usize {
        self.received(&MsgType::UserDeliver)
            .filter(|e| e.payload.get("ciphertext").and_then(|c| c.as_str()) == Some(ciphertext))
            .count()
    }

    /// How many public messages carrying `ciphertext` it received.
    #[must_use]
    pub fn public_of(&self, ciphertext: &str) -> usize {
        self.received(&MsgType::MsgPublicChannel)
            .filter(|e| e.payload.get("ciphertext").and_then(|c| c.as_str()) == Some(ciphertext))
            .count()
    }

    /// The `ERROR` codes received, in order.
    #[must_use]
    pub fn error_codes(&self) -> Vec<String> {
        self.received(&MsgType::Error)
            .filter_map(|e| {
                e.payload
                    .get("code")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            })
            .collect()
    }

    pub(super) fn hello(&self, ts: u64) -> Vec<u8> {
        let hello = UserHello {
            client: Some("socp-sim".into()),
            pubkey: self.pubkey.clone(),
            enc_pubkey: None,
            caps: Vec::new(),
        };
        Envelope::new(self.id.clone(), "server", ts, Message::from(hello)).encode()
    }

    pub(super) fn direct(&self, to: &str, ciphertext: &str, ts: u64) -> Vec<u8> {
        let dm = MsgDirect {
            ciphertext: ciphertext.to_owned(),
            sender_pub: Some(self.pubkey.clone()),
            content_sig: Some(String::new()),
        };
        Envelope::new(self.id.clone(), to, ts, Message::from(dm)).encode()
    }

    pub(super) fn public(&self, ciphertext: &str, ts: u64) -> Vec<u8> {
        let msg = MsgPublicChannel {
            ciphertext: ciphertext.to_owned(),
            sender_pub: Some(self.pubkey.clone()),
            content_sig: Some(String::new()),
        };
        Envelope::new(self.id.clone(), "public", ts, Message::from(msg)).encode()
    }

    /// A `LIST_REQUEST` frame from this user.
    #[must_use]
    pub fn list_request(&self, ts: u64) -> Vec<u8> {
        Envelope::new(self.id.clone(), "server", ts, Message::from(ListRequest {})).encode()
    }
}
