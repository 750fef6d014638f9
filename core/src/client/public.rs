//! The public channel, legacy profile (socp-1.3.md §1.7 "Public channel", §2
//! rows 11 and 12; impl A's reading, seed 003).
//!
//! With RSA-only v1.3 one ciphertext cannot be read by every member, so a
//! public message is encrypted **per member**: one MSG_PUBLIC_CHANNEL per
//! online user and per 446-byte piece, with `to` = that member's id and
//! `content_sig` over (ciphertext, from, ts) ([`sign_public`]). Our server
//! routes such frames like DMs. The reassembly keys of the `direct` module
//! (`msg_id`, `part`, `parts`) are added; the server relays public frames as
//! sent, so they survive.
//!
//! Receiving: a copy addressed to another member is ignored without work; a
//! copy addressed to `"public"` or `"*"` (other implementations) that we
//! cannot decrypt is another member's and is ignored silently. Signatures are
//! checked with the sender's pinned key ([`verify_public`]); every message is
//! shown once, deduplicated by (sender, msg_id, part), or by (sender, ts,
//! plaintext) for senders without `msg_id`.
//!
//! The channel's `version` (PUBLIC_CHANNEL_UPDATED) only moves forward here;
//! an older or equal one is ignored. Versions are per server in practice, so
//! after reconnecting to another server the value may lag.
//!
//! Key shares (PUBLIC_CHANNEL_KEY_SHARE, §4 case 20): [`Client::share_channel_key`]
//! makes a fresh 256-bit channel key, wraps it for each member with its pinned
//! key, and signs `content_sig` over (shares, creator_pub) in layout A. A
//! receiver verifies it (layouts A or B), decrypts only its own share and keeps
//! the key. In the legacy profile the key protects nothing yet (messages are
//! per-member RSA); it is the hook for an AES group key later.

use bytes::Bytes;
use rand_core::Rng;
use zeroize::Zeroizing;

use super::direct::{PieceKind, part_meta, piece_key};
use super::{Client, ClientEvent, MessageId, MessageStatus, SendFailure, hex};
use crate::crypto::content_sig::{
    KeyShareFields, KeyShareLayout, PublicFields, sign_key_share, verify_key_share, verify_public,
};
use crate::crypto::hash::{sha256, sha256_concat};
use crate::crypto::rsa::RsaPublic;
use crate::time::Now;
use crate::wire::messages::{KeyShare, MsgPublicChannel, PublicChannelKeyShare};
use crate::wire::{Envelope, b64, json};

/// Whether `to` names the whole channel rather than one member.
pub(super) fn is_channel(to: &str) -> bool {
    to == "public" || to == "*"
}

impl Client {
    /// Encrypts and signs the MSG_PUBLIC_CHANNEL frames of one message for one member.
    pub(super) fn public_frames(
        &mut self,
        now: Now,
        msg_id: MessageId,
        to: &str,
        text: &str,
        key: &RsaPublic,
    ) -> Result<Vec<Bytes>, SendFailure> {
        self.piece_frames(now, msg_id, to, text, key, PieceKind::Public)
    }

    pub(super) fn on_public_message(&mut self, now: Now, env: &Envelope, m: MsgPublicChannel) {
        let me = self.identity.user_id.clone();
        let from = env.from.clone();
        let for_me = env.to == me;
        if from == me || !(for_me || is_channel(&env.to)) {
            return;
        }
        let meta = part_meta(&env.payload, self.max_parts());
        if let Some(meta) = &meta
            && self.seen.contains(&piece_key(true, &from, meta))
        {
            return;
        }
        let ts = env.ts;
        let status = self.content_status(&from, m.content_sig.as_deref(), |key, sig| {
            let fields = PublicFields {
                ciphertext: &m.ciphertext,
                from: &from,
                ts,
            };
            verify_public(key, sig, &fields).is_ok()
        });
        if let Some(sender_pub) = m.sender_pub.as_deref() {
            self.learn_sender_pub(&from, sender_pub);
        }
        let (text, status) = self.open_text(&m.ciphertext, status);
        let failed = matches!(
            status,
            MessageStatus::InvalidSignature | MessageStatus::DecryptionFailed
        );
        if failed && !for_me {
            // Another member's copy of a channel-wide frame.
            return;
        }
        if !failed {
            let key = match &meta {
                Some(meta) => piece_key(true, &from, meta),
                None => sha256_concat(&[
                    b"public\0",
                    from.as_bytes(),
                    &ts.to_be_bytes(),
                    &sha256(text.as_bytes()),
                ]),
            };
            if self.seen.contains(&key) {
                return;
            }
            self.seen.insert(key);
        }
        self.deliver_piece(now, from, ts, text, status, true, meta);
    }

