//! Users' keys: learned, cached and pinned on first use.
//!
//! Sources, strongest first: the server's directory (`USER_ADVERTISE`
//! `payload.pubkey` or `meta.pubkey`, `PUBKEY_RESPONSE`), then, as a last
//! resort, the `sender_pub` of a received message. The first directory key
//! seen for a user is pinned. A different key offered later is **not**
//! accepted: the client emits
//! [`ClientEvent::KeyChanged`](super::ClientEvent::KeyChanged), keeps the old
//! key, and remembers the new one as an offer that the UI may accept with
//! [`Client::accept_key`](super::Client::accept_key) after the user compared
//! fingerprints out of band.
//!
//! A `sender_pub` pin is weaker: it lets us reply, but messages checked with
//! it stay `Unverified`, and the first directory key replaces it (with a
//! `KeyChanged` event when they differ). A `sender_pub` that differs from any
//! pin is ignored: the signature check then reports the mismatch.

use std::collections::BTreeMap;

use super::io::KeySource;
use crate::crypto::rsa::RsaPublic;

#[derive(Debug, Clone)]
pub(super) struct Pin {
    pub(super) key: RsaPublic,
    pub(super) source: KeySource,
}

impl Pin {
    /// Whether a signature under this key makes a message `Verified`.
    pub(super) fn trusted(&self) -> bool {
        self.source != KeySource::SenderPub
    }
}

/// What learning a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Learned {
    /// First key for this user: pinned.
    New,
    /// The key we have (perhaps now from a stronger source).
    Same,
    /// A directory key replaced a `sender_pub` pin.
    Replaced { old: String },
    /// A different key for a pinned user: refused, kept as an offer.
    Changed { old: String, new: String },
    /// A different `sender_pub`: ignored.
    Ignored,
}

#[derive(Debug, Default)]
pub(super) struct KeyBook {
    pins: BTreeMap<String, Pin>,
    offered: BTreeMap<String, RsaPublic>,
}

impl KeyBook {
    pub(super) fn get(&self, user: &str) -> Option<&Pin> {
        self.pins.get(user)
    }

    pub(super) fn learn(&mut self, user: &str, key: RsaPublic, source: KeySource) -> Learned {
        let Some(pin) = self.pins.get_mut(user) else {
            self.pins.insert(user.to_owned(), Pin { key, source });
            return Learned::New;
        };
        if pin.key == key {
            if source != KeySource::SenderPub {
                pin.source = source;
            }
            return Learned::Same;
        }
        match (pin.source, source) {
            (_, KeySource::SenderPub) => Learned::Ignored,
            (KeySource::SenderPub, _) => {
                let old = fingerprint(&pin.key);
                *pin = Pin { key, source };
                Learned::Replaced { old }
            }
            _ => {
                let change = Learned::Changed {
                    old: fingerprint(&pin.key),
                    new: fingerprint(&key),
                };
                self.offered.insert(user.to_owned(), key);
                change
            }
        }
    }

    /// Pins the last key offered for `user` in place of the old one.
    pub(super) fn accept(&mut self, user: &str) -> Option<String> {
        let key = self.offered.remove(user)?;
        let fp = fingerprint(&key);
        self.pins.insert(
            user.to_owned(),
            Pin {
                key,
                source: KeySource::Accepted,
            },
        );
        Some(fp)
    }
}

/// A key's fingerprint: SHA-256 of its DER SubjectPublicKeyInfo, hex.
#[must_use]
pub fn fingerprint(key: &RsaPublic) -> String {
    super::hex(&key.fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::fixtures;

    #[test]
    fn pins_on_first_use_and_refuses_a_change() {
        let k1 = fixtures::rsa_identity_ref(1).public().clone();
        let k2 = fixtures::rsa_identity_ref(2).public().clone();
        let mut book = KeyBook::default();
        assert_eq!(
            book.learn("u", k1.clone(), KeySource::Directory),
            Learned::New
        );
        assert_eq!(
            book.learn("u", k1.clone(), KeySource::Directory),
            Learned::Same
        );
        assert!(matches!(
            book.learn("u", k2.clone(), KeySource::Directory),
            Learned::Changed { .. }
        ));
        assert_eq!(book.get("u").map(|p| p.key.clone()), Some(k1.clone()));
        assert_eq!(
            book.learn("u", k2.clone(), KeySource::SenderPub),
            Learned::Ignored
        );
        assert_eq!(book.accept("u"), Some(fingerprint(&k2)));
        assert_eq!(book.get("u").map(|p| p.key.clone()), Some(k2));
        assert!(book.accept("u").is_none());
    }

    #[test]
    fn a_directory_key_replaces_a_sender_pub_pin() {
        let k1 = fixtures::rsa_identity_ref(1).public().clone();
        let k2 = fixtures::rsa_identity_ref(2).public().clone();
        let mut book = KeyBook::default();
        assert_eq!(book.learn("u", k1, KeySource::SenderPub), Learned::New);
        assert!(!book.get("u").is_some_and(Pin::trusted));
        assert!(matches!(
            book.learn("u", k2.clone(), KeySource::Directory),
            Learned::Replaced { .. }
        ));
        assert!(book.get("u").is_some_and(Pin::trusted));
    }
}
