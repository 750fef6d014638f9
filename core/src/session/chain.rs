//! Symmetric KDF chains and skipped message keys.
//!
//! A chain key `CK` at counter `n` gives the message key of record `n` and
//! the next chain key (the Signal construction):
//!
//! ```text
//! MK_n     = HMAC-SHA256(CK_n, 0x01)
//! CK_(n+1) = HMAC-SHA256(CK_n, 0x02)
//! ```
//!
//! A message key seals exactly one record with AES-256-GCM; its nonce is the
//! counter (big-endian, in the last 8 of 12 bytes). Old chain keys are
//! overwritten (and zeroized), so a captured state opens no earlier record:
//! forward secrecy per record.
//!
//! Records may arrive out of order or not at all. A receiver that sees record
//! `n` while expecting `m < n` keeps the message keys `m .. n` as *skipped*
//! keys, at most [`MAX_SKIP`] for one record and [`MAX_SKIPPED_KEYS`] in all
//! (the oldest are dropped first). Beyond those bounds a record is refused
//! with [`SessionError::TooFarAhead`]: an attacker cannot make us derive or
//! hold an unbounded number of keys.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::SessionError;
use crate::crypto::aead::{self, NONCE_LEN};
use crate::crypto::mac::hmac_sha256_pair;

/// Most message keys skipped in one chain for one record.
pub const MAX_SKIP: u64 = 1000;
/// Most skipped message keys a session holds (the oldest go first).
pub const MAX_SKIPPED_KEYS: usize = 2000;

/// A chain key and the counter of the next message key it gives.
#[derive(Clone)]
pub struct ChainKey {
    key: Zeroizing<[u8; 32]>,
    next: u64,
}

impl core::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChainKey")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl ChainKey {
    /// A chain starting at counter 0.
    #[must_use]
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(key),
            next: 0,
        }
    }

    /// The counter of the next message key.
    #[must_use]
    pub fn counter(&self) -> u64 {
        self.next
    }

    /// The next message key; the chain moves one step.
    ///
    /// # Errors
    /// [`SessionError::Exhausted`] at counter `u64::MAX`.
    pub fn step(&mut self) -> Result<MessageKey, SessionError> {
        if self.next == u64::MAX {
            return Err(SessionError::Exhausted);
        }
        let (mk, ck) = hmac_sha256_pair(&*self.key, &[0x01], &[0x02]);
        let key = MessageKey {
            key: mk,
            counter: self.next,
        };
        self.key = ck;
        self.next += 1;
        Ok(key)
    }

    /// Without changing `self`: the chain after record `n`, the keys of the
    /// records skipped before `n`, and the key of record `n`.
    ///
    /// # Errors
    /// [`SessionError::TooFarAhead`] if more than [`MAX_SKIP`] keys would be
    /// skipped; [`SessionError::Duplicate`] if `n` is behind the chain.
    pub fn advance_to(&self, n: u64) -> Result<Advance, SessionError> {
        if n < self.next {
            return Err(SessionError::Duplicate { counter: n });
        }
        let gap = n - self.next;
        if gap > MAX_SKIP {
            return Err(SessionError::TooFarAhead {
                counter: n,
                gap,
                max: MAX_SKIP,
            });
        }
        let mut chain = self.clone();
        let mut skipped = Vec::new();
        while chain.next < n {
            skipped.push(chain.step()?);
        }
        let key = chain.step()?;
        Ok(Advance {
            chain,
            skipped,
            key,
        })
    }
}

/// What [`ChainKey::advance_to`] computed, to commit once the record opens.
#[derive(Debug)]
pub struct Advance {
    /// The chain after the record.
    pub chain: ChainKey,
    /// Keys of the records skipped on the way.
    pub skipped: Vec<MessageKey>,
    /// The record's key.
    pub key: MessageKey,
}

/// The key of one record. Zeroized on drop.
pub struct MessageKey {
    key: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl core::fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MessageKey")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl MessageKey {
    /// The record counter this key belongs to.
    #[must_use]
    pub fn counter(&self) -> u64 {
        self.counter
    }

    fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        let (_, tail) = nonce.split_at_mut(NONCE_LEN - 8);
        tail.copy_from_slice(&self.counter.to_be_bytes());
        nonce
    }

    /// AES-256-GCM seal of `plaintext` with `aad`: `ciphertext ‖ tag`.
    ///
    /// # Errors
    /// [`SessionError::TooLong`] past AES-GCM's limit.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        aead::seal(&self.key, &self.nonce(), aad, plaintext).map_err(|_| SessionError::TooLong)
    }

    /// AES-256-GCM open.
    ///
    /// # Errors
    /// [`SessionError::Decrypt`] for any failure.
    pub fn open(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        aead::open(&self.key, &self.nonce(), aad, ciphertext).map_err(|_| SessionError::Decrypt)
    }
}

