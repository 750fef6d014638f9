//! A small cache of our own transport signatures.
//!
//! The transport `sig` covers only the payload (§1.2), so a payload we send again
//! (the heartbeat `{}`, a user's advert, a common error) can reuse its signature
//! instead of paying ~7 ms for a fresh RSA-4096 signature.

use std::collections::{BTreeMap, BTreeSet};

/// Signatures keyed by the SHA-256 of the canonical payload they cover.
#[derive(Debug)]
pub(super) struct SigCache {
    capacity: usize,
    entries: BTreeMap<[u8; 32], String>,
}

impl SigCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: BTreeMap::new(),
        }
    }

    pub(super) fn get(&self, digest: &[u8; 32]) -> Option<&str> {
        self.entries.get(digest).map(String::as_str)
    }

    pub(super) fn insert(&mut self, digest: [u8; 32], sig: String) {
        if self.entries.len() >= self.capacity {
            // Payload digests are uniform, so dropping the smallest is a random eviction.
            self.entries.pop_first();
        }
        self.entries.insert(digest, sig);
    }
}

/// Digests of (key, payload, signature) triples that verified. A hit is exactly as
/// good as running the verification again: the inputs are identical.
#[derive(Debug)]
pub(super) struct VerifiedCache {
    capacity: usize,
    entries: BTreeSet<[u8; 32]>,
}

impl VerifiedCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: BTreeSet::new(),
        }
    }

    pub(super) fn contains(&self, digest: &[u8; 32]) -> bool {
        self.entries.contains(digest)
    }

    pub(super) fn insert(&mut self, digest: [u8; 32]) {
        if self.entries.len() >= self.capacity {
            self.entries.pop_first();
        }
        self.entries.insert(digest);
    }
}
