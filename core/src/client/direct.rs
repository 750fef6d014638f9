//! Direct messages, legacy profile (socp-1.3.md §1.7 MSG_DIRECT / USER_DELIVER).
//!
//! Sending: the UTF-8 text is split on character boundaries into pieces of at
//! most 446 bytes (the OAEP limit); each piece is RSA-OAEP encrypted to the
//! recipient's pinned key and signed with `content_sig` layout A over
//! (ciphertext, from, to, ts), one MSG_DIRECT per piece, all with the same
//! `ts`. socp adds three optional payload keys so that a socp receiver can put
//! the pieces back together: `msg_id` (32 hex digits), `part` (0-based) and
//! `parts`. Other SOCP clients ignore unknown keys and show each piece as a
//! message of its own. These keys are not covered by `content_sig` (no SOCP
//! layout has room for them): a hostile server could reorder or withhold
//! parts, never alter or forge one. The secure profile fixes that.
//!
//! Receiving USER_DELIVER: the sender is `payload.sender`, the timestamp
//! `payload.orig_ts` (else the envelope's `ts`), the recipient ourselves. The
//! signature is checked (layouts A, B or C) with the sender's **pinned** key
//! only, never with the `sender_pub` the message brings, and the status is
//! computed here ([`MessageStatus`]); any `status`, `verified` or
//! `is_forward_message` on the wire is ignored. A message whose signature
//! fails is not decrypted. A replay of a piece already shown is dropped.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::chunking::{PIECE_BYTES, split_utf8};
use super::{Client, ClientEvent, KeySource, MessageId, MessageStatus, SendFailure};
use crate::crypto::content_sig::{
    DmFields, PublicFields, SigLayout, sign_dm, sign_public, verify_dm,
};
use crate::crypto::hash::sha256_concat;
use crate::crypto::rsa::RsaPublic;
use crate::time::{Instant, Now};
use crate::wire::messages::{MsgDirect, MsgPublicChannel, UserDeliver};
use crate::wire::{Envelope, Message, b64};

/// Which message a piece belongs to: (sender, msg_id, public).
pub(super) type PartialKey = (String, String, bool);

/// A message whose parts are arriving.
#[derive(Debug)]
pub(super) struct Partial {
    parts: u32,
    pieces: BTreeMap<u32, String>,
    status: MessageStatus,
    bytes: usize,
    ts: u64,
    pub(super) deadline: Instant,
}

/// The socp reassembly keys of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PartMeta {
    pub(super) msg_id: String,
    pub(super) part: u32,
    pub(super) parts: u32,
}

