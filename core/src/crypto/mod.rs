//! Cryptographic primitives.