/// Skipped message keys, by (chain tag, counter), bounded by
/// [`MAX_SKIPPED_KEYS`]: inserting past the bound drops the oldest key. The
/// chain tag tells chains apart (the Double Ratchet uses the sender's DH key;
/// a channel has one receiving chain and uses `()`).
#[derive(Debug)]
pub struct SkippedKeys<K: Ord + Clone> {
    keys: BTreeMap<(K, u64), (u64, MessageKey)>,
    by_age: BTreeMap<u64, (K, u64)>,
    next_age: u64,
}

impl<K: Ord + Clone> Default for SkippedKeys<K> {
    fn default() -> Self {
        Self {
            keys: BTreeMap::new(),
            by_age: BTreeMap::new(),
            next_age: 0,
        }
    }
}

impl<K: Ord + Clone> SkippedKeys<K> {
    /// How many keys are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of record `counter` of chain `tag`, if held.
    #[must_use]
    pub fn get(&self, tag: &K, counter: u64) -> Option<&MessageKey> {
        self.keys.get(&(tag.clone(), counter)).map(|(_, key)| key)
    }

    /// Forgets the key of record `counter` of chain `tag` (once it was used).
    pub fn remove(&mut self, tag: &K, counter: u64) {
        if let Some((age, _)) = self.keys.remove(&(tag.clone(), counter)) {
            self.by_age.remove(&age);
        }
    }

    /// Keeps `keys` of chain `tag`, dropping the oldest held keys beyond
    /// [`MAX_SKIPPED_KEYS`].
    pub fn insert(&mut self, tag: &K, keys: Vec<MessageKey>) {
        for key in keys {
            let id = (tag.clone(), key.counter);
            let age = self.next_age;
            self.next_age = self.next_age.wrapping_add(1);
            self.by_age.insert(age, id.clone());
            if let Some((old_age, _)) = self.keys.insert(id, (age, key)) {
                self.by_age.remove(&old_age);
            }
        }
        while self.keys.len() > MAX_SKIPPED_KEYS {
            let Some((_, id)) = self.by_age.pop_first() else {
                break;
            };
            self.keys.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_agree_and_advance_without_mutating() {
        let mut a = ChainKey::new([7; 32]);
        let b = ChainKey::new([7; 32]);
        let k0 = a.step().unwrap();
        let k1 = a.step().unwrap();
        let adv = b.advance_to(1).unwrap();
        assert_eq!(b.counter(), 0, "advance_to changes nothing");
        assert_eq!(adv.skipped.len(), 1);
        assert_eq!(adv.chain.counter(), 2);
        let ct = k1.seal(b"aad", b"hi").unwrap();
        assert_eq!(&**adv.key.open(b"aad", &ct).unwrap(), b"hi");
        let ct0 = k0.seal(b"aad", b"zero").unwrap();
        assert_eq!(&**adv.skipped[0].open(b"aad", &ct0).unwrap(), b"zero");
        assert!(adv.key.open(b"other", &ct).is_err());
        assert!(matches!(
            b.advance_to(MAX_SKIP + 1),
            Err(SessionError::TooFarAhead { gap, .. }) if gap == MAX_SKIP + 1
        ));
        assert!(b.advance_to(MAX_SKIP).is_ok());
        assert!(matches!(
            adv.chain.advance_to(0),
            Err(SessionError::Duplicate { counter: 0 })
        ));
    }

    #[test]
    fn skipped_keys_are_bounded_oldest_first() {
        let mut chain = ChainKey::new([1; 32]);
        let mut store = SkippedKeys::<u8>::default();
        let keys: Vec<MessageKey> = (0..MAX_SKIPPED_KEYS + 5)
            .map(|_| chain.step().unwrap())
            .collect();
        store.insert(&0, keys);
        assert_eq!(store.len(), MAX_SKIPPED_KEYS);
        assert!(store.get(&0, 4).is_none(), "the oldest went first");
        assert!(store.get(&0, 5).is_some());
        store.remove(&0, 5);
        assert!(store.get(&0, 5).is_none());
        assert_eq!(store.len(), MAX_SKIPPED_KEYS - 1);
    }
}