/// Reads `msg_id`, `part` and `parts`; a `msg_id` alone means one part.
/// Anything malformed reads as absent (the piece is then shown on its own).
pub(super) fn part_meta(payload: &Map<String, Value>, max_parts: u32) -> Option<PartMeta> {
    let msg_id = payload.get("msg_id")?.as_str()?;
    super::unhex::<16>(msg_id)?;
    let int = |key: &str| -> Option<u32> {
        match payload.get(key)? {
            Value::Number(n) => u32::try_from(n.as_u64()?).ok(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    };
    let (part, parts) = match (int("part"), int("parts")) {
        (Some(part), Some(parts)) if part < parts && parts <= max_parts => (part, parts),
        (None, None) => (0, 1),
        _ => return None,
    };
    Some(PartMeta {
        msg_id: msg_id.to_ascii_lowercase(),
        part,
        parts,
    })
}

/// Adds the socp reassembly keys to an outgoing payload.
pub(super) fn add_part_fields(
    payload: &mut Map<String, Value>,
    msg_id: MessageId,
    part: usize,
    parts: usize,
) {
    payload.insert("msg_id".into(), Value::String(msg_id.to_hex()));
    payload.insert("part".into(), Value::from(part));
    payload.insert("parts".into(), Value::from(parts));
}

/// The replay-filter key of a piece with reassembly keys.
pub(super) fn piece_key(public: bool, from: &str, meta: &PartMeta) -> [u8; 32] {
    let kind: &[u8] = if public { b"public" } else { b"direct" };
    sha256_concat(&[
        kind,
        &[0],
        from.as_bytes(),
        &[0],
        meta.msg_id.as_bytes(),
        &meta.part.to_be_bytes(),
    ])
}

impl Client {
    /// The most parts a message may have.
    pub(super) fn max_parts(&self) -> u32 {
        u32::try_from(self.cfg.max_message_bytes / 256 + 1).unwrap_or(u32::MAX)
    }

    /// Encrypts and signs the MSG_DIRECT frames of one message.
    pub(super) fn direct_frames(
        &mut self,
        now: Now,
        msg_id: MessageId,
        to: &str,
        text: &str,
        key: &RsaPublic,
    ) -> Result<Vec<Bytes>, SendFailure> {
        self.piece_frames(now, msg_id, to, text, key, PieceKind::Direct)
    }

    /// Splits `text` into OAEP-sized pieces, encrypts each to `key`, signs it with
    /// the `content_sig` of its kind (layout A) and frames it with the
    /// reassembly keys (`msg_id`, `part`, `parts`).
    pub(super) fn piece_frames(
        &mut self,
        now: Now,
        msg_id: MessageId,
        to: &str,
        text: &str,
        key: &RsaPublic,
        kind: PieceKind,
    ) -> Result<Vec<Bytes>, SendFailure> {
        let pieces = split_utf8(text, PIECE_BYTES);
        let parts = pieces.len();
        let ts = now.unix_ms;
        let me = self.identity.user_id.clone();
        let mut frames = Vec::with_capacity(parts);
        for (part, piece) in pieces.iter().enumerate() {
            let ct = key
                .encrypt_oaep(&mut self.rng, piece.as_bytes())
                .map_err(|_| SendFailure::Crypto)?;
            let ciphertext = b64::encode(&ct);
            let sig = match kind {
                PieceKind::Direct => {
                    let fields = DmFields {
                        ciphertext: &ciphertext,
                        from: &me,
                        to,
                        ts,
                    };
                    sign_dm(&self.identity.rsa, &mut self.rng, &fields, SigLayout::A)
                }
                PieceKind::Public => {
                    let fields = PublicFields {
                        ciphertext: &ciphertext,
                        from: &me,
                        ts,
                    };
                    sign_public(&self.identity.rsa, &mut self.rng, &fields, SigLayout::A)
                }
            }
            .map_err(|_| SendFailure::Crypto)?;
            let sender_pub = Some(self.key_wire.clone());
            let message: Message = match kind {
                PieceKind::Direct => MsgDirect {
                    ciphertext,
                    sender_pub,
                    content_sig: Some(sig),
                }
                .into(),
                PieceKind::Public => MsgPublicChannel {
                    ciphertext,
                    sender_pub,
                    content_sig: Some(sig),
                }
                .into(),
            };
            let mut env = Envelope::new(me.clone(), to, ts, message);
            add_part_fields(&mut env.payload, msg_id, part, parts);
            frames.push(Bytes::from(env.encode()));
        }
        Ok(frames)
    }

    pub(super) fn on_user_deliver(&mut self, now: Now, env: &Envelope, d: UserDeliver) {
        let me = self.identity.user_id.clone();
        if env.to != me {
            return self.dropped(format!("USER_DELIVER addressed to {}", env.to));
        }
        let sender = d.sender.clone();
        let ts = d.orig_ts.unwrap_or(env.ts);
        let meta = part_meta(&env.payload, self.max_parts());
        let seen_key = match &meta {
            Some(m) => piece_key(false, &sender, m),
            // The signature is part of the key, so that an unsigned or forged
            // copy seen first cannot hide the genuine one.
            None => sha256_concat(&[
                b"direct\0",
                sender.as_bytes(),
                &ts.to_be_bytes(),
                d.ciphertext.as_bytes(),
                b"\0",
                d.content_sig.as_bytes(),
            ]),
        };
        if self.seen.contains(&seen_key) {
            return self.dropped(format!("replayed message from {sender}"));
        }
        let status = self.content_status(&sender, Some(&d.content_sig), |key, sig| {
            let fields = DmFields {
                ciphertext: &d.ciphertext,
                from: &sender,
                to: &me,
                ts,
            };
            verify_dm(key, sig, &fields).is_ok()
        });
        self.learn_sender_pub(&sender, &d.sender_pub);
        let (text, status) = self.open_text(&d.ciphertext, status);
        if !matches!(
            status,
            MessageStatus::InvalidSignature | MessageStatus::DecryptionFailed
        ) {
            self.seen.insert(seen_key);
        }
        self.deliver_piece(now, sender, ts, text, status, false, meta);
    }

    /// The status a signature check gives, before decryption.
    pub(super) fn content_status(
        &self,
        sender: &str,
        sig: Option<&str>,
        verify: impl FnOnce(&RsaPublic, &str) -> bool,
    ) -> MessageStatus {
        let Some(sig) = sig.map(str::trim).filter(|s| !s.is_empty()) else {
            return MessageStatus::Unsigned;
        };
        match self.keys.get(sender) {
            None => MessageStatus::Unverified,
            Some(pin) if verify(&pin.key, sig) => {
                if pin.trusted() {
                    MessageStatus::Verified
                } else {
                    MessageStatus::Unverified
                }
            }
            Some(_) => MessageStatus::InvalidSignature,
        }
    }

    /// The last-resort key source: a message's own `sender_pub`, pinned only
    /// if we have no key at all for its sender.
    pub(super) fn learn_sender_pub(&mut self, sender: &str, sender_pub: &str) {
        if self.keys.get(sender).is_some() || sender_pub.is_empty() {
            return;
        }
        if let Ok((key, _)) = RsaPublic::from_wire(sender_pub) {
            self.learn_key(sender, key, KeySource::SenderPub);
        }
    }

    /// Decrypts a text piece unless its signature failed.
    pub(super) fn open_text(
        &mut self,
        ciphertext: &str,
        status: MessageStatus,
    ) -> (String, MessageStatus) {
        if status == MessageStatus::InvalidSignature {
            return (String::new(), status);
        }
        match self.decrypt(ciphertext) {
            Some(plain) => (String::from_utf8_lossy(&plain).into_owned(), status),
            None => (String::new(), MessageStatus::DecryptionFailed),
        }
    }

    /// RSA-OAEP decryption of a base64url ciphertext with our key. Failures
    /// are never reported to anyone but our own UI.
    pub(super) fn decrypt(&mut self, ciphertext: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let raw = b64::decode(ciphertext).ok()?;
        self.identity.rsa.decrypt_oaep(&mut self.rng, &raw).ok()
    }

    /// Shows a piece, or files it until its message is complete.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver_piece(
        &mut self,
        now: Now,
        from: String,
        ts: u64,
        text: String,
        status: MessageStatus,
        public: bool,
        meta: Option<PartMeta>,
    ) {
        let Some(meta) = meta.filter(|m| m.parts > 1) else {
            self.events.push_back(ClientEvent::Message {
                from,
                ts,
                text,
                status,
                public,
            });
            return;
        };
        let key = (from.clone(), meta.msg_id.clone(), public);
        let deadline = now.mono + self.cfg.reassembly_timeout;
        let partial = self.partials.entry(key.clone()).or_insert(Partial {
            parts: meta.parts,
            pieces: BTreeMap::new(),
            status: MessageStatus::Verified,
            bytes: 0,
            ts,
            deadline,
        });
        if partial.parts != meta.parts || partial.pieces.contains_key(&meta.part) {
            return self.dropped(format!("inconsistent or repeated part from {from}"));
        }
        partial.bytes = partial.bytes.saturating_add(text.len());
        partial.status = partial.status.worst(status);
        partial.pieces.insert(meta.part, text);
        if partial.bytes > self.cfg.max_message_bytes {
            self.partials.remove(&key);
            return self.dropped(format!("message from {from} exceeds the size limit"));
        }
        if partial.pieces.len() < usize::try_from(partial.parts).unwrap_or(usize::MAX) {
            return;
        }
        if let Some(done) = self.partials.remove(&key) {
            let status = done.status;
            let text = if matches!(
                status,
                MessageStatus::InvalidSignature | MessageStatus::DecryptionFailed
            ) {
                String::new()
            } else {
                done.pieces.into_values().collect()
            };
            self.events.push_back(ClientEvent::Message {
                from,
                ts: done.ts,
                text,
                status,
                public,
            });
        }
    }

    pub(super) fn expire_partials(&mut self, now: Now) {
        let expired: Vec<PartialKey> = self
            .partials
            .iter()
            .filter(|(_, p)| now.mono >= p.deadline)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.partials.remove(&key);
            self.dropped(format!("incomplete message from {} expired", key.0));
        }
    }
}

/// Which frame a message's pieces go out as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PieceKind {
    /// MSG_DIRECT, signed over (ciphertext, from, to, ts).
    Direct,
    /// MSG_PUBLIC_CHANNEL, signed over (ciphertext, from, ts).
    Public,
}