    pub(super) fn on_channel_updated(&mut self, now: Now, version: u64) {
        if version > self.public_version {
            self.public_version = version;
            self.events
                .push_back(ClientEvent::PublicChannel { version });
        }
        // Our server sends it right after the roster: public items can fan out.
        if !self.roster_ready {
            self.roster_ready = true;
            self.roster_deadline = None;
            self.flush(now);
        }
    }

    /// Makes a fresh public-channel key and sends it to every online member
    /// whose key is pinned (and to ourselves) in a signed
    /// PUBLIC_CHANNEL_KEY_SHARE. Returns the number of shares, or `None` while
    /// disconnected or if signing fails.
    pub fn share_channel_key(&mut self, now: Now) -> Option<usize> {
        self.now = now;
        if !self.is_connected() {
            return None;
        }
        let mut key = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(&mut key[..]);
        let me = self.identity.user_id.clone();
        let mut members: Vec<(String, RsaPublic)> =
            vec![(me.clone(), self.identity.rsa.public().clone())];
        members.extend(
            self.online
                .iter()
                .filter_map(|u| Some((u.clone(), self.keys.get(u)?.key.clone()))),
        );
        let mut shares = Vec::with_capacity(members.len());
        for (member, pubkey) in members {
            let wrapped = pubkey.encrypt_oaep(&mut self.rng, &key[..]).ok()?;
            shares.push(KeyShare {
                member,
                wrapped_public_channel_key: b64::encode(&wrapped),
            });
        }
        let shares_value = serde_json::to_value(&shares).ok()?;
        let canonical = json::canonical(&shares_value);
        let fields = KeyShareFields {
            shares_canonical: &canonical,
            creator_pub: &self.key_wire,
        };
        let sig = sign_key_share(
            &self.identity.rsa,
            &mut self.rng,
            &fields,
            KeyShareLayout::A,
        )
        .ok()?;
        let count = shares.len();
        let msg = PublicChannelKeyShare {
            shares,
            creator_pub: self.key_wire.clone(),
            content_sig: sig,
        };
        let env = Envelope::new(me.clone(), "public", now.unix_ms, msg);
        self.send_env(&env);
        self.events.push_back(ClientEvent::ChannelKey {
            creator: me,
            status: MessageStatus::Verified,
            fingerprint: hex(&sha256(&key[..])),
        });
        self.channel_key = Some(key);
        Some(count)
    }

    pub(super) fn on_key_share(
        &mut self,
        _now: Now,
        env: &Envelope,
        share: &PublicChannelKeyShare,
    ) {
        let me = self.identity.user_id.clone();
        if env.from == me {
            return;
        }
        let Some(raw) = env
            .payload
            .get("shares")
            .or_else(|| env.payload.get("wrapped"))
        else {
            return self.dropped("key share without shares".into());
        };
        let canonical = json::canonical(raw);
        let Ok((creator, _)) = RsaPublic::from_wire(&share.creator_pub) else {
            return self.dropped("key share with an unusable creator_pub".into());
        };
        let fields = KeyShareFields {
            shares_canonical: &canonical,
            creator_pub: &share.creator_pub,
        };
        if verify_key_share(&creator, &share.content_sig, &fields).is_err() {
            return self.dropped(format!("key share from {} with a bad signature", env.from));
        }
        let status = if self
            .keys
            .get(&env.from)
            .is_some_and(|pin| pin.trusted() && pin.key == creator)
        {
            MessageStatus::Verified
        } else {
            MessageStatus::Unverified
        };
        let Some(mine) = share.shares.iter().find(|s| s.member == me) else {
            return;
        };
        let Some(plain) = self.decrypt(&mine.wrapped_public_channel_key) else {
            return self.dropped(format!("key share from {} does not decrypt", env.from));
        };
        let Ok(key) = <[u8; 32]>::try_from(plain.as_slice()) else {
            return self.dropped("key share of the wrong length".into());
        };
        self.events.push_back(ClientEvent::ChannelKey {
            creator: env.from.clone(),
            status,
            fingerprint: hex(&sha256(&key)),
        });
        self.channel_key = Some(Zeroizing::new(key));
    }
}
