//! # socp-core
//!
//! The sans-IO heart of socp, a federated end-to-end encrypted chat network that
//! speaks SOCP v1.3 to any peer. This crate performs no I/O at all: it reads no
//! clock, opens no socket or file and draws no OS randomness. Bytes, events, the
//! current time and a random seed come in as arguments; frames to send, actions
//! (dial, close, store) and events come out.
//!
//! Modules:
//! - [`wire`]: the SOCP v1.3 envelope and message types, canonical JSON,
//!   base64url and decoding limits;
//! - [`crypto`]: RSA-4096 OAEP/PSS and the `content_sig` layouts, Ed25519,
//!   X25519, AES-256-GCM, HMAC/HKDF-SHA256, and the password-protected keystore;
//! - [`server`] and [`client`]: the SOCP state machines;
//! - [`driver`]: the plain data every runtime adapter shares (link limits,
//!   client updates, login errors).
#![forbid(unsafe_code)]

pub mod client;
pub mod crypto;
pub mod driver;
pub mod fuzzing;
pub mod server;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod time;
pub mod wire;

// Adapters move the state machines onto their driver tasks: both must stay `Send`.
const _: fn() = || {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<server::Server>();
    assert_send::<client::Client>();
    assert_send::<client::KeystoreFetcher>();
};
