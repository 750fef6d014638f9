//! The `seen_ids` cache of SOCP §10: loop and replay suppression.
//!
//! Keyed as this project reads the spec (socp-1.3.md §3): `ts|from|to|sha256(canonical
//! payload)`, stored as one SHA-256 digest of that string so every entry has the
//! same small size. Entries live for a TTL (at least twice the dead-link timeout)
//! and the cache holds at most `capacity` entries, evicting the oldest first.
//!
//! A frame is inserted only after it has been authenticated, so a forged frame
//! cannot poison the cache and get a genuine one dropped later. Eviction under a
//! flood of *authenticated* unique frames could let an evicted frame be replayed;
//! the freshness window on `ts` bounds that replay to the window's length.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use core::time::Duration;
use sha2::{Digest, Sha256};

use crate::time::Instant;

/// A seen-cache key: SHA-256 of `ts|from|to|sha256hex(canonical payload)`.
pub type SeenKey = [u8; 32];

/// Computes the seen-cache key of a frame.
///
/// `payload_digest` is SHA-256 of the canonical JSON of the payload.
#[must_use]
pub fn seen_key(ts: u64, from: &str, to: &str, payload_digest: &[u8; 32]) -> SeenKey {
    let mut h = Sha256::new();
    h.update(ts.to_string().as_bytes());
    h.update(b"|");
    h.update(from.as_bytes());
    h.update(b"|");
    h.update(to.as_bytes());
    h.update(b"|");
    let mut hex = [0u8; 64];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(payload_digest) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        if let [hi, lo] = pair {
            *hi = DIGITS.get(usize::from(byte >> 4)).copied().unwrap_or(b'0');
            *lo = DIGITS
                .get(usize::from(byte & 0x0f))
                .copied()
                .unwrap_or(b'0');
        }
    }
    h.update(hex);
    h.finalize().into()
}

/// Keys are SHA-256 digests, already uniform: hash them by their first 8 bytes.
/// (This also keeps the core free of `RandomState`, which seeds from the OS.)
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
}

/// A bounded, TTL'd set of frames already processed.
#[derive(Debug)]
pub struct SeenCache {
    ttl: Duration,
    capacity: usize,
    expiry: HashMap<SeenKey, Instant, BuildHasherDefault<DigestHasher>>,
    order: VecDeque<(SeenKey, Instant)>,
}

impl SeenCache {
    /// A cache whose entries expire after `ttl`, holding at most `capacity`.
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            expiry: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// Whether `key` was inserted within the TTL.
    #[must_use]
    pub fn contains(&self, now: Instant, key: &SeenKey) -> bool {
        self.expiry.get(key).is_some_and(|&until| until > now)
    }

    /// Records `key`; returns `false` if it was already present (a duplicate).
    pub fn insert(&mut self, now: Instant, key: SeenKey) -> bool {
        self.expire(now);
        if self.contains(now, &key) {
            return false;
        }
        while self.expiry.len() >= self.capacity {
            let Some((old, _)) = self.order.pop_front() else {
                break;
            };
            self.expiry.remove(&old);
        }
        let until = now + self.ttl;
        self.expiry.insert(key, until);
        self.order.push_back((key, until));
        true
    }

    /// Drops expired entries.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(key, until)) = self.order.front() {
            if until > now {
                break;
            }
            self.order.pop_front();
            if self.expiry.get(&key) == Some(&until) {
                self.expiry.remove(&key);
            }
        }
    }

    /// Number of live entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SeenKey {
        seen_key(u64::from(n), "a", "b", &[n; 32])
    }

    #[test]
    fn duplicates_are_detected_until_the_ttl() {
        let mut cache = SeenCache::new(Duration::from_secs(10), 100);
        let t0 = Instant::from_micros(0);
        assert!(cache.insert(t0, key(1)));
        assert!(!cache.insert(t0 + Duration::from_secs(9), key(1)));
        assert!(cache.insert(t0 + Duration::from_secs(10), key(1)));
    }

    #[test]
    fn capacity_evicts_oldest_first() {
        let mut cache = SeenCache::new(Duration::from_secs(100), 3);
        let t = Instant::ZERO;
        for n in 0..4 {
            assert!(cache.insert(t, key(n)));
        }
        assert_eq!(cache.len(), 3);
        assert!(!cache.contains(t, &key(0)));
        assert!(cache.contains(t, &key(3)));
    }

    #[test]
    fn key_depends_on_every_field() {
        let base = seen_key(1, "a", "b", &[0; 32]);
        assert_ne!(base, seen_key(2, "a", "b", &[0; 32]));
        assert_ne!(base, seen_key(1, "c", "b", &[0; 32]));
        assert_ne!(base, seen_key(1, "a", "c", &[0; 32]));
        assert_ne!(base, seen_key(1, "a", "b", &[1; 32]));
    }
}
